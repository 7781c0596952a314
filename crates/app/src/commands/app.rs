//! `latchkey app …`: the whole life of an app, with the same validation
//! as the domain file (an app the CLI writes is one `apply` accepts).

use anyhow::{Context as _, anyhow, bail};
use latchkey_core::audit::kind;
use latchkey_core::client_auth::rotate_secret;
use latchkey_core::domain::{AppInput, DomainPlan, DurationInput, FieldError};
use latchkey_core::model::App;
use serde_json::json;

use super::print_json;
use crate::cli::{AppCommand, AppFields, Output};
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
                        let state = if a.active { "" } else { "  (deactivated)" };
                        println!("{:<24}  {:<12}  {}{state}", a.client_id, a.app_type, a.name);
                    }
                }
            }
        }
        AppCommand::Show { client_id, output } => {
            print_app(&find(ctx, &client_id).await?, None, output);
        }
        AppCommand::Create {
            name,
            app_type,
            client_id,
            client_secret_stdin,
            inactive,
            fields,
            output,
        } => {
            let mut input = AppInput {
                name,
                app_type,
                client_id,
                client_secret: client_secret_stdin
                    .then(super::read_secret_line)
                    .transpose()?,
                active: Some(!inactive),
                ..AppInput::default()
            };
            fields.apply_to(&mut input)?;
            let client_id = input.resolved_client_id();
            if apps.find_by_client_id(&client_id).await?.is_some() {
                bail!(
                    "an app with client_id {client_id:?} exists; change it with `latchkey app update`"
                );
            }
            let secret = write(ctx, &input).await?;
            super::audited(ctx, kind::APP_CREATED, &client_id, None).await;
            print_app(&find(ctx, &client_id).await?, secret.as_deref(), output);
        }
        AppCommand::Update {
            client_id,
            name,
            app_type,
            fields,
            remove_keys,
            output,
        } => {
            let app = find(ctx, &client_id).await?;
            let mut input = AppInput::from_app(&app);
            if let Some(name) = name {
                input.name = name;
            }
            if let Some(app_type) = app_type {
                input.app_type = app_type;
            }
            if remove_keys {
                input.jwks = None;
                input.certificate = None;
            }
            fields.apply_to(&mut input)?;
            write(ctx, &input).await?;
            super::audited(ctx, kind::APP_UPDATED, &client_id, None).await;
            print_app(&find(ctx, &client_id).await?, None, output);
        }
        AppCommand::RotateSecret { client_id, grace } => {
            let app = find(ctx, &client_id).await?;
            let grace = match grace {
                None => 0,
                Some(text) => latchkey_core::duration::parse_duration(&text)
                    .map_err(|e| anyhow!("--grace: {e}"))?,
            };
            let now = ctx.clock.now();
            let (secret, new) = rotate_secret(apps.as_ref(), &ctx.master, &app, grace, now).await?;
            let old = match &new.previous {
                Some(p) => format!(
                    "the previous secret keeps working for {}",
                    latchkey_core::duration::format_duration(p.expires_at - now)
                ),
                None => "the previous secret no longer works".to_owned(),
            };
            super::audited(ctx, kind::APP_SECRET_ROTATED, &client_id, Some(old.clone())).await;
            println!("new client secret for {client_id}: {secret}\n(shown once; {old})");
        }
        AppCommand::Activate { client_id } => {
            let app = find(ctx, &client_id).await?;
            apps.set_active(&app.id, true, ctx.clock.now()).await?;
            super::audited(ctx, kind::APP_ACTIVATED, &client_id, None).await;
            println!("{client_id} is active");
        }
        AppCommand::Deactivate { client_id } => {
            let app = find(ctx, &client_id).await?;
            apps.set_active(&app.id, false, ctx.clock.now()).await?;
            super::audited(ctx, kind::APP_DEACTIVATED, &client_id, None).await;
            println!("{client_id} is deactivated; its sessions have ended");
        }
        AppCommand::Delete { client_id } => {
            let app = find(ctx, &client_id).await?;
            apps.delete(&app.id).await?;
            super::audited(ctx, kind::APP_DELETED, &client_id, None).await;
            println!("deleted {client_id}");
        }
    }
    Ok(())
}

impl AppFields {
    /// Overlays the given flags on `input`.
    fn apply_to(self, input: &mut AppInput) -> anyhow::Result<()> {
        if !self.grants.is_empty() {
            input.grant_types = Some(self.grants);
        }
        if !self.redirect_uris.is_empty() {
            input.redirect_uris = self.redirect_uris;
        }
        if !self.scopes.is_empty() {
            input.scopes = self.scopes;
        }
        if !self.app_roles.is_empty() {
            input.app_roles = self.app_roles;
        }
        if let Some(path) = self.jwks_file {
            input.jwks = Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("--jwks-file: cannot read {}", path.display()))?,
            );
            input.certificate = None;
        }
        if let Some(path) = self.certificate_file {
            input.certificate =
                Some(std::fs::read_to_string(&path).with_context(|| {
                    format!("--certificate-file: cannot read {}", path.display())
                })?);
            input.jwks = None;
        }
        if self.client_secret_jwt.is_some() {
            input.client_secret_jwt = self.client_secret_jwt;
        }
        for (value, target) in [
            (self.access_token_ttl, &mut input.access_token_ttl),
            (self.refresh_token_ttl, &mut input.refresh_token_ttl),
            (self.session_lifetime, &mut input.session_lifetime),
        ] {
            if let Some(text) = value {
                *target = Some(DurationInput::Text(text));
            }
        }
        Ok(())
    }
}

/// The flag that sets a field, for error messages.
fn flag_of(error: &FieldError) -> String {
    let flag = match error.field {
        "type" => "type",
        "grant_types" => "grant",
        "redirect_uris" => "redirect-uri",
        "scopes" => "scope",
        "app_roles" => "app-role",
        "jwks" => "jwks-file",
        "certificate" => "certificate-file",
        other => return format!("--{}: {}", other.replace('_', "-"), error.message),
    };
    format!("--{flag}: {}", error.message)
}

/// Validates and writes one app (creating or updating it). Returns the
/// secret generated for a new confidential app, to be shown once; a secret
/// given in `input` is stored, never shown.
async fn write(ctx: &Context, input: &AppInput) -> anyhow::Result<Option<String>> {
    let servers = ctx.store.repos.resource_servers.list().await?;
    let validated = input.validate(&servers).map_err(|e| anyhow!(flag_of(&e)))?;
    for warning in &validated.warnings {
        eprintln!("warning: {warning}");
    }
    let mut spec = validated.spec;
    let generated = ctx
        .domain_service()
        .resolve_secret(&mut spec, validated.client_secret)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    let plan = DomainPlan {
        apps: vec![spec],
        ..DomainPlan::default()
    };
    ctx.store.repos.domain.apply(&plan, ctx.clock.now()).await?;
    Ok(generated.map(|(_, secret)| secret))
}

fn print_app(app: &App, secret: Option<&str>, output: Output) {
    let mut value = app_json(app);
    if let Some(secret) = secret {
        value["client_secret"] = json!(secret);
    }
    match output {
        Output::Json => print_json(&value),
        Output::Text => {
            for (k, v) in value.as_object().expect("object") {
                if k != "client_secret" {
                    println!("{k:<26} {v}");
                }
            }
            if let Some(secret) = secret {
                println!("\nclient secret (shown once): {secret}");
            }
        }
    }
}

async fn find(ctx: &Context, client_id: &str) -> anyhow::Result<App> {
    match ctx.store.repos.apps.find_by_client_id(client_id).await? {
        Some(app) => Ok(app),
        None => bail!("no app with client_id {client_id:?}"),
    }
}

/// Never includes the secret or its hash.
fn app_json(a: &App) -> serde_json::Value {
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
    })
}
