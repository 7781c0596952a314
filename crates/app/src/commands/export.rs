//! `latchkey export [--include-keys]`: the domain file on stdout.

use std::io::Write as _;

use crate::context::Context;

pub async fn run(ctx: &Context, include_keys: bool) -> anyhow::Result<()> {
    let snapshot = ctx.store.repos.domain.snapshot().await?;
    let file = latchkey_core::domain::export(&snapshot, include_keys);
    let mut out = std::io::stdout().lock();
    // No date in the header: two exports of the same domain are identical.
    writeln!(
        out,
        "# Latchkey domain export. Client-secret hashes, sealed secrets{}\n# are valid only under the master key of the database they came from.\n",
        if include_keys {
            " and signing keys"
        } else {
            ""
        }
    )?;
    out.write_all(file.to_toml().as_bytes())?;
    out.flush()?;
    // Hashes and sealed material left the database: worth a trace.
    super::audited(
        ctx,
        latchkey_core::audit::kind::DOMAIN_EXPORTED,
        "domain",
        Some(
            if include_keys {
                "with signing keys"
            } else {
                "without signing keys"
            }
            .to_owned(),
        ),
    )
    .await;
    Ok(())
}
