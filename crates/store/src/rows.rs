//! Rows as both engines return them, and their conversion to the model.
//! List-valued app fields are stored as JSON text.

use latchkey_core::model::{
    App, AppRole, AppType, GrantType, Group, KeyState, PreviousSecret, RefreshTokenRecord,
    ResourceServer, Session, SigningKeyRecord, User,
};
use latchkey_core::store::{RefreshContext, StoreError};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is unreadable: {detail}"))
}

pub(crate) fn to_json(list: &[impl AsRef<str>]) -> String {
    serde_json::to_string(&list.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
        .expect("strings serialise")
}

fn from_json(what: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn parse_all<T: std::str::FromStr>(what: &str, text: &str) -> Result<Vec<T>, StoreError>
where
    T::Err: std::fmt::Display,
{
    from_json(what, text)?
        .iter()
        .map(|s| s.parse::<T>().map_err(|e| corrupt(what, e)))
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub version: i64,
    pub locked: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            given_name: r.given_name,
            family_name: r.family_name,
            email: r.email,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            external_id: r.external_id,
            display_name: r.display_name,
            version: r.version,
            locked: r.locked,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GroupRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub external_id: Option<String>,
}

impl From<GroupRow> for Group {
    fn from(r: GroupRow) -> Self {
        Group {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            external_id: r.external_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AppRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub app_type: String,
    pub active: bool,
    pub secret_hash: Option<String>,
    pub secret_sealed: Option<String>,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub grant_types: String,
    pub redirect_uris: String,
    pub scopes: String,
    pub app_roles: String,
    pub jwks: Option<String>,
    pub certificate: Option<String>,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_lifetime: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub tokens_revoked_at: Option<i64>,
    pub refresh_token_reuse_interval: i64,
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;
    fn try_from(r: AppRow) -> Result<Self, StoreError> {
        Ok(App {
            app_type: r
                .app_type
                .parse::<AppType>()
                .map_err(|e| corrupt("app type", e))?,
            grant_types: parse_all::<GrantType>("grant types", &r.grant_types)?,
            redirect_uris: from_json("redirect URIs", &r.redirect_uris)?,
            scopes: from_json("scopes", &r.scopes)?,
            app_roles: parse_all::<AppRole>("app roles", &r.app_roles)?,
            id: r.id,
            client_id: r.client_id,
            name: r.name,
            active: r.active,
            previous_secret: match (r.previous_secret_hash, r.previous_secret_expires_at) {
                (Some(hash), Some(expires_at)) => Some(PreviousSecret {
                    hash,
                    sealed: r.previous_secret_sealed,
                    expires_at,
                }),
                _ => None,
            },
            secret_hash: r.secret_hash,
            secret_sealed: r.secret_sealed,
            jwks: r.jwks,
            certificate: r.certificate,
            access_token_ttl: r.access_token_ttl,
            refresh_token_ttl: r.refresh_token_ttl,
            session_lifetime: r.session_lifetime,
            refresh_token_reuse_interval: r.refresh_token_reuse_interval,
            created_at: r.created_at,
            updated_at: r.updated_at,
            tokens_revoked_at: r.tokens_revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ResourceServerRow {
    pub id: String,
    pub name: String,
    pub audience: String,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<ResourceServerRow> for ResourceServer {
    type Error = StoreError;
    fn try_from(r: ResourceServerRow) -> Result<Self, StoreError> {
        Ok(ResourceServer {
            scopes: from_json("resource server scopes", &r.scopes)?,
            id: r.id,
            name: r.name,
            audience: r.audience,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub app_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub generation: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            app_id: r.app_id,
            auth_time: r.auth_time,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            generation: r.generation,
        }
    }
}

/// A refresh token joined with its session and user; each engine adds
/// its `WHERE` (one hash on PostgreSQL, a batch of them on SQLite).
pub(crate) const REFRESH_CONTEXT_SELECT: &str = "SELECT r.token_hash, r.session_id, r.app_id, r.user_id, r.scope, r.issued_at, r.expires_at, r.rotated_at, r.generation, \
        s.generation AS s_generation, s.auth_time AS s_auth_time, s.created_at AS s_created_at, s.revoked_at AS s_revoked_at, \
        u.username AS u_username, u.password_hash AS u_password_hash, u.given_name AS u_given_name, \
        u.family_name AS u_family_name, u.email AS u_email, u.active AS u_active, \
        u.created_at AS u_created_at, u.updated_at AS u_updated_at, u.external_id AS u_external_id, \
        u.display_name AS u_display_name, u.version AS u_version, u.locked AS u_locked \
    FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = r.user_id";

/// A refresh token joined with its session and user.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshContextRow {
    pub token_hash: String,
    pub session_id: String,
    pub app_id: String,
    pub user_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub generation: i64,
    pub s_generation: i64,
    pub s_auth_time: i64,
    pub s_created_at: i64,
    pub s_revoked_at: Option<i64>,
    pub u_username: String,
    pub u_password_hash: Option<String>,
    pub u_given_name: Option<String>,
    pub u_family_name: Option<String>,
    pub u_email: Option<String>,
    pub u_active: bool,
    pub u_created_at: i64,
    pub u_updated_at: i64,
    pub u_external_id: Option<String>,
    pub u_display_name: Option<String>,
    pub u_version: i64,
    pub u_locked: bool,
}

impl From<RefreshContextRow> for RefreshContext {
    fn from(r: RefreshContextRow) -> Self {
        RefreshContext {
            session: Session {
                id: r.session_id.clone(),
                user_id: r.user_id.clone(),
                app_id: r.app_id.clone(),
                auth_time: r.s_auth_time,
                created_at: r.s_created_at,
                revoked_at: r.s_revoked_at,
                generation: r.s_generation,
            },
            user: User {
                id: r.user_id.clone(),
                username: r.u_username,
                password_hash: r.u_password_hash,
                given_name: r.u_given_name,
                family_name: r.u_family_name,
                email: r.u_email,
                active: r.u_active,
                created_at: r.u_created_at,
                updated_at: r.u_updated_at,
                external_id: r.u_external_id,
                display_name: r.u_display_name,
                version: r.u_version,
                locked: r.u_locked,
            },
            token: RefreshTokenRecord {
                token_hash: r.token_hash,
                session_id: r.session_id,
                app_id: r.app_id,
                user_id: r.user_id,
                scope: r.scope,
                issued_at: r.issued_at,
                expires_at: r.expires_at,
                rotated_at: r.rotated_at,
                generation: r.generation,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub encrypted_private_key: Vec<u8>,
    pub public_jwk: String,
    pub state: String,
    pub created_at: i64,
    pub activates_at: Option<i64>,
    pub retiring_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for SigningKeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(SigningKeyRecord {
            state: KeyState::parse(&r.state).ok_or_else(|| corrupt("key state", &r.state))?,
            kid: r.kid,
            alg: r.alg,
            encrypted_private_key: r.encrypted_private_key,
            public_jwk: r.public_jwk,
            created_at: r.created_at,
            activates_at: r.activates_at,
            retiring_at: r.retiring_at,
            retired_at: r.retired_at,
        })
    }
}

/// The comparable state of a stored app, for `apply`.
pub(crate) fn roles_json(roles: &[AppRole]) -> String {
    to_json(&roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
}

pub(crate) fn grants_json(grants: &[GrantType]) -> String {
    to_json(&grants.iter().map(|g| g.as_str()).collect::<Vec<_>>())
}
