//! The privilege boundary as one permission matrix over the real services
//! (the ones the admin API, the console and the CLI call), on SQLite and
//! PostgreSQL: every actor role × every target role × every operation.
//! The rule (docs/admin-api.md, "Privilege boundaries"): an operation
//! needs its permission; acting on a user or app needs every role it
//! holds; giving a role needs the grant permission and that role.

use latchkey::context::Context;
use latchkey_core::admin::{Actor, AdminError, Caller, RegistryError, ScimDirectory};
use latchkey_core::domain::AppInput;
use latchkey_core::model::{AppRole, Session};
use latchkey_core::store::NewUser;
use latchkey_testkit::{Engine, Options, TestServer};
use serde_json::{Value, json};

const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User";

/// Operations on a user or app that holds the target roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    ReplaceUser,
    RenameUser,
    ResetPassword,
    LockUser,
    UnlockUser,
    DeactivateUser,
    DeleteUser,
    EndSession,
    /// Grant an unrelated role (Audit Administrator) to the target user.
    GrantRoleToUser,
    UpdateApp,
    RotateAppSecret,
    DeactivateApp,
    ReactivateApp,
    DeleteApp,
}

/// Operations that give the target role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Give {
    RoleToUser,
    RoleToGroup,
    /// Add a member to a group holding the role (or none).
    MemberToGroup,
    /// Remove a member from a group holding the role (or none).
    MemberFromGroup,
    DeleteGroup,
    AppWithRole,
}

const ACTS: [Act; 14] = [
    Act::ReplaceUser,
    Act::RenameUser,
    Act::ResetPassword,
    Act::LockUser,
    Act::UnlockUser,
    Act::DeactivateUser,
    Act::DeleteUser,
    Act::EndSession,
    Act::GrantRoleToUser,
    Act::UpdateApp,
    Act::RotateAppSecret,
    Act::DeactivateApp,
    Act::ReactivateApp,
    Act::DeleteApp,
];

const GIVES: [Give; 6] = [
    Give::RoleToUser,
    Give::RoleToGroup,
    Give::MemberToGroup,
    Give::MemberFromGroup,
    Give::DeleteGroup,
    Give::AppWithRole,
];

use AppRole::*;

/// The permission table of docs/admin-api.md, stated again here on its own.
fn permitted(actor: AppRole, needs: &[AppRole]) -> bool {
    actor == IdentityDomainAdministrator || needs.contains(&actor)
}

fn act_needs(op: Act) -> &'static [AppRole] {
    match op {
        Act::ResetPassword | Act::UnlockUser => &[UserAdministrator, HelpDeskAdministrator],
        Act::ReplaceUser
        | Act::RenameUser
        | Act::LockUser
        | Act::DeactivateUser
        | Act::DeleteUser
        | Act::EndSession => &[UserAdministrator],
        Act::GrantRoleToUser => &[],
        Act::UpdateApp
        | Act::RotateAppSecret
        | Act::DeactivateApp
        | Act::ReactivateApp
        | Act::DeleteApp => &[ApplicationAdministrator],
    }
}

fn give_needs(op: Give) -> &'static [AppRole] {
    match op {
        Give::RoleToUser | Give::RoleToGroup => &[],
        Give::MemberToGroup | Give::MemberFromGroup | Give::DeleteGroup => &[UserAdministrator],
        Give::AppWithRole => &[ApplicationAdministrator],
    }
}

fn holds(actor: AppRole, role: AppRole) -> bool {
    actor == IdentityDomainAdministrator || actor == role
}

fn expected_act(actor: AppRole, target: Option<AppRole>, op: Act) -> bool {
    let acts_on_target = target.is_none_or(|r| holds(actor, r));
    let gives = op != Act::GrantRoleToUser || actor == IdentityDomainAdministrator;
    permitted(actor, act_needs(op)) && acts_on_target && gives
}

fn expected_give(actor: AppRole, role: Option<AppRole>, op: Give) -> bool {
    // Giving any role needs the grant permission (Identity Domain
    // Administrator only) and the role itself.
    let gives = role.is_none() || actor == IdentityDomainAdministrator;
    permitted(actor, give_needs(op)) && gives
}

fn caller(role: AppRole) -> Caller {
    Caller {
        subject: format!("actor-{}", uuid::Uuid::new_v4()),
        user_id: Some(uuid::Uuid::new_v4().to_string()),
        client_id: "console".into(),
        roles: vec![role],
        scopes: vec![MY_SCOPES.into()],
    }
}

fn admin_outcome<T, E: Into<AdminError>>(r: Result<T, E>, what: &str) -> bool {
    match r.map_err(Into::into) {
        Ok(_) => true,
        Err(AdminError::Denied(_)) => false,
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

fn registry_outcome<T>(r: Result<T, RegistryError>, what: &str) -> bool {
    match r {
        Ok(_) => true,
        Err(RegistryError::Denied(_)) => false,
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

struct World {
    ctx: Context,
    app_id: String,
    now: i64,
}

impl World {
    async fn user(&self, roles: &[AppRole]) -> String {
        self.ctx
            .store
            .repos
            .users
            .create(
                NewUser {
                    username: format!("u-{}", uuid::Uuid::new_v4()),
                    password_hash: None,
                    given_name: None,
                    family_name: None,
                    email: None,
                    app_roles: roles.to_vec(),
                },
                self.now,
            )
            .await
            .unwrap()
            .id
    }

    async fn app(&self, roles: &[AppRole], active: bool) -> String {
        let client_id = format!("app-{}", uuid::Uuid::new_v4());
        let registry = self.ctx.registry(latchkey_core::keys::KeyAlgorithm::Es256);
        registry
            .create_app(Actor::Cli, app_input(&client_id, roles))
            .await
            .unwrap();
        if !active {
            registry
                .set_app_active(Actor::Cli, &client_id, false)
                .await
                .unwrap();
        }
        client_id
    }

    async fn group(&self, roles: &[AppRole], members: &[String]) -> String {
        let repos = &self.ctx.store.repos;
        let group = repos
            .directory
            .create_group(
                &format!("g-{}", uuid::Uuid::new_v4()),
                None,
                members,
                self.now,
            )
            .await
            .unwrap();
        for role in roles {
            repos
                .directory
                .grant_group_role(&group.id, *role)
                .await
                .unwrap();
        }
        group.id
    }

    async fn act(&self, actor: AppRole, target: Option<AppRole>, op: Act) -> bool {
        let roles: Vec<AppRole> = target.into_iter().collect();
        let who = caller(actor);
        let directory = self.ctx.directory();
        let scim = ScimDirectory::new(std::sync::Arc::new(self.ctx.directory()));
        let registry = self.ctx.registry(latchkey_core::keys::KeyAlgorithm::Es256);
        let what = format!("{actor} {op:?} on a holder of {target:?}");
        let user_op = |body: Value| {
            let scim = &scim;
            let who = &who;
            let roles = &roles;
            async move {
                let id = self.user(roles).await;
                scim.patch_user(who, &id, &patch(body), None).await
            }
        };
        match op {
            Act::ReplaceUser => {
                let id = self.user(&roles).await;
                let doc = json!({"schemas": [USER_SCHEMA], "userName": format!("r-{id}"), "active": true});
                admin_outcome(scim.replace_user(&who, &id, &doc, None).await, &what)
            }
            Act::RenameUser => admin_outcome(
                user_op(json!([{"op": "replace", "path": "displayName", "value": "Renamed"}]))
                    .await,
                &what,
            ),
            Act::ResetPassword => admin_outcome(
                user_op(json!([{"op": "replace", "path": "password", "value": "a brand new password 0123"}]))
                    .await,
                &what,
            ),
            Act::LockUser => admin_outcome(
                user_op(json!([{"op": "replace", "path": format!("{EXTENSION}:locked"), "value": true}]))
                    .await,
                &what,
            ),
            Act::UnlockUser => admin_outcome(
                user_op(json!([{"op": "replace", "path": format!("{EXTENSION}:locked"), "value": false}]))
                    .await,
                &what,
            ),
            Act::DeactivateUser => admin_outcome(
                user_op(json!([{"op": "replace", "path": "active", "value": false}])).await,
                &what,
            ),
            Act::DeleteUser => {
                let id = self.user(&roles).await;
                admin_outcome(scim.delete_user(&who, &id, None).await, &what)
            }
            Act::EndSession => {
                let id = self.user(&roles).await;
                let session = Session {
                    id: uuid::Uuid::new_v4().to_string(),
                    user_id: id,
                    app_id: self.app_id.clone(),
                    auth_time: self.now,
                    created_at: self.now,
                    revoked_at: None,
                    generation: 0,
                };
                self.ctx
                    .store
                    .repos
                    .tokens
                    .start_session(&session, None, None)
                    .await
                    .unwrap();
                admin_outcome(scim.end_session(&who, &session.id).await, &what)
            }
            Act::GrantRoleToUser => {
                let id = self.user(&roles).await;
                admin_outcome(
                    directory
                        .grant_role(Actor::Caller(&who), &id, AuditAdministrator)
                        .await,
                    &what,
                )
            }
            Act::UpdateApp => {
                let client_id = self.app(&roles, true).await;
                let mut input = app_input(&client_id, &roles);
                input.name = "Renamed".into();
                registry_outcome(
                    registry
                        .update_app(Actor::Caller(&who), &client_id, input)
                        .await,
                    &what,
                )
            }
            Act::RotateAppSecret => {
                let client_id = self.app(&roles, true).await;
                registry_outcome(
                    registry
                        .rotate_app_secret(Actor::Caller(&who), &client_id, 0)
                        .await,
                    &what,
                )
            }
            Act::DeactivateApp | Act::ReactivateApp => {
                let reactivate = op == Act::ReactivateApp;
                let client_id = self.app(&roles, !reactivate).await;
                registry_outcome(
                    registry
                        .set_app_active(Actor::Caller(&who), &client_id, reactivate)
                        .await,
                    &what,
                )
            }
            Act::DeleteApp => {
                let client_id = self.app(&roles, true).await;
                registry_outcome(
                    registry.delete_app(Actor::Caller(&who), &client_id).await,
                    &what,
                )
            }
        }
    }

    async fn give(&self, actor: AppRole, role: Option<AppRole>, op: Give) -> bool {
        let roles: Vec<AppRole> = role.into_iter().collect();
        let who = caller(actor);
        let directory = self.ctx.directory();
        let scim = ScimDirectory::new(std::sync::Arc::new(self.ctx.directory()));
        let what = format!("{actor} {op:?} with {role:?}");
        match op {
            Give::RoleToUser => {
                let id = self.user(&[]).await;
                admin_outcome(
                    directory
                        .grant_role(Actor::Caller(&who), &id, role.unwrap())
                        .await,
                    &what,
                )
            }
            Give::RoleToGroup => {
                let group = self.group(&[], &[]).await;
                admin_outcome(
                    directory
                        .grant_group_role(Actor::Caller(&who), &group, role.unwrap())
                        .await,
                    &what,
                )
            }
            Give::MemberToGroup => {
                let group = self.group(&roles, &[]).await;
                let member = self.user(&[]).await;
                let body =
                    patch(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]));
                admin_outcome(scim.patch_group(&who, &group, &body, None).await, &what)
            }
            Give::MemberFromGroup => {
                let member = self.user(&[]).await;
                let group = self.group(&roles, std::slice::from_ref(&member)).await;
                let body = patch(
                    json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
                );
                admin_outcome(scim.patch_group(&who, &group, &body, None).await, &what)
            }
            Give::DeleteGroup => {
                let member = self.user(&[]).await;
                let group = self.group(&roles, &[member]).await;
                admin_outcome(scim.delete_group(&who, &group, None).await, &what)
            }
            Give::AppWithRole => {
                let registry = self.ctx.registry(latchkey_core::keys::KeyAlgorithm::Es256);
                let client_id = format!("app-{}", uuid::Uuid::new_v4());
                registry_outcome(
                    registry
                        .create_app(Actor::Caller(&who), app_input(&client_id, &roles))
                        .await,
                    &what,
                )
            }
        }
    }
}

fn app_input(client_id: &str, roles: &[AppRole]) -> AppInput {
    AppInput {
        name: "Matrix".into(),
        client_id: Some(client_id.into()),
        app_type: "trusted".into(),
        grant_types: Some(vec!["client_credentials".into()]),
        scopes: vec![MY_SCOPES.into()],
        app_roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
        ..AppInput::default()
    }
}

async fn matrix(engine: Engine) {
    let Some(server) = TestServer::start_on(engine, Options::default()).await else {
        return;
    };
    server
        .apply(latchkey_testkit::DOMAIN)
        .await
        .expect("the shared domain applies");
    let ctx = server.context().await;
    let app_id = ctx.store.repos.apps.list().await.unwrap()[0].id.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let world = World { ctx, app_id, now };
    let targets: Vec<Option<AppRole>> = std::iter::once(None)
        .chain(AppRole::ALL.into_iter().map(Some))
        .collect();
    let mut wrong = Vec::new();
    let mut cases = 0;
    for actor in AppRole::ALL {
        for target in &targets {
            for op in ACTS {
                let allowed = world.act(actor, *target, op).await;
                cases += 1;
                if allowed != expected_act(actor, *target, op) {
                    wrong.push(format!(
                        "{actor} {op:?} on a holder of {target:?}: allowed = {allowed}"
                    ));
                }
            }
            for op in GIVES {
                if target.is_none() && matches!(op, Give::RoleToUser | Give::RoleToGroup) {
                    continue;
                }
                let allowed = world.give(actor, *target, op).await;
                cases += 1;
                if allowed != expected_give(actor, *target, op) {
                    wrong.push(format!(
                        "{actor} {op:?} with {target:?}: allowed = {allowed}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases disagree with the rule:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(cases > 600, "{cases}");
    world.ctx.store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_on_sqlite() {
    matrix(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_on_postgres() {
    matrix(Engine::Postgres).await;
}
