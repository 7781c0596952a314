//! The domain file (contract §2) and `latchkey apply`: parse and validate
//! everything, resolve secrets, then write it all in one transaction.

mod file;
mod plan;

pub use file::{DomainFileError, MAX_ACCESS_TTL_SECS, parse_domain_file};
pub use plan::{
    AppSpec, ApplyReport, ApplySummary, Change, ChangeOutcome, DomainPlan, GroupSpec, HashChange,
    ResourceServerSpec, UserSpec,
};

use std::sync::Arc;

use crate::clock::Clock;
use crate::password::{Password, PasswordHasher, Verification};
use crate::secrets::{SecretHasher, generate_client_secret};
use crate::store::{Repos, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(#[from] DomainFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub struct DomainService {
    pub repos: Repos,
    pub hasher: Arc<PasswordHasher>,
    pub secrets: SecretHasher,
    pub clock: Arc<dyn Clock>,
    pub policy: crate::password_policy::PasswordPolicy,
}

impl DomainService {
    /// Applies a domain file. Nothing is written unless all of it is valid.
    pub async fn apply(&self, text: &str) -> Result<ApplyReport, ApplyError> {
        let known_groups = self.repos.domain.group_names().await?;
        let known_servers = self.repos.resource_servers.list().await?;
        let mut parsed = parse_domain_file(text, &known_groups, &known_servers, &self.policy)?;

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

        // Client secrets: hashed with the keyed hash; a new confidential
        // app without one gets a generated secret, shown once.
        let mut generated = Vec::new();
        for app in &mut parsed.plan.apps {
            if let Some(secret) = parsed.client_secrets.remove(&app.client_id) {
                app.secret = HashChange::Set(self.secrets.hash(&secret));
            } else if app.app_type != crate::model::AppType::Public
                && self
                    .repos
                    .apps
                    .find_by_client_id(&app.client_id)
                    .await?
                    .is_none()
            {
                let secret = generate_client_secret();
                app.secret = HashChange::Set(self.secrets.hash(&secret));
                generated.push((app.client_id.clone(), secret));
            }
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
}
