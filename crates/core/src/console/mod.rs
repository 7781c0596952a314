//! The console's sign-in and sessions (`/console`). The console is an
//! OAuth client of this server like any other: it signs users in with the
//! password grant through the built-in trusted app `latchkey-console`,
//! keeps the tokens server-side (sealed, in the database), and acts with
//! the access token's `Caller`, so the permission table, the throttle,
//! lockout and the audit trail apply exactly as for the token endpoint
//! and the admin API. No HTTP here: the http crate owns cookies and pages.

mod app;
mod keys;
mod listing;
mod repo;
mod service;

pub use app::{CONSOLE_CLIENT_ID, CONSOLE_SCOPES, console_app_file};
pub use keys::ConsoleKeys;
pub use listing::ConsoleSignIn;
pub use repo::{ConsoleSessionRecord, ConsoleSessionRepo};
pub use service::{ConsoleService, ConsoleSession, ResumeError, SignInError, SignedIn};

/// How long a console session may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsolePolicy {
    /// Ended after this long without a request.
    pub idle_timeout_secs: i64,
    /// Ended this long after sign-in, however active.
    pub absolute_timeout_secs: i64,
}

impl Default for ConsolePolicy {
    fn default() -> Self {
        // OWASP's session guidance for sensitive applications: minutes of
        // idleness, hours in all.
        ConsolePolicy {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 8 * 3600,
        }
    }
}
