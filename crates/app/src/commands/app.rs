//! `latchkey app …`: the whole life of an app, with the same validation
//! as the domain file (an app the CLI writes is one `apply` accepts).

use anyhow::{Context as _, anyhow};
use latchkey_core::admin::{Actor, RegistryError, app_json};
use latchkey_core::domain::{AppInput, DurationInput};
use latchkey_core::model::App;
use serde_json::json;

use super::print_json;
use crate::cli::{AppCommand, AppFields, Output};
use crate::context::Context;

pub async fn run(ctx: &Context, command: AppCommand) -> anyhow::Result<()> {
    // The key algorithm is the registry's for key rotation; apps never use it.
    let registry = ctx.registry(latchkey_core::keys::KeyAlgorithm::Rs256);
    let cli = Actor::Cli;
    match command {
        AppCommand::List { output } => {
            let list = registry.list_apps(cli).await.map_err(refused)?;
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
            let app = registry.app(cli, &client_id).await.map_err(refused)?;
            print_app(&app, None, output);
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
            let created = registry.create_app(cli, input).await.map_err(|e| match e {
                RegistryError::Conflict(why) => {
                    anyhow!("{why}; change it with `latchkey app update`")
                }
                other => refused(other),
            })?;
            print_app(&created.app, created.client_secret.as_deref(), output);
        }
        AppCommand::Update {
            client_id,
            name,
            app_type,
            fields,
            remove_keys,
            output,
        } => {
            let app = registry.app(cli, &client_id).await.map_err(refused)?;
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
            let app = registry
                .update_app(cli, &client_id, input)
                .await
                .map_err(refused)?;
            print_app(&app, None, output);
        }
        AppCommand::RotateSecret { client_id, grace } => {
            let grace = match grace {
                None => 0,
                Some(text) => latchkey_core::duration::parse_duration(&text)
                    .map_err(|e| anyhow!("--grace: {e}"))?,
            };
            let rotated = registry
                .rotate_app_secret(cli, &client_id, grace)
                .await
                .map_err(|e| match e {
                    RegistryError::Invalid { field, message } if field == "grace" => {
                        anyhow!("--grace: {message}")
                    }
                    other => refused(other),
                })?;
            // The grace asked for (the stored expiry, read back a moment
            // later, could print one second less).
            let old = if rotated.app.previous_secret.is_some() {
                format!(
                    "the previous secret keeps working for {}",
                    latchkey_core::duration::format_duration(grace)
                )
            } else {
                "the previous secret no longer works".to_owned()
            };
            let secret = rotated.client_secret.unwrap_or_default();
            println!("new client secret for {client_id}: {secret}\n(shown once; {old})");
        }
        AppCommand::Activate { client_id } => {
            registry
                .set_app_active(cli, &client_id, true)
                .await
                .map_err(refused)?;
            println!("{client_id} is active");
        }
        AppCommand::Deactivate { client_id } => {
            registry
                .set_app_active(cli, &client_id, false)
                .await
                .map_err(refused)?;
            println!("{client_id} is deactivated; its sessions have ended");
        }
        AppCommand::Delete { client_id } => {
            registry
                .delete_app(cli, &client_id)
                .await
                .map_err(refused)?;
            println!("deleted {client_id}");
        }
    }
    Ok(())
}

/// A refusal as the command line words it: a field by its flag.
fn refused(error: RegistryError) -> anyhow::Error {
    match error {
        RegistryError::Invalid { field, message } => anyhow!(flag_of(&field, &message)),
        RegistryError::NotFound(what) => anyhow!("{what}"),
        other => anyhow!(other.to_string()),
    }
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
            (
                self.refresh_token_reuse_interval,
                &mut input.refresh_token_reuse_interval,
            ),
        ] {
            if let Some(text) = value {
                *target = Some(DurationInput::Text(text));
            }
        }
        Ok(())
    }
}

/// The flag that sets a field, for error messages.
fn flag_of(field: &str, message: &str) -> String {
    let flag = match field {
        "type" => "type",
        "grant_types" => "grant",
        "redirect_uris" => "redirect-uri",
        "scopes" => "scope",
        "app_roles" => "app-role",
        "jwks" => "jwks-file",
        "certificate" => "certificate-file",
        other => return format!("--{}: {message}", other.replace('_', "-")),
    };
    format!("--{flag}: {message}")
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
