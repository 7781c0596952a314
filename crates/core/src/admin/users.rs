//! `/admin/v1/Users` and `/admin/v1/Me`.

use serde_json::Value;

use super::{
    Actor, AdminError, AdminResult, Answer, Caller, DirectoryService, ListParams, Permission,
};
use crate::admin::BearerError;
use crate::audit::kind;
use crate::model::User;
use std::net::IpAddr;

use crate::error::OAuthErrorKind;
use crate::meta::RequestMeta;
use crate::password::Password;
use crate::scim::ScimError;
use crate::scim::discovery::USER_EXTENSION;
use crate::scim::patch::{self, OpKind, Operation};
use crate::scim::resource::{Projection, cursor_list_response, get_ci, list_response};
use crate::scim::user::{USER_SCHEMA, UserSchema, UserWrite, user_resource};
use crate::scope::ME_SCOPE;
use crate::sign_in::PasswordCheck;
use crate::store::UserRecord;

/// Attributes no write may change.
const READ_ONLY: [&str; 3] = ["id", "meta", "groups"];

/// A PATCH retried this often when another write slips in between the
/// read and the write (without If-Match).
const PATCH_ATTEMPTS: usize = 3;

fn require_schema(doc: &Value) -> Result<(), ScimError> {
    let ok = doc
        .as_object()
        .and_then(|o| get_ci(o, "schemas"))
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(USER_SCHEMA)));
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "schemas must contain {USER_SCHEMA}"
        )))
    }
}

/// The stored form of a write; `active` as it is now when the write
/// leaves it out (`true` for a new user).
fn record(write: &UserWrite, active_now: bool) -> UserRecord {
    UserRecord {
        username: write.user_name.clone(),
        external_id: write.external_id.clone(),
        given_name: write.given_name.clone(),
        family_name: write.family_name.clone(),
        display_name: write.display_name.clone(),
        email: write.email.clone(),
        active: write.active.unwrap_or(active_now),
    }
}

fn is_lock_op(op: &Operation) -> bool {
    op.path
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{USER_EXTENSION}:locked")))
}

fn is_current_password_op(op: &Operation) -> bool {
    op.path
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{USER_EXTENSION}:currentPassword")))
}

fn is_password_op(op: &Operation) -> bool {
    op.path
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("password"))
}

/// The attributes that decide whether a user may sign in. `remove` would
/// leave them without a value, which RFC 7643 gives no meaning: it must
/// not silently re-enable a deactivated or locked account (nor quietly do
/// nothing), so it is refused and the client says what it means.
fn refuse_removing_a_guard(operations: &[Operation]) -> Result<(), ScimError> {
    for op in operations.iter().filter(|op| op.kind == OpKind::Remove) {
        let target = op.target().unwrap_or_default().to_ascii_lowercase();
        let guard = ["active", "password", "locked"]
            .into_iter()
            .find(|g| target == *g || target.ends_with(&format!(":{g}")));
        if let Some(guard) = guard {
            return Err(ScimError::invalid_value(format!(
                "{guard} cannot be removed: it decides whether the user may sign in; replace it with the value you mean"
            )));
        }
    }
    Ok(())
}

/// A token of the user may read `/Me`; only one meant for self-service
/// (or for the admin API) may change it: an `openid` token handed to some
/// public app must not be enough to rewrite the account.
fn may_write_self(caller: &Caller) -> Result<String, BearerError> {
    let id = caller.user()?.to_owned();
    if caller.has_scope(ME_SCOPE) || caller.has_scope(crate::scope::MY_SCOPES) {
        return Ok(id);
    }
    Err(BearerError::Insufficient {
        scope: ME_SCOPE,
        detail: format!("changing your own account needs the {ME_SCOPE} scope"),
    })
}

/// Who is writing a user: decides which attributes may change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// WriteUsers: everything.
    Admin,
    /// ResetPasswords / UnlockUsers only.
    HelpDesk,
    /// The user, through /Me: not `active` nor `userName`; the client's
    /// address is the one the current-password check is throttled for.
    Self_(Option<IpAddr>),
}

impl DirectoryService {
    async fn render_user(&self, user: &User) -> AdminResult<Value> {
        let mut groups = self
            .repos
            .directory
            .groups_of_users(std::slice::from_ref(&user.id))
            .await?;
        Ok(user_resource(
            user,
            &groups.remove(&user.id).unwrap_or_default(),
            &self.base_url,
        ))
    }

    async fn load_user(&self, id: &str) -> AdminResult<User> {
        self.repos
            .users
            .find_by_id(id)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no user {id}")).into())
    }

    /// The user `id`, when `actor` may act on them: they hold no role
    /// the actor lacks (`privilege.rs`). Every write on another user
    /// passes here, whichever door it came through.
    pub(super) async fn user_to_change(&self, actor: Actor<'_>, id: &str) -> AdminResult<User> {
        let user = self.load_user(id).await?;
        let roles = self.repos.users.effective_roles(&user.id).await?;
        actor.may_act_on(&roles, "this user")?;
        Ok(user)
    }

    pub async fn list_users(&self, caller: &Caller, params: &ListParams) -> AdminResult<Answer> {
        caller.require(Permission::ReadUsers)?;
        let (query, projection) = params.query::<UserSchema>()?;
        let page = self.repos.directory.query_users(&query).await?;
        let ids: Vec<String> = page.items.iter().map(|u| u.id.clone()).collect();
        let mut groups = self.repos.directory.groups_of_users(&ids).await?;
        let resources = page
            .items
            .iter()
            .map(|u| {
                projection.apply(user_resource(
                    u,
                    &groups.remove(&u.id).unwrap_or_default(),
                    &self.base_url,
                ))
            })
            .collect();
        Ok(Answer {
            status: 200,
            body: match &query.cursor {
                None => list_response(page.total, query.start_index, resources),
                Some(_) => cursor_list_response(
                    page.total,
                    resources,
                    page.more
                        .then(|| page.items.last().map(|r| super::encode_cursor(&r.id)))
                        .flatten(),
                ),
            },
            etag: None,
            location: None,
        })
    }

    pub async fn get_user(
        &self,
        caller: &Caller,
        id: &str,
        projection: &Projection,
    ) -> AdminResult<Answer> {
        caller.require(Permission::ReadUsers)?;
        let user = self.load_user(id).await?;
        let mut answer = Answer::resource(200, self.render_user(&user).await?);
        answer.body = projection.apply(answer.body);
        Ok(answer)
    }

    pub async fn create_user(&self, caller: &Caller, doc: &Value) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        require_schema(doc)?;
        let write = UserWrite::from_resource(doc)?;
        let hash = match &write.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let user = self
            .repos
            .directory
            .create_user(&record(&write, true), hash.as_deref(), self.clock.now())
            .await?;
        tracing::info!(
            user_id = user.id.as_str(),
            by = caller.subject.as_str(),
            "user created through SCIM"
        );
        self.audit(
            kind::USER_CREATED,
            &caller.subject,
            &user.id,
            Some(user.username.clone()),
        )
        .await;
        Ok(Answer::resource(201, self.render_user(&user).await?))
    }

    pub async fn replace_user(
        &self,
        caller: &Caller,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        require_schema(doc)?;
        self.user_to_change(Actor::Caller(caller), id).await?;
        self.put(id, doc, if_version, Writer::Admin, &caller.subject)
            .await
    }

    async fn put(
        &self,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
        writer: Writer,
        by: &str,
    ) -> AdminResult<Answer> {
        let write = UserWrite::from_resource(doc)?;
        let current = self.load_user(id).await?;
        if matches!(writer, Writer::Self_(_))
            && (write.active.is_some_and(|a| a != current.active)
                || write.user_name != current.username)
        {
            return Err(ScimError::mutability(
                "a user may not change their own userName or active state",
            )
            .into());
        }
        if let (Writer::Self_(ip), Some(_)) = (writer, &write.password) {
            self.check_current_password(&current, doc, ip).await?;
        }
        let hash = match &write.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let user = self
            .repos
            .directory
            .replace_user(
                id,
                &record(&write, current.active),
                hash.as_deref(),
                if_version,
                self.clock.now(),
            )
            .await?;
        tracing::info!(
            user_id = id,
            by = by,
            password_changed = hash.is_some(),
            "user replaced through SCIM"
        );
        self.audit(kind::USER_UPDATED, by, id, None).await;
        if hash.is_some() {
            self.audit(kind::PASSWORD_CHANGED, by, id, None).await;
        }
        Ok(Answer::resource(200, self.render_user(&user).await?))
    }

    /// A user changing their own password proves they know the current
    /// one (`urn:…:latchkey:2.0:User:currentPassword`): a stolen access
    /// token alone must not be enough to take the account over. The proof
    /// goes through the sign-in gate (`sign_in::PasswordCheck`), so it is
    /// throttled, counted and timed exactly as a sign-in: a stolen token
    /// is no password oracle.
    async fn check_current_password(
        &self,
        user: &User,
        doc: &Value,
        ip: Option<IpAddr>,
    ) -> AdminResult<()> {
        let given = doc
            .as_object()
            .and_then(|o| get_ci(o, USER_EXTENSION))
            .and_then(Value::as_object)
            .and_then(|e| get_ci(e, "currentPassword"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "changing your own password needs {USER_EXTENSION}:currentPassword"
                ))
            })?;
        let gate = PasswordCheck {
            repos: &self.repos,
            hasher: &self.hasher,
            policy: &self.throttle,
            clock: self.clock.as_ref(),
        };
        let refused = match gate.check(&user.username, &Password::new(given), ip).await {
            Ok(signed_in) if signed_in.id == user.id => return Ok(()),
            Ok(_) => "another user".to_owned(),
            Err(e) => match e.kind {
                OAuthErrorKind::InvalidGrant => e.detail.unwrap_or_default(),
                OAuthErrorKind::TemporarilyUnavailable { .. } => {
                    return Err(
                        ScimError::unavailable("password hashing is busy; retry shortly").into(),
                    );
                }
                _ => return Err(ScimError::server(e.to_string()).into()),
            },
        };
        tracing::info!(user_id = user.id.as_str(), ip = ?ip, reason = refused.as_str(), "self-service password change refused: the current password did not check");
        let event =
            crate::audit::AuditEvent::new(kind::PASSWORD_CHANGE_REFUSED, false, self.clock.now())
                .actor(&user.id)
                .subject(&user.id)
                .ip(ip)
                .detail(refused);
        crate::audit::record(self.repos.audit.as_ref(), event).await;
        Err(ScimError::invalid_value("currentPassword is not the current password").into())
    }

    pub async fn patch_user(
        &self,
        caller: &Caller,
        id: &str,
        body: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        let operations =
            patch::split_extension(patch::parse_operations(body)?, USER_EXTENSION, &["locked"])?;
        let writer = if caller.may(Permission::WriteUsers) {
            Writer::Admin
        } else {
            // A help desk may reset passwords and unlock, nothing else.
            let resets = operations
                .iter()
                .all(|op| is_password_op(op) || is_lock_op(op));
            let needed = if operations.iter().any(is_password_op) {
                Permission::ResetPasswords
            } else {
                Permission::UnlockUsers
            };
            if !resets {
                caller.require(Permission::WriteUsers)?;
            }
            caller.require(needed)?;
            Writer::HelpDesk
        };
        self.user_to_change(Actor::Caller(caller), id).await?;
        self.patch(id, operations, if_version, writer, &caller.subject)
            .await
    }

    async fn patch(
        &self,
        id: &str,
        operations: Vec<Operation>,
        if_version: Option<i64>,
        writer: Writer,
        by: &str,
    ) -> AdminResult<Answer> {
        refuse_removing_a_guard(&operations)?;
        let (locks, operations): (Vec<Operation>, Vec<Operation>) =
            operations.into_iter().partition(is_lock_op);
        let (proofs, operations): (Vec<Operation>, Vec<Operation>) =
            operations.into_iter().partition(is_current_password_op);
        let current_password = proofs.last().and_then(|op| op.value.clone());
        // The last lock operation decides: lock (true) or unlock.
        let mut lock = None;
        for op in &locks {
            lock = Some(match (op.kind, &op.value) {
                (_, Some(Value::Bool(false))) => false,
                (_, Some(Value::Bool(true))) => true,
                _ => return Err(ScimError::invalid_value("locked must be true or false").into()),
            });
        }
        match (lock, writer) {
            (Some(_), Writer::Self_(_)) => {
                return Err(
                    ScimError::mutability("a user may not lock or unlock themselves").into(),
                );
            }
            (Some(true), Writer::HelpDesk) => {
                return Err(AdminError::Denied(BearerError::Insufficient {
                    scope: crate::scope::MY_SCOPES,
                    detail: "locking a user needs the User Administrator or Identity Domain Administrator role".into(),
                }));
            }
            _ => {}
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load_user(id).await?;
            if if_version.is_some_and(|v| v != current.version) {
                return Err(ScimError::precondition_failed().into());
            }
            if !operations.is_empty() {
                let mut doc = self.render_user(&current).await?;
                patch::apply(&mut doc, &operations, &READ_ONLY, USER_SCHEMA)?;
                if let Some(proof) = &current_password {
                    doc[USER_EXTENSION]["currentPassword"] = proof.clone();
                }
                match self.put(id, &doc, Some(current.version), writer, by).await {
                    Err(AdminError::Scim(e))
                        if e.status == 412 && if_version.is_none() && attempt < PATCH_ATTEMPTS =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                    Ok(answer) if lock.is_none() => return Ok(answer),
                    Ok(_) => {}
                }
            }
            if let Some(locked) = lock {
                self.set_lock(&current, locked, by).await?;
            }
            let user = self.load_user(id).await?;
            return Ok(Answer::resource(200, self.render_user(&user).await?));
        }
    }

    /// Locks (ending the user's sessions) or unlocks (also clearing the
    /// failed-login throttle).
    async fn set_lock(&self, user: &User, locked: bool, by: &str) -> AdminResult<()> {
        self.repos
            .users
            .set_locked(&user.id, locked, self.clock.now())
            .await?;
        if !locked {
            self.repos
                .throttle
                .clear_username(&user.username.to_lowercase())
                .await?;
        }
        tracing::info!(
            user_id = user.id.as_str(),
            by = by,
            locked,
            "user lock changed through SCIM"
        );
        let event = if locked {
            kind::USER_LOCKED
        } else {
            kind::USER_UNLOCKED
        };
        self.audit(event, by, &user.id, None).await;
        Ok(())
    }

    pub async fn delete_user(
        &self,
        caller: &Caller,
        id: &str,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        if caller.user_id.as_deref() == Some(id) {
            return Err(ScimError::new(409, None, "a user cannot delete themselves").into());
        }
        self.user_to_change(Actor::Caller(caller), id).await?;
        self.repos.directory.delete_user(id, if_version).await?;
        tracing::info!(
            user_id = id,
            by = caller.subject.as_str(),
            "user deleted through SCIM"
        );
        self.audit(kind::USER_DELETED, &caller.subject, id, None)
            .await;
        Ok(Answer::no_content())
    }

    /// `/Me`: any valid user token reads its own profile.
    pub async fn get_me(&self, caller: &Caller, projection: &Projection) -> AdminResult<Answer> {
        let id = caller.user()?;
        let user = self.load_user(id).await.map_err(|e| match e {
            // The user was deleted while the token lives.
            AdminError::Scim(s) if s.status == 404 => AdminError::Denied(BearerError::Invalid(
                "the token's user no longer exists".into(),
            )),
            other => other,
        })?;
        let mut answer = Answer::resource(200, self.render_user(&user).await?);
        answer.body = projection.apply(answer.body);
        Ok(answer)
    }

    pub async fn replace_me(
        &self,
        caller: &Caller,
        doc: &Value,
        if_version: Option<i64>,
        meta: &RequestMeta,
    ) -> AdminResult<Answer> {
        let id = may_write_self(caller)?;
        require_schema(doc)?;
        self.put(
            &id,
            doc,
            if_version,
            Writer::Self_(meta.ip),
            &caller.subject,
        )
        .await
    }

    pub async fn patch_me(
        &self,
        caller: &Caller,
        body: &Value,
        if_version: Option<i64>,
        meta: &RequestMeta,
    ) -> AdminResult<Answer> {
        let id = may_write_self(caller)?;
        let operations =
            patch::split_extension(patch::parse_operations(body)?, USER_EXTENSION, &["locked"])?;
        self.patch(
            &id,
            operations,
            if_version,
            Writer::Self_(meta.ip),
            &caller.subject,
        )
        .await
    }
}
