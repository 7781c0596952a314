//! `latchkey app …`.

use anyhow::bail;
use latchkey_core::model::{App, AppType};
use latchkey_core::secrets::generate_client_secret;
use serde_json::json;

use super::print_json;
use crate::cli::{AppCommand, Output};
use crate::context::Context;

pub async fn run(ctx: &Context, command: AppCommand) -> anyhow::Result<()> {
    let apps = &ctx.store.repos.apps;
    match command {
        AppCommand::List { output } => {
            let list = apps.list().await?;
            match output {
                Output::Json => print_json(&json!(list.iter().map(app_json).collect::<Vec<_>>())),
                Output::Text => {
                    for a in &list {
                        println!("{:<24}  {:<12}  {}", a.client_id, a.app_type, a.name);
                    }
                }
            }
        }
        AppCommand::Show { client_id, output } => {
            let value = app_json(&find(ctx, &client_id).await?);
            match output {
                Output::Json => print_json(&value),
                Output::Text => {
                    for (k, v) in value.as_object().expect("object") {
                        println!("{k:<18} {v}");
                    }
                }
            }
        }
        AppCommand::RotateSecret { client_id } => {
            let app = find(ctx, &client_id).await?;
            if app.app_type == AppType::Public {
                bail!("{client_id} is a public app: it has no secret");
            }
            let secret = generate_client_secret();
            apps.set_secret_hash(
                &app.id,
                &ctx.master.secret_hasher().hash(&secret),
                ctx.clock.now(),
            )
            .await?;
            println!(
                "new client secret for {client_id}: {secret}\n(shown once; the previous secret no longer works)"
            );
        }
        AppCommand::Delete { client_id } => {
            let app = find(ctx, &client_id).await?;
            apps.delete(&app.id).await?;
            println!("deleted {client_id}");
        }
    }
    Ok(())
}

async fn find(ctx: &Context, client_id: &str) -> anyhow::Result<App> {
    match ctx.store.repos.apps.find_by_client_id(client_id).await? {
        Some(app) => Ok(app),
        None => bail!("no app with client_id {client_id:?}"),
    }
}

/// Never includes the secret hash.
fn app_json(a: &App) -> serde_json::Value {
    json!({
        "id": a.id,
        "client_id": a.client_id,
        "name": a.name,
        "type": a.app_type.as_str(),
        "has_secret": a.secret_hash.is_some(),
        "grant_types": a.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "redirect_uris": a.redirect_uris,
        "scopes": a.scopes,
        "app_roles": a.app_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "access_token_ttl": a.access_token_ttl,
        "refresh_token_ttl": a.refresh_token_ttl,
    })
}
