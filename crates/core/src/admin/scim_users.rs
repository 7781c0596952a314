//! `/admin/v1/Users` and `/admin/v1/Me` over the typed directory: SCIM
//! documents and PATCH operations become a typed `UserChange`; what may
//! change is the directory's to decide.

use serde_json::Value;

use super::{
    Actor, AdminResult, Answer, Caller, ListParams, Outcome, ScimDirectory, list_answer,
    require_schema,
};
use crate::directory::{DirectoryError, NewUser, Profile, UserChange, UserView};
use crate::meta::RequestMeta;
use crate::password::Password;
use crate::scim::ScimError;
use crate::scim::discovery::USER_EXTENSION;
use crate::scim::patch::{self, OpKind, Operation};
use crate::scim::resource::{Projection, get_ci};
use crate::scim::user::{USER_SCHEMA, UserSchema, UserWrite, user_resource};

/// Attributes no write may change.
const READ_ONLY: [&str; 3] = ["id", "meta", "groups"];

/// A PATCH retried this often when another write slips in between the
/// read and the write (without If-Match).
const PATCH_ATTEMPTS: usize = 3;

fn profile(write: &UserWrite) -> Profile {
    Profile {
        username: write.user_name.clone(),
        external_id: write.external_id.clone(),
        given_name: write.given_name.clone(),
        family_name: write.family_name.clone(),
        display_name: write.display_name.clone(),
        email: write.email.clone(),
    }
}

fn extension_path(op: &Operation, attribute: &str) -> bool {
    op.path
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{USER_EXTENSION}:{attribute}")))
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

/// Whose account a PATCH changes: a user an administrator names, or the
/// caller's own (with the address its current-password proof is
/// throttled for).
#[derive(Clone, Copy)]
enum Patched<'a> {
    User(&'a Caller, &'a str),
    Me(&'a Caller, Option<std::net::IpAddr>),
}

/// A user PATCH taken apart: the lock (the last lock operation decides),
/// the current-password proof of a self-service change, and the
/// operations on the resource itself.
struct UserPatch {
    lock: Option<bool>,
    current_password: Option<Password>,
    operations: Vec<Operation>,
}

impl UserPatch {
    fn parse(body: &Value) -> Result<Self, ScimError> {
        let operations =
            patch::split_extension(patch::parse_operations(body)?, USER_EXTENSION, &["locked"])?;
        refuse_removing_a_guard(&operations)?;
        let (locks, operations): (Vec<Operation>, Vec<Operation>) = operations
            .into_iter()
            .partition(|op| extension_path(op, "locked"));
        let (proofs, operations): (Vec<Operation>, Vec<Operation>) = operations
            .into_iter()
            .partition(|op| extension_path(op, "currentPassword"));
        let mut lock = None;
        for op in &locks {
            lock = Some(match &op.value {
                Some(Value::Bool(locked)) => *locked,
                _ => return Err(ScimError::invalid_value("locked must be true or false")),
            });
        }
        Ok(UserPatch {
            lock,
            current_password: proofs
                .last()
                .and_then(|op| op.value.as_ref())
                .and_then(Value::as_str)
                .map(Password::new),
            operations,
        })
    }

    /// The parts of the user the operations touch (whatever the values):
    /// what the actor needs permission for, so that a help desk's
    /// password reset is a password change and nothing else.
    fn touches(&self, attribute: &str) -> bool {
        self.operations.iter().any(|op| match &op.path {
            Some(path) => path.eq_ignore_ascii_case(attribute),
            None => op
                .value
                .as_ref()
                .and_then(Value::as_object)
                .is_some_and(|v| get_ci(v, attribute).is_some()),
        })
    }

    fn touches_profile(&self) -> bool {
        let guard = |name: &str| {
            ["password", "active"]
                .iter()
                .any(|g| name.eq_ignore_ascii_case(g))
        };
        self.operations.iter().any(|op| match &op.path {
            Some(path) => !guard(path),
            None => op
                .value
                .as_ref()
                .and_then(Value::as_object)
                .is_none_or(|v| v.keys().any(|k| !guard(k))),
        })
    }

    /// The change the operations make to `current`.
    fn change(&self, current: &UserView, base: &str) -> Result<UserChange, ScimError> {
        let mut change = UserChange {
            locked: self.lock,
            ..UserChange::default()
        };
        if self.operations.is_empty() {
            return Ok(change);
        }
        let mut doc = user_resource(&current.user, &current.groups, base);
        patch::apply(&mut doc, &self.operations, &READ_ONLY, USER_SCHEMA)?;
        let write = UserWrite::from_resource(&doc)?;
        if self.touches_profile() {
            change.profile = Some(profile(&write));
        }
        if self.touches("active") {
            change.active = write.active;
        }
        change.password = write.password;
        Ok(change)
    }
}

impl ScimDirectory {
    fn render(&self, view: &UserView) -> Value {
        user_resource(&view.user, &view.groups, self.base_url())
    }

    pub async fn list_users(&self, caller: &Caller, params: &ListParams) -> AdminResult<Answer> {
        let (query, projection) = params.query::<UserSchema>()?;
        let page = self
            .directory
            .list_users(Actor::Caller(caller), &query)
            .await?;
        let resources = page
            .items
            .iter()
            .map(|v| projection.apply(self.render(v)))
            .collect();
        Ok(list_answer(&query, &page, |v| &v.user.id, resources))
    }

    pub async fn get_user(
        &self,
        caller: &Caller,
        id: &str,
        projection: &Projection,
    ) -> AdminResult<Answer> {
        let view = self.directory.get_user(Actor::Caller(caller), id).await?;
        Ok(Answer::resource(
            Outcome::Read,
            projection.apply(self.render(&view)),
        ))
    }

    pub async fn create_user(&self, caller: &Caller, doc: &Value) -> AdminResult<Answer> {
        require_schema(doc, USER_SCHEMA)?;
        let write = UserWrite::from_resource(doc)?;
        let new = NewUser {
            profile: profile(&write),
            active: write.active.unwrap_or(true),
            password: write.password,
            roles: Vec::new(),
        };
        let view = self
            .directory
            .create_user(Actor::Caller(caller), new)
            .await?;
        Ok(Answer::resource(Outcome::Created, self.render(&view)))
    }

    pub async fn replace_user(
        &self,
        caller: &Caller,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        require_schema(doc, USER_SCHEMA)?;
        let write = UserWrite::from_resource(doc)?;
        let change = UserChange {
            profile: Some(profile(&write)),
            active: write.active,
            password: write.password,
            locked: None,
        };
        let view = self
            .directory
            .update_user(Actor::Caller(caller), id, change, if_version)
            .await?;
        Ok(Answer::resource(Outcome::Read, self.render(&view)))
    }

    pub async fn patch_user(
        &self,
        caller: &Caller,
        id: &str,
        body: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        let patch = UserPatch::parse(body)?;
        self.patch(&patch, if_version, Patched::User(caller, id))
            .await
    }

    /// Applies a PATCH to the user as read and writes it conditionally on
    /// the version read, reading again when another write came between
    /// (unless the client named a version).
    async fn patch(
        &self,
        patch: &UserPatch,
        if_version: Option<i64>,
        whose: Patched<'_>,
    ) -> AdminResult<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match whose {
                Patched::User(caller, id) => {
                    self.directory
                        .user_for_patch(Actor::Caller(caller), id)
                        .await?
                }
                Patched::Me(caller, _) => self.directory.me(caller).await?,
            };
            if if_version.is_some_and(|v| v != current.user.version) {
                return Err(ScimError::precondition_failed().into());
            }
            let change = patch.change(&current, self.base_url())?;
            let version = Some(current.user.version);
            let written = match whose {
                Patched::User(caller, id) => {
                    self.directory
                        .update_user(Actor::Caller(caller), id, change, version)
                        .await
                }
                Patched::Me(caller, ip) => {
                    self.directory
                        .update_me(caller, change, patch.current_password.as_ref(), version, ip)
                        .await
                }
            };
            match written {
                Err(DirectoryError::VersionMismatch)
                    if if_version.is_none() && attempt < PATCH_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
                Ok(view) => return Ok(Answer::resource(Outcome::Read, self.render(&view))),
            }
        }
    }

    pub async fn delete_user(
        &self,
        caller: &Caller,
        id: &str,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        self.directory
            .delete_user(Actor::Caller(caller), id, if_version)
            .await?;
        Ok(Answer::no_content())
    }

    /// `/Me`: any valid user token reads its own profile.
    pub async fn get_me(&self, caller: &Caller, projection: &Projection) -> AdminResult<Answer> {
        let view = self.directory.me(caller).await?;
        Ok(Answer::resource(
            Outcome::Read,
            projection.apply(self.render(&view)),
        ))
    }

    pub async fn replace_me(
        &self,
        caller: &Caller,
        doc: &Value,
        if_version: Option<i64>,
        meta: &RequestMeta,
    ) -> AdminResult<Answer> {
        crate::directory::may_write_self(caller)?;
        require_schema(doc, USER_SCHEMA)?;
        let write = UserWrite::from_resource(doc)?;
        let current_password = doc
            .as_object()
            .and_then(|o| get_ci(o, USER_EXTENSION))
            .and_then(Value::as_object)
            .and_then(|e| get_ci(e, "currentPassword"))
            .and_then(Value::as_str)
            .map(Password::new);
        let change = UserChange {
            profile: Some(profile(&write)),
            active: write.active,
            password: write.password,
            locked: None,
        };
        let view = self
            .directory
            .update_me(
                caller,
                change,
                current_password.as_ref(),
                if_version,
                meta.ip,
            )
            .await?;
        Ok(Answer::resource(Outcome::Read, self.render(&view)))
    }

    pub async fn patch_me(
        &self,
        caller: &Caller,
        body: &Value,
        if_version: Option<i64>,
        meta: &RequestMeta,
    ) -> AdminResult<Answer> {
        crate::directory::may_write_self(caller)?;
        let patch = UserPatch::parse(body)?;
        self.patch(&patch, if_version, Patched::Me(caller, meta.ip))
            .await
    }
}
