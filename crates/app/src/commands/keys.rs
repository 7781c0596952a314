//! `latchkey keys …`.

use anyhow::anyhow;
use latchkey_core::admin::{Actor, key_json};
use latchkey_core::keys::{KeyAlgorithm, KeyRotation};
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
        KeysCommand::Rotate { algorithm, now } => {
            let alg = algorithm
                .map(|name| name.parse().map_err(|e| anyhow!("--algorithm: {e}")))
                .transpose()?;
            let when = if now {
                KeyRotation::Immediate
            } else {
                KeyRotation::Staged
            };
            let key = registry.rotate_key(Actor::Cli, alg, when).await?;
            if now || key.state == latchkey_core::model::KeyState::Active {
                println!(
                    "new active key {} ({}), signing at once; the previous key stays published for tokens it signed.\n\
                     Running servers sign with it within seconds; verifiers that cached the JWKS refuse its tokens until they fetch it again.",
                    key.kid, key.alg
                );
            } else {
                println!(
                    "new key {} ({}) published; it signs from {} (in {}), once verifiers that cache the JWKS hold it.\n\
                     The current key signs until then and stays published for the tokens it signed.",
                    key.kid,
                    key.alg,
                    latchkey_core::scim::time::format_datetime(key.signs_from()),
                    latchkey_core::duration::format_duration(key.signs_from() - key.created_at),
                );
            }
        }
    }
    Ok(())
}
