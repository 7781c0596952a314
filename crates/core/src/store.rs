//! Repository traits: what the services need from storage, one trait per
//! aggregate. Each method is one transaction; what must be atomic is one
//! purpose-named method. Implemented for SQLite and PostgreSQL in
//! `latchkey-store`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{ApplySummary, DomainPlan, DomainSnapshot};
use crate::model::{
    App, AppRole, Group, PreviousSecret, RefreshTokenRecord, ResourceServer, Session,
    SigningKeyRecord, User,
};
use crate::scim::group::{GroupField, MemberRef};
use crate::scim::query::{ListQuery, Page};
use crate::scim::user::{GroupRef, UserField};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or timed out: answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A conditional write (`If-Match`) found another version.
    #[error("the resource changed (version mismatch)")]
    VersionMismatch,
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A new user created outside the domain file (bootstrap admin, CLI, demo).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub app_roles: Vec<AppRole>,
}

#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Case-insensitive lookup.
    async fn find_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn find_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn list(&self) -> StoreResult<Vec<User>>;
    async fn create(&self, user: NewUser, now: i64) -> StoreResult<User>;
    /// Sets a new password: ends every session of the user (their refresh
    /// tokens and, through `sid`, their access tokens), atomically.
    async fn set_password_hash(&self, user_id: &str, hash: &str, now: i64) -> StoreResult<()>;
    /// Replaces the stored hash of the same password by one with current
    /// parameters (after a successful login); sessions are untouched.
    /// Only while the stored hash is still `old`: an administrator's reset
    /// made meanwhile wins.
    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        old: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Deactivating ends every session of the user, atomically.
    async fn set_active(&self, user_id: &str, active: bool, now: i64) -> StoreResult<()>;
    /// Locking ends every session of the user, atomically.
    async fn set_locked(&self, user_id: &str, locked: bool, now: i64) -> StoreResult<()>;
    async fn delete(&self, user_id: &str) -> StoreResult<()>;
    /// Grants a role to the user directly; false when already held.
    async fn grant_role(&self, user_id: &str, role: AppRole) -> StoreResult<bool>;
    /// Revokes a directly held role; false when not held directly.
    async fn revoke_role(&self, user_id: &str, role: AppRole) -> StoreResult<bool>;
    /// Roles held directly and through groups, deduplicated.
    async fn effective_roles(&self, user_id: &str) -> StoreResult<Vec<AppRole>>;
    async fn exists_with_role(&self, role: AppRole) -> StoreResult<bool>;
}

#[async_trait]
pub trait AppRepo: Send + Sync {
    async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>>;
    async fn list(&self) -> StoreResult<Vec<App>>;
    /// Replaces the client secret; `previous` keeps the old one valid
    /// until its grace ends (or, when `None`, ends any grace period).
    async fn set_secret(&self, app_id: &str, secret: &NewSecret, now: i64) -> StoreResult<()>;
    /// Deactivating ends every session of the app, atomically.
    async fn set_active(&self, app_id: &str, active: bool, now: i64) -> StoreResult<()>;
    async fn delete(&self, app_id: &str) -> StoreResult<()>;
    /// Apps were written behind this repository's back (through
    /// `DomainRepo::apply`): a cache in front of it forgets what it holds.
    fn changed(&self) {}
}

/// A client secret's stored forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    pub hash: String,
    /// Sealed under the master key, for apps that accept client_secret_jwt.
    pub sealed: Option<String>,
    pub previous: Option<PreviousSecret>,
}

/// The replay cache of client assertions, shared by every node.
#[async_trait]
pub trait AssertionReplayRepo: Send + Sync {
    /// Remembers `jti` for `client_id` until `expires_at`. False when it
    /// was already remembered: the assertion is a replay.
    async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool>;
    /// Forgets up to `limit` entries that expired before `now`.
    async fn purge_assertions(&self, now: i64, limit: u32) -> StoreResult<u64>;
}

#[async_trait]
pub trait ResourceServerRepo: Send + Sync {
    async fn list(&self) -> StoreResult<Vec<ResourceServer>>;
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// As `AppRepo::changed`.
    fn changed(&self) {}
}

/// A refresh token with the session and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshContext {
    pub token: RefreshTokenRecord,
    pub session: Session,
    pub user: User,
}

/// Outcome of exchanging a refresh token for its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    Rotated,
    /// The token had already been exchanged (or its session ended): the
    /// session is now revoked, and with it every token of the family.
    ReuseDetected,
}

/// The refresh grant's decision about a token it presented, made where
/// the store holds the token (inside SQLite's batch, see `TokenRepo::refresh`).
/// Pure and quick: it runs on the store's writer.
pub type RefreshJudge = Box<dyn FnOnce(&RefreshContext) -> RefreshVerdict + Send>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Exchange the token for this successor.
    Rotate(RefreshTokenRecord),
    /// Refuse it; with `end_session`, revoke its session (and so its
    /// whole family) too.
    Refuse { end_session: bool },
}

/// What became of a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// No such token.
    Unknown,
    /// The judge refused it (and its session was revoked if it said so).
    Refused(RefreshContext),
    /// Rotated to the judge's successor.
    Rotated(RefreshContext),
    /// The judge would rotate it, but it was exchanged (or its session
    /// ended) meanwhile: reuse. The session is now revoked.
    Lost(RefreshContext),
}

/// `TokenRepo::refresh` as a lookup, the judgement, then a rotation or a
/// revocation: for stores that do not batch.
pub async fn refresh_in_three_calls<R: TokenRepo + ?Sized>(
    repo: &R,
    token_hash: &str,
    now: i64,
    judge: RefreshJudge,
) -> StoreResult<Refreshed> {
    let Some(context) = repo.find_refresh(token_hash).await? else {
        return Ok(Refreshed::Unknown);
    };
    match judge(&context) {
        RefreshVerdict::Refuse { end_session } => {
            if end_session {
                repo.revoke_session(&context.session.id, now).await?;
            }
            Ok(Refreshed::Refused(context))
        }
        RefreshVerdict::Rotate(successor) => {
            match repo.rotate_refresh(token_hash, &successor, now).await? {
                Rotation::Rotated => Ok(Refreshed::Rotated(context)),
                Rotation::ReuseDetected => Ok(Refreshed::Lost(context)),
            }
        }
    }
}

#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Starts a session and stores its first refresh token, atomically.
    /// With `max_live`, the user's oldest live sessions beyond that many
    /// are ended in the same transaction.
    async fn start_session(
        &self,
        session: &Session,
        first_refresh: Option<&RefreshTokenRecord>,
        max_live: Option<u32>,
    ) -> StoreResult<()>;
    /// The refresh token with its session and user, in one read.
    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshContext>>;
    async fn find_session(&self, session_id: &str) -> StoreResult<Option<Session>>;
    /// Marks `old_hash` rotated and stores `new` in one transaction, if and
    /// only if `old_hash` was not rotated before and its session is live;
    /// otherwise revokes the session.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation>;
    /// The refresh grant's whole storage work: finds the token with its
    /// session and user, asks `judge`, and rotates or refuses as judged,
    /// the rotation as atomic as `rotate_refresh`. This default does it in
    /// three calls (`refresh_in_three_calls`); SQLite batches concurrent refreshes into one lookup
    /// and one transaction.
    async fn refresh(
        &self,
        token_hash: &str,
        now: i64,
        judge: RefreshJudge,
    ) -> StoreResult<Refreshed> {
        refresh_in_three_calls(self, token_hash, now, judge).await
    }
    async fn revoke_session(&self, session_id: &str, now: i64) -> StoreResult<()>;
    /// Live (not revoked) sessions of a user, newest first.
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<Session>>;
    /// Ends every session of a user; returns how many were live.
    async fn revoke_user_sessions(&self, user_id: &str, now: i64) -> StoreResult<u64>;
    /// Puts an access token's `jti` on the deny list until `expires_at`.
    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()>;
    /// True when the access token was revoked, or names a session that is
    /// no longer live (ended, or deleted with its user).
    async fn access_token_revoked(&self, jti: &str, session_id: Option<&str>) -> StoreResult<bool>;
    /// Deletes up to `limit` refresh tokens that expired before `now`.
    async fn purge_refresh_tokens(&self, now: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` deny-list entries of expired access tokens.
    async fn purge_denied_tokens(&self, now: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` sessions that ended before `ended_before`, or
    /// that started before `idle_before` and hold no refresh token.
    async fn purge_sessions(
        &self,
        ended_before: i64,
        idle_before: i64,
        limit: u32,
    ) -> StoreResult<u64>;
}

#[async_trait]
pub trait KeyRepo: Send + Sync {
    /// Keys that are published (active and retiring), newest first.
    async fn list_published(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn list_all(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Stores `key` as the active key; the previous active key becomes
    /// retiring (as of `key.created_at`). Atomic.
    async fn activate(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Scheduled rotation: activates `key` only if the active key was
    /// created at or before `due_before`. Exactly one of several nodes
    /// racing wins (a database lock is held while checking). True when
    /// `key` became active.
    async fn activate_if_due(&self, key: &SigningKeyRecord, due_before: i64) -> StoreResult<bool>;
    /// Retires (removes from the JWKS) the keys that stopped signing at or
    /// before `retiring_before`. Returns how many.
    async fn retire_keys(&self, retiring_before: i64, now: i64) -> StoreResult<u64>;
}

#[async_trait]
pub trait DomainRepo: Send + Sync {
    /// Applies a validated plan in one transaction: creates what is missing,
    /// updates what differs, touches nothing else.
    async fn apply(&self, plan: &DomainPlan, now: i64) -> StoreResult<ApplySummary>;
    /// Everything a domain file can describe, read in one transaction and
    /// sorted by natural key (for `export`, and for `apply` to check ids).
    async fn snapshot(&self) -> StoreResult<DomainSnapshot>;
    /// Names of every group (so a domain file may refer to them).
    async fn group_names(&self) -> StoreResult<Vec<String>>;
    /// True when the domain holds no resource server and no app.
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Round trip to the database (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// The connection pool now (metrics).
    fn pool_stats(&self) -> PoolStats;
    /// How long taking a connection from the pool takes now (metrics).
    async fn acquire_latency(&self) -> StoreResult<std::time::Duration>;
}

/// Connections of the pool(s) serving requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections nobody is using.
    pub idle: u32,
    /// The most the pool will open.
    pub max: u32,
}

/// A user's SCIM-writable attributes, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

/// The identity domain's directory as the SCIM API sees it: queries that
/// filter, sort and page in the database, and conditional writes. Every
/// write increments the resource's version (its ETag); `if_version`
/// makes it conditional (`VersionMismatch` when another write came first).
#[async_trait]
pub trait DirectoryRepo: Send + Sync {
    async fn query_users(&self, query: &ListQuery<UserField>) -> StoreResult<Page<User>>;
    /// The groups of each user, by user id.
    async fn groups_of_users(
        &self,
        user_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<GroupRef>>>;
    /// `Conflict` when the username is taken (ignoring case).
    async fn create_user(
        &self,
        user: &UserRecord,
        password_hash: Option<&str>,
        now: i64,
    ) -> StoreResult<User>;
    /// Replaces every writable attribute. A new password hash, or
    /// deactivation, ends the user's sessions in the same transaction.
    async fn replace_user(
        &self,
        id: &str,
        user: &UserRecord,
        password_hash: Option<&str>,
        if_version: Option<i64>,
        now: i64,
    ) -> StoreResult<User>;
    async fn delete_user(&self, id: &str, if_version: Option<i64>) -> StoreResult<()>;

    async fn query_groups(&self, query: &ListQuery<GroupField>) -> StoreResult<Page<Group>>;
    async fn find_group(&self, id: &str) -> StoreResult<Option<Group>>;
    /// The members of each group, by group id.
    async fn members_of(
        &self,
        group_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<MemberRef>>>;
    /// `Conflict` when the name is taken; `NotFound` when a member is not
    /// a user.
    async fn create_group(
        &self,
        name: &str,
        external_id: Option<&str>,
        members: &[String],
        now: i64,
    ) -> StoreResult<Group>;
    async fn replace_group(
        &self,
        id: &str,
        name: &str,
        external_id: Option<&str>,
        members: &[String],
        if_version: Option<i64>,
        now: i64,
    ) -> StoreResult<Group>;
    async fn delete_group(&self, id: &str, if_version: Option<i64>) -> StoreResult<()>;

    /// The application roles the group holds itself, sorted.
    async fn group_roles(&self, group_id: &str) -> StoreResult<Vec<AppRole>>;
    /// Grants a role to the group (and so to its members); false when it
    /// held it already, `NotFound` when there is no such group.
    async fn grant_group_role(&self, group_id: &str, role: AppRole) -> StoreResult<bool>;
    /// Revokes a role from the group; false when it did not hold it,
    /// `NotFound` when there is no such group.
    async fn revoke_group_role(&self, group_id: &str, role: AppRole) -> StoreResult<bool>;
    /// The user's roles with where each comes from: one entry for a role
    /// held directly and one per group it comes through, sorted by role
    /// (in `AppRole` order), the direct grant first, then by group name.
    async fn held_roles(&self, user_id: &str) -> StoreResult<Vec<HeldRole>>;
}

/// One way a user holds an application role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRole {
    pub role: AppRole,
    /// The group it comes through; `None` when granted to the user directly.
    pub via: Option<GroupRef>,
}

/// Every repository, as trait objects: handlers carry no generic bounds.
#[derive(Clone)]
pub struct Repos {
    pub users: Arc<dyn UserRepo>,
    pub apps: Arc<dyn AppRepo>,
    pub resource_servers: Arc<dyn ResourceServerRepo>,
    pub tokens: Arc<dyn TokenRepo>,
    pub keys: Arc<dyn KeyRepo>,
    pub domain: Arc<dyn DomainRepo>,
    pub throttle: Arc<dyn crate::throttle::ThrottleRepo>,
    pub assertions: Arc<dyn AssertionReplayRepo>,
    pub directory: Arc<dyn DirectoryRepo>,
    pub audit: Arc<dyn crate::audit::AuditRepo>,
    /// Signed-in console browsers.
    pub console_sessions: Arc<dyn crate::console::ConsoleSessionRepo>,
}

impl Repos {
    /// All repositories served by one backend value.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: UserRepo
            + AppRepo
            + ResourceServerRepo
            + TokenRepo
            + KeyRepo
            + DomainRepo
            + crate::throttle::ThrottleRepo
            + AssertionReplayRepo
            + DirectoryRepo
            + crate::audit::AuditRepo
            + crate::console::ConsoleSessionRepo
            + 'static,
    {
        Repos {
            users: backend.clone(),
            apps: backend.clone(),
            resource_servers: backend.clone(),
            tokens: backend.clone(),
            keys: backend.clone(),
            throttle: backend.clone(),
            assertions: backend.clone(),
            directory: backend.clone(),
            audit: backend.clone(),
            console_sessions: backend.clone(),
            domain: backend,
        }
    }
}
