//! `latchkey keys …`.

use anyhow::anyhow;
use latchkey_core::keys::{KeyAlgorithm, KeyRing};
use latchkey_core::model::KeyState;
use serde_json::json;

use super::print_json;
use crate::cli::{KeysCommand, Output};
use crate::context::Context;

pub async fn run(
    ctx: &Context,
    command: KeysCommand,
    default_alg: KeyAlgorithm,
) -> anyhow::Result<()> {
    let repo = &ctx.store.repos.keys;
    match command {
        KeysCommand::List { output } => {
            let keys = repo.list_all().await?;
            match output {
                Output::Json => print_json(&json!(keys
                    .iter()
                    .map(|k| json!({"kid": k.kid, "alg": k.alg, "state": k.state.as_str(), "created_at": k.created_at, "retired_at": k.retired_at}))
                    .collect::<Vec<_>>())),
                Output::Text => {
                    for k in &keys {
                        println!("{:<44}  {:<6}  {:<9}  created {}", k.kid, k.alg, k.state.as_str(), k.created_at);
                    }
                }
            }
        }
        KeysCommand::Rotate { algorithm } => {
            let current = repo
                .list_published()
                .await?
                .into_iter()
                .find(|k| k.state == KeyState::Active);
            let alg = match (algorithm, current) {
                (Some(name), _) => name.parse().map_err(|e| anyhow!("--algorithm: {e}"))?,
                (None, Some(active)) => active.alg.parse().map_err(|e: String| anyhow!(e))?,
                (None, None) => default_alg,
            };
            let ring = KeyRing::new(repo.clone(), ctx.master.clone());
            let kid = ring.rotate(alg, ctx.clock.now()).await?;
            super::audited(
                ctx,
                latchkey_core::audit::kind::KEY_ROTATED,
                &kid,
                Some(alg.to_string()),
            )
            .await;
            println!(
                "new active key {kid} ({alg}); the previous key stays published for tokens it signed.\nRunning servers pick it up within seconds."
            );
        }
    }
    Ok(())
}
