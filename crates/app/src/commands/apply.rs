//! `latchkey apply FILE`.

use std::path::Path;

use anyhow::Context as _;
use latchkey_core::domain::ApplyError;

use crate::context::Context;

pub async fn run(ctx: &Context, file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = match ctx.domain_service().apply(&text).await {
        Ok(report) => report,
        Err(ApplyError::Invalid(e)) => {
            anyhow::bail!("{}: {e}; nothing was changed", file.display())
        }
        Err(e) => return Err(e).context("nothing was changed"),
    };
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    super::audited(
        ctx,
        latchkey_core::audit::kind::DOMAIN_APPLIED,
        &file.display().to_string(),
        Some(report.summary.to_string()),
    )
    .await;
    println!("{}", report.summary);
    for (client_id, secret) in &report.generated_secrets {
        println!(
            "generated client secret for {client_id}: {secret}\n(shown once; it is stored only as a hash)"
        );
    }
    Ok(())
}
