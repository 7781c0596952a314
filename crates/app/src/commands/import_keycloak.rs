//! `latchkey import keycloak FILE [--output DOMAIN.toml]`: a Keycloak realm
//! export into this domain, through the same validation and single
//! transaction as `apply`. What could not be mapped goes to stderr.

use std::path::Path;

use anyhow::{Context as _, bail};
use latchkey_core::domain::ApplyError;
use latchkey_import::{KeycloakOptions, import_keycloak};

use crate::context::Context;

pub async fn run(
    ctx: &Context,
    file: &Path,
    output: Option<&Path>,
    audience: Option<String>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let imported = import_keycloak(
        &text,
        &KeycloakOptions { audience },
        &ctx.master.secret_hasher(),
        &ctx.master,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let domain = format!(
        "# Imported from the Keycloak realm export {}.\n# Client-secret hashes are valid only under this database's master key.\n\n{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        imported.file.to_toml()
    );
    for line in &imported.unmapped {
        eprintln!("not mapped: {line}");
    }
    eprintln!(
        "{} item(s) could not be mapped{}",
        imported.unmapped.len(),
        if imported.unmapped.is_empty() {
            ""
        } else {
            " (listed above)"
        }
    );
    if let Some(output) = output {
        std::fs::write(output, &domain)
            .with_context(|| format!("cannot write {}", output.display()))?;
        println!(
            "wrote {} ({} users, {} groups, {} apps, {} resource servers); apply it with `latchkey apply`",
            output.display(),
            imported.file.users.len(),
            imported.file.groups.len(),
            imported.file.apps.len(),
            imported.file.resource_servers.len()
        );
        return Ok(());
    }
    let report = match ctx.domain_service().apply(&domain).await {
        Ok(report) => report,
        // The generated file's line numbers mean nothing to the user:
        // name the field, and suggest --output to look at it.
        Err(ApplyError::Invalid(e)) => bail!(
            "the imported realm does not form a valid domain: {}: {}; nothing was changed (write it with --output to inspect it)",
            e.field,
            e.message
        ),
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
