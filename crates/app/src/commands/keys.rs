//! `latchkey keys …`.

use anyhow::anyhow;
use latchkey_core::admin::{Actor, key_json};
use latchkey_core::keys::KeyAlgorithm;
use serde_json::json;

use super::print_json;
use crate::cli::{KeysCommand, Output};
use crate::context::Context;

pub async fn run(
    ctx: &Context,
    command: KeysCommand,
    default_alg: KeyAlgorithm,
) -> anyhow::Result<()> {
    let registry = ctx.registry(default_alg);
    match command {
        KeysCommand::List { output } => {
            let keys = registry.list_keys(Actor::Cli).await?;
            match output {
                Output::Json => print_json(&json!(keys.iter().map(key_json).collect::<Vec<_>>())),
                Output::Text => {
                    for k in &keys {
                        println!(
                            "{:<44}  {:<6}  {:<9}  created {}",
                            k.kid,
                            k.alg,
                            k.state.as_str(),
                            k.created_at
                        );
                    }
                }
            }
        }
        KeysCommand::Rotate { algorithm } => {
            let alg = algorithm
                .map(|name| name.parse().map_err(|e| anyhow!("--algorithm: {e}")))
                .transpose()?;
            let key = registry.rotate_key(Actor::Cli, alg).await?;
            println!(
                "new active key {} ({}); the previous key stays published for tokens it signed.\nRunning servers pick it up within seconds.",
                key.kid, key.alg
            );
        }
    }
    Ok(())
}
