//! Logging: `tracing` to standard error, human-readable or JSON lines.
//!
//! The level filter comes from `LATCHKEY_LOG`, else `RUST_LOG` (what every
//! Rust operator tries first), else `info,sqlx=warn` (docs/operations.md).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The filter directives and the variable they came from: the first of
/// `LATCHKEY_LOG` and `RUST_LOG` that is set and not blank, else the
/// default.
pub fn pick_filter<'a>(
    latchkey_log: Option<&'a str>,
    rust_log: Option<&'a str>,
) -> (&'a str, Option<&'static str>) {
    let set = |v: Option<&'a str>| v.filter(|v| !v.trim().is_empty());
    match (set(latchkey_log), set(rust_log)) {
        (Some(directives), _) => (directives, Some("LATCHKEY_LOG")),
        (None, Some(directives)) => (directives, Some("RUST_LOG")),
        (None, None) => (DEFAULT_FILTER, None),
    }
}

/// Installs the process's subscriber. A filter that does not parse is
/// reported (naming its variable) and the default is used instead.
pub fn init(format: LogFormat) {
    let (latchkey_log, rust_log) = (
        std::env::var("LATCHKEY_LOG").ok(),
        std::env::var("RUST_LOG").ok(),
    );
    let (directives, from) = pick_filter(latchkey_log.as_deref(), rust_log.as_deref());
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|e| {
        eprintln!(
            "warning: {}: {e}; logging with {DEFAULT_FILTER}",
            from.unwrap_or("log filter")
        );
        EnvFilter::new(DEFAULT_FILTER)
    });
    // Colours only for a terminal: in a file or journald they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latchkey_log_then_rust_log_then_the_default() {
        assert_eq!(
            pick_filter(Some("debug"), Some("trace")),
            ("debug", Some("LATCHKEY_LOG"))
        );
        assert_eq!(pick_filter(None, Some("warn")), ("warn", Some("RUST_LOG")));
        assert_eq!(
            pick_filter(Some("  "), Some("warn")),
            ("warn", Some("RUST_LOG")),
            "a blank LATCHKEY_LOG counts as unset"
        );
        assert_eq!(pick_filter(None, None), (DEFAULT_FILTER, None));
        assert_eq!(pick_filter(None, Some("")), (DEFAULT_FILTER, None));
    }
}
