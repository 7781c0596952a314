//! One module per command family.

mod app;
mod apply;
mod audit;
mod export;
mod group;
mod import_keycloak;
mod keys;
mod user;

use std::io::BufRead;

use anyhow::anyhow;

use crate::cli::{Command, ConfigCommand, DbArgs, ImportCommand, ServeArgs};
use crate::config::{Overrides, Settings};
use crate::context::Context;

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => crate::server::serve(serve_settings(args)?).await,
        Command::Config { command } => match command {
            ConfigCommand::Check(args) => {
                let settings = serve_settings(*args)?;
                settings.check_transport().map_err(|e| anyhow!(e))?;
                println!(
                    "configuration is valid: listen {}, database {}, issuer {}",
                    settings.listen,
                    latchkey_store::engine_of(&settings.database_url)
                        .map(|e| format!("{e:?}"))
                        .unwrap_or_default(),
                    settings.issuer.as_deref().unwrap_or("(the bound address)")
                );
                Ok(())
            }
            ConfigCommand::Example => {
                print!("{}", crate::config::EXAMPLE);
                Ok(())
            }
        },
        Command::Apply { file, db } => apply::run(&open(db).await?, &file).await,
        Command::Export { include_keys, db } => export::run(&open(db).await?, include_keys).await,
        Command::Import {
            command:
                ImportCommand::Keycloak {
                    file,
                    output,
                    audience,
                    db,
                },
        } => import_keycloak::run(&open(db).await?, &file, output.as_deref(), audience).await,
        Command::User { command, db } => user::run(&open(db).await?, command).await,
        Command::Group { command, db } => group::run(&open(db).await?, command).await,
        Command::App { command, db } => app::run(&open(db).await?, command).await,
        Command::Audit {
            event_type,
            subject,
            unknown_user,
            since,
            count,
            output,
            db,
        } => {
            audit::run(
                &open(db).await?,
                audit::Filter {
                    event_type,
                    subject,
                    unknown_user,
                    since,
                    count,
                },
                output,
            )
            .await
        }
        Command::Keys { command, db } => {
            let settings = settings(db)?;
            keys::run(
                &Context::open(&settings).await?,
                command,
                settings.key_algorithm,
            )
            .await
        }
    }
}

pub fn serve_settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let admin_password = secret("LATCHKEY_ADMIN_PASSWORD", args.admin_password)?;
    let env = option_overrides(&args.db.set)?;
    let db = Secrets::of(args.db)?;
    Settings::resolve(Overrides {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        issuer: args.issuer,
        database_url: db.database_url,
        behind_tls_proxy: args.behind_tls_proxy,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        key_algorithm: args.key_algorithm,
        config: db.config,
        master_key: db.master_key,
        admin_password,
        demo: args.demo,
        env,
    })
    .map_err(|e| anyhow!(e))
}

fn settings(db: DbArgs) -> anyhow::Result<Settings> {
    let env = option_overrides(&db.set)?;
    let db = Secrets::of(db)?;
    Settings::resolve(Overrides {
        database_url: db.database_url,
        config: db.config,
        master_key: db.master_key,
        env,
        ..Overrides::default()
    })
    .map_err(|e| anyhow!(e))
}

/// The process's `LATCHKEY_*` option variables (`config_env`), then the
/// `--set` flags, which win.
fn option_overrides(set: &[String]) -> anyhow::Result<Vec<crate::config_env::EnvOverride>> {
    let mut all = crate::config_env::overrides_from(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    for text in set {
        all.push(crate::config_env::override_from_flag(text).map_err(|e| anyhow!(e))?);
    }
    Ok(all)
}

/// A secret from its flag or variable, or from the file `NAME_FILE` names.
fn secret(name: &str, value: Option<String>) -> anyhow::Result<Option<String>> {
    let file = std::env::var(format!("{name}_FILE")).ok();
    crate::config_env::secret(name, value, file).map_err(|e| anyhow!(e))
}

/// The database arguments with their secrets resolved: the URL (it may
/// hold a password) and the master key may each come from a `*_FILE`.
struct Secrets {
    database_url: Option<String>,
    config: Option<std::path::PathBuf>,
    master_key: Option<String>,
}

impl Secrets {
    fn of(db: DbArgs) -> anyhow::Result<Secrets> {
        Ok(Secrets {
            database_url: secret("LATCHKEY_DATABASE_URL", db.database_url)?,
            config: db.config,
            master_key: secret("LATCHKEY_MASTER_KEY", db.master_key)?,
        })
    }
}

async fn open(db: DbArgs) -> anyhow::Result<Context> {
    Context::open(&settings(db)?).await
}

/// One line from stdin, without its line ending.
fn read_secret_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let value = line.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        return Err(anyhow!("nothing on stdin"));
    }
    Ok(value)
}

/// Records an administrative change made from the command line.
async fn audited(ctx: &Context, event_type: &str, subject: &str, detail: Option<String>) {
    use latchkey_core::audit::{AuditEvent, CLI_ACTOR, record};
    let mut event = AuditEvent::new(event_type, true, ctx.clock.now())
        .actor(CLI_ACTOR)
        .subject(subject);
    if let Some(detail) = detail {
        event = event.detail(detail);
    }
    record(ctx.store.repos.audit.as_ref(), event).await;
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialise")
    );
}
