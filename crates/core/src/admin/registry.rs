//! What an identity domain holds besides users and groups: apps, resource
//! servers and signing keys. One service for every front end — the JSON
//! admin API (`/admin/v1/Apps`, `/ResourceServers`, `/SigningKeys`), the
//! console and the `latchkey` command line — so the rules (validation,
//! permissions, audit events, secrets shown once) live in one place.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{AdminError, BearerError, Caller, Permission};
use crate::audit::{AuditEvent, CLI_ACTOR, kind, record};
use crate::client_auth::{RotateError, rotate_secret};
use crate::console::CONSOLE_CLIENT_ID;
use crate::domain::{AppInput, ApplyError, DomainPlan, DomainService, ResourceServerSpec};
use crate::keys::{KeyAlgorithm, KeyError, KeyRing, KeyRotation};
use crate::model::{App, AppRole, ResourceServer, SigningKeyRecord};
use crate::scim::ScimError;
use crate::store::StoreError;

/// Who asks: a caller of the admin API or console (its roles are checked
/// against the permission table), or the operator at the command line.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Caller(&'a Caller),
    Cli,
}

impl Actor<'_> {
    pub(super) fn require(&self, permission: Permission) -> Result<(), RegistryError> {
        match self {
            Actor::Caller(caller) => caller.require(permission).map_err(RegistryError::Denied),
            Actor::Cli => Ok(()),
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Actor::Caller(caller) => &caller.subject,
            Actor::Cli => CLI_ACTOR,
        }
    }
}

/// Why a registry operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("not allowed")]
    Denied(BearerError),
    /// A field of the input is wrong (domain-file field names).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ApplyError> for RegistryError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Store(e) => RegistryError::Store(e),
            ApplyError::Field { field, message } => RegistryError::Invalid { field, message },
            ApplyError::Invalid(e) => RegistryError::invalid(e.field, e.message),
            ApplyError::Hash(e) => RegistryError::Store(StoreError::Other(e)),
        }
    }
}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Denied(e) => AdminError::Denied(e),
            RegistryError::Invalid { field, message } => {
                AdminError::Scim(ScimError::invalid_value(format!("{field}: {message}")))
            }
            RegistryError::NotFound(what) => AdminError::Scim(ScimError::not_found(what)),
            RegistryError::Conflict(why) => AdminError::Scim(ScimError::uniqueness(why)),
            RegistryError::Store(e) => AdminError::Scim(e.into()),
        }
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

/// An app just created (or given a new secret): the secret is here once,
/// to be shown once; only its hash is stored.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub app: App,
    pub client_secret: Option<String>,
}

/// Apps, resource servers and signing keys.
pub struct RegistryService {
    /// Validation and the one transactional write path of `apply`. Its
    /// repositories are the server's own (caches included), so a change
    /// made here reaches this node's token endpoint at once.
    pub domain: DomainService,
    pub keys: Arc<KeyRing>,
    /// The algorithm of a rotated key when none is asked for and there is
    /// no active key to take it from.
    pub key_algorithm: KeyAlgorithm,
}

impl RegistryService {
    async fn audit(&self, actor: Actor<'_>, event: &str, subject: &str, detail: Option<String>) {
        let mut e = AuditEvent::new(event, true, self.domain.clock.now())
            .actor(actor.name())
            .subject(subject);
        if let Some(detail) = detail {
            e = e.detail(detail);
        }
        record(self.domain.repos.audit.as_ref(), e).await;
    }

    // ----- apps

    pub async fn list_apps(&self, actor: Actor<'_>) -> RegistryResult<Vec<App>> {
        actor.require(Permission::ReadApps)?;
        Ok(self.domain.repos.apps.list().await?)
    }

    /// By immutable id or by client_id.
    pub async fn app(&self, actor: Actor<'_>, key: &str) -> RegistryResult<App> {
        actor.require(Permission::ReadApps)?;
        self.find_app(key).await
    }

    /// The app `key`, when `actor` may change it: never the built-in
    /// console app (the server puts it back at every start; an API that
    /// edits it could hand out its roles), and only when the app holds no
    /// role the actor lacks (rotating such an app's secret or adding a
    /// grant to it would hand the actor that role).
    async fn app_to_change(&self, actor: Actor<'_>, key: &str) -> RegistryResult<App> {
        let app = self.find_app(key).await?;
        if app.client_id == CONSOLE_CLIENT_ID {
            return Err(RegistryError::Denied(BearerError::Insufficient {
                scope: crate::scope::MY_SCOPES,
                detail: "the built-in console app is managed by the server and cannot be changed"
                    .into(),
            }));
        }
        actor
            .may_act_on(&app.app_roles, "this app")
            .map_err(RegistryError::Denied)?;
        Ok(app)
    }

    async fn find_app(&self, key: &str) -> RegistryResult<App> {
        if let Some(app) = self.domain.repos.apps.find_by_client_id(key).await? {
            return Ok(app);
        }
        self.domain
            .repos
            .apps
            .list()
            .await?
            .into_iter()
            .find(|a| a.id == key)
            .ok_or_else(|| RegistryError::NotFound(format!("no app {key:?}")))
    }

    /// Creates an app; a confidential or trusted app given no secret gets a
    /// generated one, returned once.
    pub async fn create_app(
        &self,
        actor: Actor<'_>,
        input: AppInput,
    ) -> RegistryResult<WithSecret> {
        actor.require(Permission::WriteApps)?;
        let client_id = input.resolved_client_id();
        if self
            .domain
            .repos
            .apps
            .find_by_client_id(&client_id)
            .await?
            .is_some()
        {
            return Err(RegistryError::Conflict(format!(
                "an app with client_id {client_id:?} exists"
            )));
        }
        let secret = self.write_app(actor, &input, None).await?;
        self.audit(actor, kind::APP_CREATED, &client_id, None).await;
        Ok(WithSecret {
            app: self.find_app(&client_id).await?,
            client_secret: secret,
        })
    }

    /// Replaces what `input` describes of the app `key` (its client_id and
    /// id never change). A change of `active` ends the app's sessions as
    /// deactivation does.
    pub async fn update_app(
        &self,
        actor: Actor<'_>,
        key: &str,
        mut input: AppInput,
    ) -> RegistryResult<App> {
        actor.require(Permission::WriteApps)?;
        let app = self.app_to_change(actor, key).await?;
        match &input.client_id {
            Some(given) if *given != app.client_id => {
                return Err(RegistryError::invalid(
                    "client_id",
                    "an app's client_id never changes",
                ));
            }
            _ => input.client_id = Some(app.client_id.clone()),
        }
        if input.id.as_ref().is_some_and(|id| *id != app.id) {
            return Err(RegistryError::invalid("id", "an app's id never changes"));
        }
        let wanted_active = input.active.unwrap_or(app.active);
        input.active = Some(app.active);
        self.write_app(actor, &input, Some(&app)).await?;
        self.audit(actor, kind::APP_UPDATED, &app.client_id, None)
            .await;
        if wanted_active != app.active {
            self.set_app_active(actor, &app.client_id, wanted_active)
                .await?;
        }
        self.find_app(&app.client_id).await
    }

    /// Validates and writes one app through the domain's write path.
    async fn write_app(
        &self,
        actor: Actor<'_>,
        input: &AppInput,
        existing: Option<&App>,
    ) -> RegistryResult<Option<String>> {
        let servers = self.domain.repos.resource_servers.list().await?;
        let validated = input
            .validate_with(&servers, self.domain.token_defaults)
            .map_err(|e| RegistryError::invalid(e.field, e.message))?;
        if validated.spec.client_id == CONSOLE_CLIENT_ID {
            return Err(RegistryError::invalid(
                "client_id",
                format!("{CONSOLE_CLIENT_ID} is the built-in console app's client_id"),
            ));
        }
        let given: Vec<AppRole> = validated
            .spec
            .app_roles
            .iter()
            .copied()
            .filter(|r| existing.is_none_or(|app| !app.app_roles.contains(r)))
            .collect();
        actor.may_give(&given).map_err(RegistryError::Denied)?;
        for warning in &validated.warnings {
            tracing::info!(
                client_id = validated.spec.client_id.as_str(),
                warning = warning.as_str(),
                "app written with a warning"
            );
        }
        let mut spec = validated.spec;
        if let Some(app) = existing {
            spec.id = Some(app.id.clone());
        }
        let generated = self
            .domain
            .resolve_secret(&mut spec, validated.client_secret)
            .await?;
        let plan = DomainPlan {
            apps: vec![spec],
            ..DomainPlan::default()
        };
        let applied = self
            .domain
            .repos
            .domain
            .apply(&plan, self.domain.clock.now())
            .await;
        // This node's token path must see the change at once (other nodes'
        // caches expire within seconds).
        self.domain.repos.apps.changed();
        applied?;
        Ok(generated.map(|(_, secret)| secret))
    }

    /// A new generated secret; the current one keeps working for
    /// `grace_secs` (at most 30 days).
    pub async fn rotate_app_secret(
        &self,
        actor: Actor<'_>,
        key: &str,
        grace_secs: i64,
    ) -> RegistryResult<WithSecret> {
        actor.require(Permission::WriteApps)?;
        let app = self.app_to_change(actor, key).await?;
        let now = self.domain.clock.now();
        let (secret, new) = rotate_secret(
            self.domain.repos.apps.as_ref(),
            &self.domain.master,
            &app,
            grace_secs,
            now,
        )
        .await
        .map_err(|e| match e {
            RotateError::Public(_) => RegistryError::invalid("type", e.to_string()),
            RotateError::Grace => RegistryError::invalid("grace", e.to_string()),
            RotateError::Store(e) => RegistryError::Store(e),
        })?;
        let detail = match &new.previous {
            Some(p) => format!(
                "the previous secret keeps working for {}",
                crate::duration::format_duration(p.expires_at - now)
            ),
            None => "the previous secret no longer works".to_owned(),
        };
        self.audit(
            actor,
            kind::APP_SECRET_ROTATED,
            &app.client_id,
            Some(detail),
        )
        .await;
        Ok(WithSecret {
            app: self.find_app(&app.client_id).await?,
            client_secret: Some(secret),
        })
    }

    /// Deactivating refuses the app's authentication and ends its sessions.
    pub async fn set_app_active(
        &self,
        actor: Actor<'_>,
        key: &str,
        active: bool,
    ) -> RegistryResult<App> {
        actor.require(Permission::WriteApps)?;
        let app = self.app_to_change(actor, key).await?;
        self.domain
            .repos
            .apps
            .set_active(&app.id, active, self.domain.clock.now())
            .await?;
        let event = if active {
            kind::APP_ACTIVATED
        } else {
            kind::APP_DEACTIVATED
        };
        self.audit(actor, event, &app.client_id, None).await;
        self.find_app(&app.client_id).await
    }

    pub async fn delete_app(&self, actor: Actor<'_>, key: &str) -> RegistryResult<App> {
        actor.require(Permission::WriteApps)?;
        let app = self.app_to_change(actor, key).await?;
        self.domain.repos.apps.delete(&app.id).await?;
        self.audit(actor, kind::APP_DELETED, &app.client_id, None)
            .await;
        Ok(app)
    }

    // ----- resource servers

    pub async fn list_resource_servers(
        &self,
        actor: Actor<'_>,
    ) -> RegistryResult<Vec<ResourceServer>> {
        actor.require(Permission::ReadApps)?;
        Ok(self.domain.repos.resource_servers.list().await?)
    }

    /// By immutable id or by audience.
    pub async fn resource_server(
        &self,
        actor: Actor<'_>,
        key: &str,
    ) -> RegistryResult<ResourceServer> {
        actor.require(Permission::ReadApps)?;
        self.find_server(key).await
    }

    async fn find_server(&self, key: &str) -> RegistryResult<ResourceServer> {
        self.domain
            .repos
            .resource_servers
            .list()
            .await?
            .into_iter()
            .find(|s| s.id == key || s.audience == key)
            .ok_or_else(|| RegistryError::NotFound(format!("no resource server {key:?}")))
    }

    /// Creates a resource server, or with `existing` renames it and
    /// replaces its scopes (its audience never changes). A scope that an
    /// app may be granted cannot be removed.
    pub async fn write_resource_server(
        &self,
        actor: Actor<'_>,
        existing: Option<&str>,
        spec: ResourceServerSpec,
    ) -> RegistryResult<ResourceServer> {
        actor.require(Permission::WriteApps)?;
        let servers = self.domain.repos.resource_servers.list().await?;
        match existing {
            None => {
                if servers.iter().any(|s| s.audience == spec.audience) {
                    return Err(RegistryError::Conflict(format!(
                        "a resource server with audience {:?} exists",
                        spec.audience
                    )));
                }
            }
            Some(key) => {
                let current = self.find_server(key).await?;
                if current.audience != spec.audience {
                    return Err(RegistryError::invalid(
                        "audience",
                        "a resource server's audience never changes",
                    ));
                }
                let removed: Vec<String> = current
                    .scopes
                    .iter()
                    .filter(|s| !spec.scopes.contains(s))
                    .map(|s| format!("{}{s}", current.audience))
                    .collect();
                self.refuse_if_granted(&removed, "scopes").await?;
            }
        }
        // The domain file's own checks, so a server written here is one
        // `latchkey apply` accepts.
        let text = toml::to_string(&json!({"resource_servers": [{
            "name": spec.name, "audience": spec.audience, "scopes": spec.scopes,
        }]}))
        .map_err(|e| RegistryError::invalid("resource_server", e.to_string()))?;
        let others: Vec<ResourceServer> = servers
            .into_iter()
            .filter(|s| s.audience != spec.audience)
            .collect();
        let parsed = crate::domain::parse_domain_file(&text, &[], &others, &self.domain.policy)
            .map_err(|e| {
                let field = e.field.rsplit('.').next().unwrap_or_default().to_owned();
                RegistryError::invalid(field, e.message)
            })?;
        let applied = self
            .domain
            .repos
            .domain
            .apply(&parsed.plan, self.domain.clock.now())
            .await;
        self.domain.repos.resource_servers.changed();
        applied?;
        let event = if existing.is_some() {
            kind::RESOURCE_SERVER_UPDATED
        } else {
            kind::RESOURCE_SERVER_CREATED
        };
        self.audit(actor, event, &spec.audience, None).await;
        self.find_server(&spec.audience).await
    }

    /// Deletes a resource server none of whose scopes an app may be granted.
    pub async fn delete_resource_server(
        &self,
        actor: Actor<'_>,
        key: &str,
    ) -> RegistryResult<ResourceServer> {
        actor.require(Permission::WriteApps)?;
        let server = self.find_server(key).await?;
        let scopes: Vec<String> = server
            .scopes
            .iter()
            .map(|s| format!("{}{s}", server.audience))
            .collect();
        self.refuse_if_granted(&scopes, "audience").await?;
        self.domain
            .repos
            .resource_servers
            .delete(&server.id)
            .await?;
        self.audit(actor, kind::RESOURCE_SERVER_DELETED, &server.audience, None)
            .await;
        Ok(server)
    }

    async fn refuse_if_granted(&self, scopes: &[String], field: &str) -> RegistryResult<()> {
        if scopes.is_empty() {
            return Ok(());
        }
        let holders: Vec<String> = self
            .domain
            .repos
            .apps
            .list()
            .await?
            .into_iter()
            .filter(|a| a.scopes.iter().any(|s| scopes.contains(s)))
            .map(|a| a.client_id)
            .collect();
        if holders.is_empty() {
            return Ok(());
        }
        Err(RegistryError::Conflict(format!(
            "{field}: apps may be granted these scopes: {}; remove the scopes from them first",
            holders.join(", ")
        )))
    }

    // ----- signing keys

    /// Every key with its state: the active one, then retiring, then
    /// retired, newest first within each.
    pub async fn list_keys(&self, actor: Actor<'_>) -> RegistryResult<Vec<SigningKeyRecord>> {
        actor.require(Permission::ReadKeys)?;
        let mut keys = self.domain.repos.keys.list_all().await?;
        // The signing key first, then the ones still verifying, newest first.
        keys.sort_by_key(|k| {
            let rank = match k.state {
                crate::model::KeyState::Active => 0,
                crate::model::KeyState::Next => 1,
                crate::model::KeyState::Retiring => 2,
                crate::model::KeyState::Retired => 3,
            };
            (rank, -k.created_at)
        });
        Ok(keys)
    }

    /// A new signing key: published now and signing once verifiers'
    /// cached JWKS hold it (`Staged`), or signing at once (`Immediate`,
    /// the emergency path); the previous one keeps verifying until its
    /// tokens have expired. Returns the new key.
    pub async fn rotate_key(
        &self,
        actor: Actor<'_>,
        alg: Option<KeyAlgorithm>,
        when: KeyRotation,
    ) -> RegistryResult<SigningKeyRecord> {
        actor.require(Permission::RotateKeys)?;
        // By default the algorithm stays what it is: a rotation is no time
        // to surprise resource servers with a new one.
        let alg = match alg {
            Some(alg) => alg,
            None => self
                .domain
                .repos
                .keys
                .list_published()
                .await?
                .into_iter()
                .find(|k| k.state == crate::model::KeyState::Active)
                .and_then(|k| k.alg.parse().ok())
                .unwrap_or(self.key_algorithm),
        };
        let now = self.domain.clock.now();
        let (kid, detail) = match when {
            KeyRotation::Staged => self.keys.rotate(alg, now).await.map(|staged| {
                let detail = format!("alg {alg}; signs from {}", staged.activates_at);
                (staged.kid, detail)
            }),
            KeyRotation::Immediate => self
                .keys
                .rotate_now(alg, now)
                .await
                .map(|kid| (kid, format!("alg {alg}; immediate"))),
        }
        .map_err(|e| match e {
            KeyError::Store(e) => RegistryError::Store(e),
            already @ KeyError::AlreadyStaged { .. } => {
                RegistryError::Conflict(already.to_string())
            }
            other => RegistryError::Store(StoreError::Other(other.to_string())),
        })?;
        self.audit(actor, kind::KEY_ROTATED, &kid, Some(detail))
            .await;
        self.domain
            .repos
            .keys
            .list_all()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| RegistryError::NotFound(format!("no key {kid:?}")))
    }
}

/// An app as the admin API, the console and `--output json` show it. Never
/// the secret or its hash.
pub fn app_json(a: &App) -> Value {
    json!({
        "id": a.id,
        "client_id": a.client_id,
        "name": a.name,
        "type": a.app_type.as_str(),
        "active": a.active,
        "has_secret": a.secret_hash.is_some(),
        "client_secret_jwt": a.accepts_client_secret_jwt(),
        "previous_secret_expires_at": a.previous_secret.as_ref().map(|p| p.expires_at),
        "keys": match (&a.jwks, &a.certificate) {
            (Some(_), _) => "jwks",
            (None, Some(_)) => "certificate",
            (None, None) => "none",
        },
        "grant_types": a.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "redirect_uris": a.redirect_uris,
        "scopes": a.scopes,
        "app_roles": a.app_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "access_token_ttl": a.access_token_ttl,
        "refresh_token_ttl": a.refresh_token_ttl,
        "session_lifetime": a.session_lifetime,
        "refresh_token_reuse_interval": a.refresh_token_reuse_interval,
    })
}

pub fn resource_server_json(s: &ResourceServer) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "audience": s.audience,
        "scopes": s.scopes,
        "qualified_scopes": s.scopes.iter().map(|sc| format!("{}{sc}", s.audience)).collect::<Vec<_>>(),
    })
}

/// A signing key's public half and its life; never the private key.
pub fn key_json(k: &SigningKeyRecord) -> Value {
    let jwk: Value = serde_json::from_str(&k.public_jwk).unwrap_or(Value::Null);
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state.as_str(),
        "created_at": k.created_at,
        "activates_at": k.activates_at,
        "retiring_at": k.retiring_at,
        "retired_at": k.retired_at,
        "public_jwk": jwk,
    })
}
