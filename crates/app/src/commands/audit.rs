//! `latchkey audit`: the audit trail, newest first.

use anyhow::anyhow;
use latchkey_core::admin::event_resource;
use latchkey_core::audit::AuditQuery;
use latchkey_core::scim::query::MAX_COUNT;
use latchkey_core::scim::time::format_datetime;
use serde_json::json;

use super::print_json;
use crate::cli::Output;
use crate::context::Context;

pub struct Filter {
    pub event_type: Option<String>,
    pub subject: Option<String>,
    /// A typed username that names no user: its keyed hash is the subject.
    pub unknown_user: Option<String>,
    pub since: Option<String>,
    pub count: u32,
}

pub async fn run(ctx: &Context, filter: Filter, output: Output) -> anyhow::Result<()> {
    let since = match &filter.since {
        None => None,
        Some(text) => Some(
            ctx.clock.now()
                - latchkey_core::duration::parse_duration(text)
                    .map_err(|e| anyhow!("--since: {e}"))?,
        ),
    };
    let query = AuditQuery {
        event_type: filter.event_type,
        actor: None,
        subject: match filter.unknown_user {
            Some(name) => Some(latchkey_core::audit::AuditNames::new(&ctx.master).unknown(&name)),
            None => filter.subject,
        },
        since,
        until: None,
        start_index: 1,
        count: filter.count.min(MAX_COUNT),
    };
    let page = ctx.store.repos.audit.query(&query).await?;
    match output {
        Output::Json => print_json(&json!(
            page.items.iter().map(event_resource).collect::<Vec<_>>()
        )),
        Output::Text => {
            for e in &page.items {
                let repeated = match (e.occurrences, e.last_at) {
                    (1, _) => String::new(),
                    (n, Some(last)) => format!("  ×{n} until {}", format_datetime(last)),
                    (n, None) => format!("  ×{n}"),
                };
                println!(
                    "{}  {:<22} {:<7}  actor={} subject={} client={} ip={}{}{repeated}",
                    format_datetime(e.at),
                    e.event_type,
                    e.outcome,
                    e.actor.as_deref().unwrap_or("-"),
                    e.subject.as_deref().unwrap_or("-"),
                    e.client_id.as_deref().unwrap_or("-"),
                    e.ip.as_deref().unwrap_or("-"),
                    e.detail
                        .as_deref()
                        .map(|d| format!("  ({d})"))
                        .unwrap_or_default(),
                );
            }
            if page.total > page.items.len() as u64 {
                println!(
                    "… {} more (use --count)",
                    page.total - page.items.len() as u64
                );
            }
        }
    }
    Ok(())
}
