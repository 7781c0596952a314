//! `latchkey user …`.

use anyhow::{Context as _, anyhow, bail};
use latchkey_core::audit::kind;
use latchkey_core::model::{AppRole, User};
use latchkey_core::password::Password;
use latchkey_core::secrets::random_token;
use latchkey_core::store::NewUser;
use serde_json::json;

use super::{print_json, read_secret_line};
use crate::cli::{Output, UserCommand};
use crate::context::Context;

pub async fn run(ctx: &Context, command: UserCommand) -> anyhow::Result<()> {
    let users = &ctx.store.repos.users;
    let now = ctx.clock.now();
    match command {
        UserCommand::Add {
            username,
            password_stdin,
            email,
            given_name,
            family_name,
            roles,
        } => {
            let app_roles = roles
                .iter()
                .map(|r| r.parse::<AppRole>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("--role: {e}"))?;
            let (password, generated) = password_from(ctx, password_stdin)?;
            let hash = ctx.hasher.hash(&Password::new(password)).await?;
            let user = users
                .create(
                    NewUser {
                        username,
                        password_hash: Some(hash),
                        given_name,
                        family_name,
                        email,
                        app_roles,
                    },
                    now,
                )
                .await
                .context("cannot create the user (is the username taken?)")?;
            super::audited(
                ctx,
                kind::USER_CREATED,
                &user.id,
                Some(user.username.clone()),
            )
            .await;
            println!("created user {} ({})", user.username, user.id);
            if let Some(password) = generated {
                println!("password: {password}\n(shown once)");
            }
        }
        UserCommand::List { output } => {
            let list = users.list().await?;
            match output {
                Output::Json => print_json(&json!(list.iter().map(user_json).collect::<Vec<_>>())),
                Output::Text => {
                    for u in &list {
                        println!(
                            "{:<36}  {:<24}  {}",
                            u.id,
                            u.username,
                            if u.active { "active" } else { "inactive" }
                        );
                    }
                }
            }
        }
        UserCommand::Show { username, output } => {
            let user = find(ctx, &username).await?;
            let roles = users.effective_roles(&user.id).await?;
            let mut value = user_json(&user);
            value["app_roles"] = json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
            match output {
                Output::Json => print_json(&value),
                Output::Text => {
                    for (k, v) in value.as_object().expect("object") {
                        println!("{k:<12} {v}");
                    }
                }
            }
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let user = find(ctx, &username).await?;
            let (password, generated) = password_from(ctx, password_stdin)?;
            let hash = ctx.hasher.hash(&Password::new(password)).await?;
            users.set_password_hash(&user.id, &hash, now).await?;
            super::audited(ctx, kind::PASSWORD_CHANGED, &user.id, None).await;
            println!("password set for {}", user.username);
            if let Some(password) = generated {
                println!("password: {password}\n(shown once)");
            }
        }
        UserCommand::Activate { username } => {
            let user = find(ctx, &username).await?;
            users.set_active(&user.id, true, now).await?;
            super::audited(ctx, kind::USER_ACTIVATED, &user.id, None).await;
            println!("{} is active", user.username);
        }
        UserCommand::Deactivate { username } => {
            let user = find(ctx, &username).await?;
            users.set_active(&user.id, false, now).await?;
            super::audited(ctx, kind::USER_DEACTIVATED, &user.id, None).await;
            println!("{} is inactive", user.username);
        }
        UserCommand::Sessions { username, output } => {
            let user = find(ctx, &username).await?;
            let sessions = ctx.store.repos.tokens.list_sessions(&user.id).await?;
            let apps = ctx.store.repos.apps.list().await?;
            let client_of = |app_id: &str| {
                apps.iter()
                    .find(|a| a.id == app_id)
                    .map(|a| a.client_id.clone())
                    .unwrap_or_default()
            };
            match output {
                Output::Json => print_json(&json!(sessions
                    .iter()
                    .map(|s| json!({"sid": s.id, "client_id": client_of(&s.app_id), "auth_time": s.auth_time, "created_at": s.created_at}))
                    .collect::<Vec<_>>())),
                Output::Text => {
                    for s in &sessions {
                        println!("{:<36}  {:<24}  signed in {}", s.id, client_of(&s.app_id), s.auth_time);
                    }
                }
            }
        }
        UserCommand::Logout { username } => {
            let user = find(ctx, &username).await?;
            let ended = ctx
                .store
                .repos
                .tokens
                .revoke_user_sessions(&user.id, now)
                .await?;
            super::audited(
                ctx,
                kind::SESSIONS_ENDED,
                &user.id,
                Some(format!("{ended} session(s)")),
            )
            .await;
            println!("ended {ended} session(s) of {}", user.username);
        }
        UserCommand::Lock { username } => {
            let user = find(ctx, &username).await?;
            users.set_locked(&user.id, true, ctx.clock.now()).await?;
            super::audited(ctx, kind::USER_LOCKED, &user.id, None).await;
            println!("{} is locked; their sessions have ended", user.username);
        }
        UserCommand::Unlock { username } => {
            if let Some(user) = users.find_by_username(&username).await? {
                users.set_locked(&user.id, false, ctx.clock.now()).await?;
            }
            // By name, not by id: throttling covers unknown names too.
            ctx.store
                .repos
                .throttle
                .clear_username(&username.to_lowercase())
                .await?;
            super::audited(ctx, kind::USER_UNLOCKED, &username, None).await;
            println!("{username} is unlocked");
        }
        UserCommand::GrantRole { username, role } => {
            let user = find(ctx, &username).await?;
            let role: latchkey_core::model::AppRole =
                role.parse().map_err(|e| anyhow::anyhow!("role: {e}"))?;
            if grant(ctx, &user, role, true).await? {
                println!("{} now holds {role}", user.username);
            } else {
                println!("{} already holds {role}", user.username);
            }
        }
        UserCommand::RevokeRole { username, role } => {
            let user = find(ctx, &username).await?;
            let role: latchkey_core::model::AppRole =
                role.parse().map_err(|e| anyhow::anyhow!("role: {e}"))?;
            if grant(ctx, &user, role, false).await? {
                println!("{} no longer holds {role} directly", user.username);
            } else {
                anyhow::bail!("{} does not hold {role} directly", user.username);
            }
        }
        UserCommand::Delete { username } => {
            let user = find(ctx, &username).await?;
            users.delete(&user.id).await?;
            super::audited(
                ctx,
                kind::USER_DELETED,
                &user.id,
                Some(user.username.clone()),
            )
            .await;
            println!("deleted {}", user.username);
        }
    }
    Ok(())
}

/// Grants (or revokes) through the core service, which checks and audits
/// as it does for the console.
async fn grant(
    ctx: &Context,
    user: &User,
    role: latchkey_core::model::AppRole,
    granted: bool,
) -> anyhow::Result<bool> {
    use latchkey_core::admin::{Actor, AdminError};
    let directory = ctx.directory();
    let done = if granted {
        directory.grant_role(Actor::Cli, &user.id, role).await
    } else {
        directory.revoke_role(Actor::Cli, &user.id, role).await
    };
    done.map_err(|e| match e {
        AdminError::Scim(e) => anyhow::anyhow!("{}", e.detail),
        AdminError::Denied(e) => anyhow::anyhow!("{e:?}"),
    })
}

async fn find(ctx: &Context, username: &str) -> anyhow::Result<User> {
    match ctx.store.repos.users.find_by_username(username).await? {
        Some(user) => Ok(user),
        None => bail!("no user named {username:?}"),
    }
}

fn password_from(ctx: &Context, stdin: bool) -> anyhow::Result<(String, Option<String>)> {
    if stdin {
        let password = read_secret_line()?;
        ctx.password_policy
            .check(&password)
            .map_err(|e| anyhow!("password: {e}"))?;
        Ok((password, None))
    } else {
        let generated = random_token();
        Ok((generated.clone(), Some(generated)))
    }
}

/// Never includes the password hash.
fn user_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "email": u.email,
        "active": u.active,
        "locked": u.locked,
        "display_name": u.display_name,
        "external_id": u.external_id,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}
