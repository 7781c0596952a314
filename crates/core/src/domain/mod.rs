//! The domain file (docs/domain-file.md) and `latchkey apply`: parse and validate
//! everything, resolve secrets, then write it all in one transaction.

mod app_input;
mod entries;
mod export;
mod file;
mod identity;
mod plan;
mod snapshot;

pub use app_input::{
    AppInput, DurationInput, FieldError, MAX_ACCESS_TTL, MAX_REFRESH_TTL, MIN_CLIENT_SECRET_LEN,
    TokenDefaults, ValidatedApp, check_redirect_uri,
};
pub use entries::{DomainFile, GroupEntry, ResourceServerEntry, SigningKeyEntry, UserEntry};
pub use export::export;
pub use file::{DomainFileError, MAX_ACCESS_TTL_SECS, parse_domain_file, parse_domain_file_with};
pub use plan::{
    AppSpec, ApplyReport, ApplySummary, Change, ChangeOutcome, DomainPlan, GroupSpec, HashChange,
    ResourceServerSpec, UserSpec,
};
pub use snapshot::{DomainSnapshot, SnapshotGroup, SnapshotUser};

use std::sync::Arc;

use crate::clock::Clock;
use crate::model::AppType;
use crate::password::{Password, PasswordHasher, Verification};
use crate::secrets::{MasterKey, SecretHasher, generate_client_secret};
use crate::store::{Repos, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(#[from] DomainFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

/// Ids and keys must be checked against what is stored.
fn needs_identity_check(plan: &DomainPlan) -> bool {
    !plan.signing_keys.is_empty()
        || plan.users.iter().any(|u| u.id.is_some())
        || plan.groups.iter().any(|g| g.id.is_some())
        || plan.apps.iter().any(|a| a.id.is_some())
}

pub struct DomainService {
    pub repos: Repos,
    pub hasher: Arc<PasswordHasher>,
    pub secrets: SecretHasher,
    /// Seals the secrets of apps that accept `client_secret_jwt`.
    pub master: MasterKey,
    pub clock: Arc<dyn Clock>,
    pub policy: crate::password_policy::PasswordPolicy,
    /// Lifetimes of apps that name none.
    pub token_defaults: TokenDefaults,
}

impl DomainService {
    /// Applies a domain file. Nothing is written unless all of it is valid.
    pub async fn apply(&self, text: &str) -> Result<ApplyReport, ApplyError> {
        let known_groups = self.repos.domain.group_names().await?;
        let known_servers = self.repos.resource_servers.list().await?;
        let mut parsed = parse_domain_file_with(
            text,
            &known_groups,
            &known_servers,
            &self.policy,
            self.token_defaults,
        )?;

        // Passwords: keep the stored hash when the file's password still
        // verifies against it, so a second run changes nothing.
        for user in &mut parsed.plan.users {
            let Some(password) = parsed.passwords.remove(&user.username) else {
                continue;
            };
            let password = Password::new(password);
            let existing = self.repos.users.find_by_username(&user.username).await?;
            let stored = existing.as_ref().and_then(|u| u.password_hash.clone());
            let unchanged = match &stored {
                Some(hash) => matches!(
                    self.hasher
                        .verify(&password, Some(hash))
                        .await
                        .map_err(|e| ApplyError::Hash(e.to_string()))?,
                    Verification::Valid {
                        needs_rehash: false
                    }
                ),
                None => false,
            };
            user.password = if unchanged {
                HashChange::Keep
            } else {
                HashChange::Set(
                    self.hasher
                        .hash(&password)
                        .await
                        .map_err(|e| ApplyError::Hash(e.to_string()))?,
                )
            };
        }

        let mut generated = Vec::new();
        for app in &mut parsed.plan.apps {
            if let HashChange::Set(hash) = app.secret.clone() {
                // Carried as a hash (client_secret_hash): only its sealed
                // copy can show whether it belongs to this master key.
                self.check_sealed(app, &hash)?;
                self.keep_stored_sealing(app, &hash).await?;
                continue;
            }
            let given = parsed.client_secrets.remove(&app.client_id);
            generated.extend(self.resolve_secret(app, given).await?);
        }
        if needs_identity_check(&parsed.plan) {
            let snapshot = self.repos.domain.snapshot().await?;
            identity::check(&parsed.plan, &snapshot, &self.master)?;
        }

        let summary = self
            .repos
            .domain
            .apply(&parsed.plan, self.clock.now())
            .await?;
        Ok(ApplyReport {
            summary,
            generated_secrets: generated,
            warnings: parsed.warnings,
        })
    }

    /// A sealed secret given with its hash must open under this master key,
    /// for this client, to a secret with that very hash.
    fn check_sealed(&self, app: &AppSpec, hash: &str) -> Result<(), ApplyError> {
        let Some(sealed) = &app.sealed_secret else {
            return Ok(());
        };
        match self.master.open_client_secret(&app.client_id, sealed) {
            Ok(secret) if self.secrets.verify(&secret, hash) => Ok(()),
            Ok(_) => Err(ApplyError::Field {
                field: format!("apps[{}].client_secret_sealed", app.client_id),
                message: "does not match client_secret_hash".into(),
            }),
            Err(_) => Err(ApplyError::Field {
                field: format!("apps[{}].client_secret_sealed", app.client_id),
                message: "does not open with this master key (an exported secret imports only where the master key of the exporting database is in use)".into(),
            }),
        }
    }

    /// Sealing is randomised: when the stored secret is the same (same
    /// hash), keep its stored sealing, so importing again changes nothing.
    async fn keep_stored_sealing(&self, app: &mut AppSpec, hash: &str) -> Result<(), ApplyError> {
        if app.sealed_secret.is_none() {
            return Ok(());
        }
        let existing = self.repos.apps.find_by_client_id(&app.client_id).await?;
        if let Some(stored) = existing
            .filter(|a| a.secret_hash.as_deref() == Some(hash))
            .and_then(|a| a.secret_sealed)
        {
            app.sealed_secret = Some(stored);
        }
        Ok(())
    }

    /// Client secrets: hashed with the keyed hash (and sealed for apps
    /// that accept `client_secret_jwt`). A new confidential app without a
    /// secret gets a generated one, returned to be shown once.
    pub async fn resolve_secret(
        &self,
        app: &mut AppSpec,
        given: Option<String>,
    ) -> Result<Option<(String, String)>, ApplyError> {
        let existing = self.repos.apps.find_by_client_id(&app.client_id).await?;
        let (secret, generated) = match given {
            Some(secret) => (secret, false),
            None if app.app_type != AppType::Public && existing.is_none() => {
                (generate_client_secret(), true)
            }
            None => {
                // Keeping the stored secret: client_secret_jwt needs it
                // sealed, which a hash-only secret cannot provide.
                let sealed = existing.as_ref().and_then(|a| a.secret_sealed.as_ref());
                if app.client_secret_jwt && sealed.is_none() {
                    return Err(ApplyError::Field {
                        field: format!("apps[{}].client_secret_jwt", app.client_id),
                        message: "the stored secret is kept only as a hash, so it cannot verify HMAC assertions; give client_secret, or run `latchkey app rotate-secret` after turning this on".into(),
                    });
                }
                return Ok(None);
            }
        };
        app.secret = HashChange::Set(self.secrets.hash(&secret));
        if app.client_secret_jwt {
            // Sealing is randomised: keep the stored sealing of the same
            // secret, so a second apply changes nothing.
            let stored = existing
                .as_ref()
                .and_then(|a| a.secret_sealed.clone())
                .filter(|sealed| {
                    self.master
                        .open_client_secret(&app.client_id, sealed)
                        .is_ok_and(|plain| plain == secret)
                });
            app.sealed_secret = Some(
                stored.unwrap_or_else(|| self.master.seal_client_secret(&app.client_id, &secret)),
            );
        }
        Ok(generated.then(|| (app.client_id.clone(), secret)))
    }
}

#[cfg(test)]
mod file_proptest;
