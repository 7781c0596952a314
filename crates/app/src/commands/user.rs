//! `latchkey user …`.

use anyhow::{anyhow, bail};
use latchkey_core::admin::Actor;
use latchkey_core::directory::{DirectoryError, DirectoryService, NewUser, Profile};
use latchkey_core::model::{AppRole, User};
use latchkey_core::password::Password;
use latchkey_core::secrets::random_token;
use serde_json::json;

use super::{print_json, read_secret_line};
use crate::cli::{Output, UserCommand};
use crate::context::Context;

pub async fn run(ctx: &Context, command: UserCommand) -> anyhow::Result<()> {
    let directory = ctx.directory();
    let cli = Actor::Cli;
    match command {
        UserCommand::Add {
            username,
            password_stdin,
            email,
            given_name,
            family_name,
            roles,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<AppRole>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("--role: {e}"))?;
            let (password, generated) = password_from(password_stdin)?;
            let new = NewUser {
                profile: Profile {
                    username,
                    given_name,
                    family_name,
                    email,
                    ..Profile::default()
                },
                active: true,
                password: Some(Password::new(password)),
                roles,
            };
            let user = directory.create_user(cli, new).await.map_err(refused)?.user;
            println!("created user {} ({})", user.username, user.id);
            if let Some(password) = generated {
                println!("password: {password}\n(shown once)");
            }
        }
        UserCommand::List { output } => {
            let list = ctx.store.repos.users.list().await?;
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
            let user = find(&directory, &username).await?;
            let roles = ctx.store.repos.users.effective_roles(&user.id).await?;
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
            let user = find(&directory, &username).await?;
            let (password, generated) = password_from(password_stdin)?;
            directory
                .set_password(cli, &user.id, Password::new(password))
                .await
                .map_err(refused)?;
            println!("password set for {}", user.username);
            if let Some(password) = generated {
                println!("password: {password}\n(shown once)");
            }
        }
        UserCommand::Activate { username } => {
            let user = find(&directory, &username).await?;
            directory
                .set_active(cli, &user.id, true)
                .await
                .map_err(refused)?;
            println!("{} is active", user.username);
        }
        UserCommand::Deactivate { username } => {
            let user = find(&directory, &username).await?;
            directory
                .set_active(cli, &user.id, false)
                .await
                .map_err(refused)?;
            println!("{} is inactive", user.username);
        }
        UserCommand::Sessions { username, output } => {
            let user = find(&directory, &username).await?;
            let sessions = directory
                .sessions_of(cli, &user.id)
                .await
                .map_err(refused)?;
            match output {
                Output::Json => print_json(&json!(sessions
                    .iter()
                    .map(|s| json!({"sid": s.id, "client_id": s.client_id.clone().unwrap_or_default(), "auth_time": s.auth_time, "created_at": s.created_at}))
                    .collect::<Vec<_>>())),
                Output::Text => {
                    for s in &sessions {
                        println!("{:<36}  {:<24}  signed in {}", s.id, s.client_id.as_deref().unwrap_or_default(), s.auth_time);
                    }
                }
            }
        }
        UserCommand::Logout { username } => {
            let user = find(&directory, &username).await?;
            let ended = directory
                .end_all_sessions(cli, &user.id)
                .await
                .map_err(refused)?;
            println!("ended {ended} session(s) of {}", user.username);
        }
        UserCommand::Lock { username } => {
            let user = find(&directory, &username).await?;
            directory
                .set_locked(cli, &user.id, true)
                .await
                .map_err(refused)?;
            println!("{} is locked; their sessions have ended", user.username);
        }
        UserCommand::Unlock { username } => {
            directory
                .unlock_username(cli, &username)
                .await
                .map_err(refused)?;
            println!("{username} is unlocked");
        }
        UserCommand::GrantRole { username, role } => {
            let user = find(&directory, &username).await?;
            let role: AppRole = role.parse().map_err(|e| anyhow!("role: {e}"))?;
            if directory
                .grant_role(cli, &user.id, role)
                .await
                .map_err(refused)?
            {
                println!("{} now holds {role}", user.username);
            } else {
                println!("{} already holds {role}", user.username);
            }
        }
        UserCommand::RevokeRole { username, role } => {
            let user = find(&directory, &username).await?;
            let role: AppRole = role.parse().map_err(|e| anyhow!("role: {e}"))?;
            if directory
                .revoke_role(cli, &user.id, role)
                .await
                .map_err(refused)?
            {
                println!("{} no longer holds {role} directly", user.username);
            } else {
                bail!("{} does not hold {role} directly", user.username);
            }
        }
        UserCommand::Delete { username } => {
            let user = find(&directory, &username).await?;
            directory
                .delete_user(cli, &user.id, None)
                .await
                .map_err(refused)?;
            println!("deleted {}", user.username);
        }
    }
    Ok(())
}

/// A refusal of the directory as the command's error message.
pub(super) fn refused(e: DirectoryError) -> anyhow::Error {
    match e {
        DirectoryError::Denied(denied) => anyhow!("not allowed: {denied:?}"),
        other => anyhow!("{other}"),
    }
}

pub(super) async fn find(directory: &DirectoryService, username: &str) -> anyhow::Result<User> {
    match directory.find_user(Actor::Cli, username).await {
        Ok(view) => Ok(view.user),
        Err(DirectoryError::NotFound(_)) => bail!("no user named {username:?}"),
        Err(e) => Err(refused(e)),
    }
}

/// The password from stdin (the directory checks it against the policy),
/// or a generated one to show once.
fn password_from(stdin: bool) -> anyhow::Result<(String, Option<String>)> {
    if stdin {
        Ok((read_secret_line()?, None))
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
