//! The built-in console app, as a domain file applied at server start.

use super::ConsolePolicy;
use super::keys::ConsoleKeys;
use crate::model::AppRole;

pub const CONSOLE_CLIENT_ID: &str = "latchkey-console";

/// What the console asks for at sign-in: the admin API (its roles),
/// a refresh token, and the user's identity.
pub const CONSOLE_SCOPES: &str = "urn:opc:idm:__myscopes__ offline_access openid profile";

/// A short access token: a role taken away reaches the console at the
/// next refresh, within minutes.
const ACCESS_TOKEN_TTL_SECS: i64 = 300;

/// The domain file that creates (or puts back) the console app. It is
/// trusted and holds every application role because a token's roles are
/// those held by both the user and the app: the app must hold all of them
/// for any user's roles to reach the console. Its secret is derived from
/// the master key, so every node knows it and the database holds only its
/// keyed hash. The refresh session ends with the console session's
/// absolute timeout.
pub fn console_app_file(keys: &ConsoleKeys, policy: &ConsolePolicy) -> String {
    let roles = AppRole::ALL
        .iter()
        .map(|r| format!("{:?}", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let scopes = CONSOLE_SCOPES
        .split(' ')
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[[apps]]
name = "Latchkey Console"
client_id = "{CONSOLE_CLIENT_ID}"
type = "trusted"
client_secret = "{secret}"
grant_types = ["password", "refresh_token"]
scopes = [{scopes}]
app_roles = [{roles}]
access_token_ttl = {ACCESS_TOKEN_TTL_SECS}
refresh_token_ttl = {absolute}
session_lifetime = {absolute}
"#,
        secret = keys.client_secret(),
        absolute = policy.absolute_timeout_secs,
    )
}
