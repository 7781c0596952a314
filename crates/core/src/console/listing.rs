//! A user's live console sessions, for the user page: when each began,
//! was last used and will end, and which one is the asker's own. Never
//! a token or a cookie hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ConsoleService;
use crate::admin::{AdminResult, Caller, Permission};
use crate::secrets::sha256_hex;

/// One signed-in console browser of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSignIn {
    pub signed_in_at: i64,
    /// The last request seen (written at most every few seconds).
    pub last_seen_at: i64,
    /// When it ends unless used again (the idle timeout), or at the
    /// latest (the absolute timeout), whichever comes first.
    pub ends_at: i64,
    /// The session of the cookie that asked.
    pub current: bool,
}

/// The `sid` and `jti` of a sealed access token (sealed by us, so its
/// claims are ours; no signature check needed to read them).
fn session_and_id(access_token: &str) -> Option<(String, String)> {
    let payload = URL_SAFE_NO_PAD
        .decode(access_token.split('.').nth(1)?)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    Some((
        claims["sid"].as_str()?.to_owned(),
        claims["jti"].as_str()?.to_owned(),
    ))
}

impl ConsoleService {
    /// The console sessions of `user_id` that are still live: within
    /// both timeouts, and whose OAuth session was not ended ("sign out
    /// everywhere", a lock, a new password end it before the console row
    /// goes at its next request). Newest first; readers of users only.
    pub async fn sessions_of(
        &self,
        caller: &Caller,
        user_id: &str,
        cookie: &str,
    ) -> AdminResult<Vec<ConsoleSignIn>> {
        caller.require(Permission::ReadUsers)?;
        let now = self.clock.now();
        let own = sha256_hex(cookie);
        let mut live = Vec::new();
        for record in self.sessions.list_console_sessions(user_id).await? {
            let ends_at = (record.last_seen_at + self.policy.idle_timeout_secs)
                .min(record.created_at + self.policy.absolute_timeout_secs);
            if ends_at <= now {
                continue;
            }
            let Some((sid, jti)) = self
                .open_quietly(&record)
                .ok()
                .and_then(|t| session_and_id(&t.access))
            else {
                continue;
            };
            if self
                .bearer
                .tokens
                .access_token_revoked(&jti, Some(&sid))
                .await?
            {
                continue;
            }
            live.push(ConsoleSignIn {
                signed_in_at: record.created_at,
                last_seen_at: record.last_seen_at,
                ends_at,
                current: record.id_hash == own,
            });
        }
        Ok(live)
    }
}
