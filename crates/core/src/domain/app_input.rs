//! One app as an administrator writes it, in a domain file's `[[apps]]`
//! entry or as `latchkey app create` flags, and its validation. Both paths
//! share this code, so an app the CLI accepts is one `apply` accepts.

use serde::{Deserialize, Serialize};

use super::plan::{AppSpec, HashChange};
use crate::client_auth::ClientKeys;
use crate::duration::parse_duration;
use crate::model::{AppRole, AppType, GrantType, ResourceServer};
use crate::scope;

pub(crate) const DEFAULT_ACCESS_TTL: i64 = 3600;
pub(crate) const DEFAULT_REFRESH_TTL: i64 = 7 * 86_400;
/// Okta's grace period and Auth0's reuse interval: long enough for a
/// retry after a lost answer, or a second thread's refresh.
pub(crate) const DEFAULT_REUSE_INTERVAL: i64 = 30;
/// The longest reuse interval: a rotated-out token must not stay usable
/// for long (Okta allows at most 60 s too).
pub const MAX_REUSE_INTERVAL: i64 = 60;

/// The token lifetimes of an app that names none (the `[tokens]` section of
/// the configuration): applied when the app is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDefaults {
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Seconds a rotated-out refresh token may come back (0: never).
    pub refresh_token_reuse_interval: i64,
}

impl Default for TokenDefaults {
    fn default() -> Self {
        TokenDefaults {
            access_token_ttl: DEFAULT_ACCESS_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TTL,
            refresh_token_reuse_interval: DEFAULT_REUSE_INTERVAL,
        }
    }
}

impl TokenDefaults {
    /// Within what an app may set itself.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_ACCESS_TTL).contains(&self.access_token_ttl) {
            return Err(format!(
                "access_token_ttl: must be between 1s and {MAX_ACCESS_TTL}s"
            ));
        }
        if !(1..=MAX_REFRESH_TTL).contains(&self.refresh_token_ttl) {
            return Err(format!(
                "refresh_token_ttl: must be between 1s and {MAX_REFRESH_TTL}s"
            ));
        }
        if !(0..=MAX_REUSE_INTERVAL).contains(&self.refresh_token_reuse_interval) {
            return Err(format!(
                "refresh_token_reuse_interval: must be between 0s (off) and {MAX_REUSE_INTERVAL}s"
            ));
        }
        Ok(())
    }
}
pub const MAX_ACCESS_TTL: i64 = 86_400;
pub const MAX_REFRESH_TTL: i64 = 366 * 86_400;
pub const MIN_CLIENT_SECRET_LEN: usize = 16;
pub(crate) const MAX_NAME_LEN: usize = 256;

/// A duration as written: whole seconds or `"15m"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum DurationInput {
    Seconds(i64),
    Text(String),
}

/// An app as written by an administrator; `None` means "the default".
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppInput {
    /// The immutable id (a UUID); given only to keep it across databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(rename = "type")]
    pub app_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The keyed hash of the secret as `export` writes it: valid only
    /// under the master key that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    /// The secret sealed under the master key, beside its hash, for an app
    /// that accepts `client_secret_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sealed: Option<String>,
    /// Also accept `client_secret_jwt` (the secret is then kept sealed
    /// under the master key as well as hashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_jwt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<DurationInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<DurationInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_lifetime: Option<DurationInput>,
    /// Seconds after a rotation during which the rotated-out refresh
    /// token may be presented again (docs/tokens.md); 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_reuse_interval: Option<DurationInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// What is wrong, and in which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// A validated app: the spec to write, and the plaintext secret (kept
/// apart so the spec never holds one).
#[derive(Debug)]
pub struct ValidatedApp {
    pub spec: AppSpec,
    pub client_secret: Option<String>,
    pub warnings: Vec<String>,
}

pub(crate) fn check_name(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(bad(
            field,
            format!("must be at most {MAX_NAME_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

/// An id given in a domain file: a UUID in its canonical form (lower-case
/// hex, hyphenated), so it is stored and appears in tokens exactly as written.
pub(crate) fn check_id(field: &'static str, value: &str) -> Result<(), FieldError> {
    match uuid::Uuid::parse_str(value) {
        Ok(id) if id.hyphenated().to_string() == value => Ok(()),
        _ => Err(bad(
            field,
            format!(
                "{value:?} is not a UUID in canonical form (lower-case, hyphenated, e.g. \"0192d4e6-7b1c-7cc3-9a2e-3f5d8e1b2a40\")"
            ),
        )),
    }
}

/// A client-secret hash as `export` writes it: `hmac-sha256$` and 32
/// bytes in base64url.
fn check_secret_hash(value: &str) -> Result<(), FieldError> {
    use base64::Engine as _;
    let ok = value
        .strip_prefix("hmac-sha256$")
        .and_then(|tag| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tag)
                .ok()
        })
        .is_some_and(|tag| tag.len() == 32);
    if ok {
        Ok(())
    } else {
        Err(bad(
            "client_secret_hash",
            "must be a hash written by `latchkey export` (hmac-sha256$ and 43 base64url characters)",
        ))
    }
}

pub(crate) fn parse_roles(
    field: &'static str,
    names: &[String],
) -> Result<Vec<AppRole>, FieldError> {
    let mut out = Vec::new();
    for name in names {
        out.push(
            name.parse::<AppRole>()
                .map_err(|e| bad(field, e.to_string()))?,
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn ttl(
    value: &Option<DurationInput>,
    field: &'static str,
    default: i64,
    max: i64,
) -> Result<i64, FieldError> {
    let seconds = match value {
        None => return Ok(default),
        Some(DurationInput::Seconds(s)) => *s,
        Some(DurationInput::Text(t)) => parse_duration(t).map_err(|m| bad(field, m))?,
    };
    if !(1..=max).contains(&seconds) {
        return Err(bad(
            field,
            format!(
                "must be between 1s and {}",
                crate::duration::format_duration(max)
            ),
        ));
    }
    Ok(seconds)
}

/// The reuse interval: 0 (off) up to `MAX_REUSE_INTERVAL`.
fn reuse_interval(value: &Option<DurationInput>, default: i64) -> Result<i64, FieldError> {
    const FIELD: &str = "refresh_token_reuse_interval";
    let seconds = match value {
        None => return Ok(default),
        Some(DurationInput::Seconds(s)) => *s,
        Some(DurationInput::Text(t)) if t.trim() == "0" => 0,
        Some(DurationInput::Text(t)) => parse_duration(t).map_err(|m| bad(FIELD, m))?,
    };
    if !(0..=MAX_REUSE_INTERVAL).contains(&seconds) {
        return Err(bad(
            FIELD,
            format!("must be between 0s (off) and {MAX_REUSE_INTERVAL}s"),
        ));
    }
    Ok(seconds)
}

impl AppInput {
    /// The input that would produce `app` as it is stored (without its
    /// secret, which only exists as a hash).
    pub fn from_app(app: &crate::model::App) -> Self {
        AppInput {
            id: None,
            name: app.name.clone(),
            client_id: Some(app.client_id.clone()),
            app_type: app.app_type.as_str().to_owned(),
            client_secret: None,
            client_secret_hash: None,
            client_secret_sealed: None,
            client_secret_jwt: Some(app.accepts_client_secret_jwt()),
            grant_types: Some(
                app.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            redirect_uris: app.redirect_uris.clone(),
            scopes: app.scopes.clone(),
            app_roles: app
                .app_roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            jwks: app.jwks.clone(),
            certificate: app.certificate.clone(),
            access_token_ttl: Some(DurationInput::Seconds(app.access_token_ttl)),
            refresh_token_ttl: Some(DurationInput::Seconds(app.refresh_token_ttl)),
            session_lifetime: app.session_lifetime.map(DurationInput::Seconds),
            refresh_token_reuse_interval: Some(DurationInput::Seconds(
                app.refresh_token_reuse_interval,
            )),
            active: Some(app.active),
        }
    }

    /// The client_id: given, or the name lower-cased with dashes.
    pub fn resolved_client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| self.name.to_lowercase().replace(' ', "-"))
    }

    /// Validates every field. `servers` are the resource servers whose
    /// scopes the app may be granted.
    pub fn validate(&self, servers: &[ResourceServer]) -> Result<ValidatedApp, FieldError> {
        self.validate_with(servers, TokenDefaults::default())
    }

    /// `validate`, with `defaults` for the lifetimes the app does not name.
    pub fn validate_with(
        &self,
        servers: &[ResourceServer],
        defaults: TokenDefaults,
    ) -> Result<ValidatedApp, FieldError> {
        let mut warnings = Vec::new();
        check_name("name", &self.name)?;
        let client_id = self.resolved_client_id();
        check_name("client_id", &client_id)?;
        // RFC 6749 §2.3.1 form-encodes client_id inside HTTP Basic, so ':'
        // and the like are fine; only surrounding whitespace is refused.
        if client_id.trim() != client_id {
            return Err(bad("client_id", "must not start or end with whitespace"));
        }
        let app_type: AppType = self.app_type.parse().map_err(|e: String| bad("type", e))?;

        if let Some(secret) = &self.client_secret {
            if app_type == AppType::Public {
                return Err(bad("client_secret", "a public app has no client secret"));
            }
            if secret.chars().count() < MIN_CLIENT_SECRET_LEN {
                return Err(bad(
                    "client_secret",
                    format!(
                        "must be at least {MIN_CLIENT_SECRET_LEN} characters (omit it to have one generated)"
                    ),
                ));
            }
        }
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        let client_secret_jwt = self.client_secret_jwt.unwrap_or(false);
        if client_secret_jwt && app_type == AppType::Public {
            return Err(bad(
                "client_secret_jwt",
                "a public app has no secret to sign assertions with",
            ));
        }
        let mut secret = HashChange::Keep;
        if let Some(hash) = &self.client_secret_hash {
            if app_type == AppType::Public {
                return Err(bad(
                    "client_secret_hash",
                    "a public app has no client secret",
                ));
            }
            if self.client_secret.is_some() {
                return Err(bad(
                    "client_secret_hash",
                    "give either client_secret or client_secret_hash, not both",
                ));
            }
            check_secret_hash(hash)?;
            // An HMAC cannot verify a client_secret_jwt assertion: such an
            // app must bring its sealed secret along.
            if client_secret_jwt && self.client_secret_sealed.is_none() {
                return Err(bad(
                    "client_secret_sealed",
                    "required with client_secret_hash when client_secret_jwt = true",
                ));
            }
            secret = HashChange::Set(hash.clone());
        }
        if self.client_secret_sealed.is_some()
            && (self.client_secret_hash.is_none() || !client_secret_jwt)
        {
            return Err(bad(
                "client_secret_sealed",
                "only with client_secret_hash and client_secret_jwt = true",
            ));
        }
        for (name, value) in [("jwks", &self.jwks), ("certificate", &self.certificate)] {
            if value.is_some() && app_type != AppType::Trusted {
                return Err(bad(
                    name,
                    "only trusted apps may register keys or certificates",
                ));
            }
        }
        if self.jwks.is_some() && self.certificate.is_some() {
            return Err(bad(
                "certificate",
                "give either jwks or certificate, not both",
            ));
        }
        if let Some(jwks) = &self.jwks {
            ClientKeys::from_jwks(jwks).map_err(|m| bad("jwks", m))?;
        }
        if let Some(certificate) = &self.certificate {
            ClientKeys::from_pem(certificate).map_err(|m| bad("certificate", m))?;
        }

        let grant_names = self
            .grant_types
            .clone()
            .unwrap_or_else(|| vec!["password".into(), "refresh_token".into()]);
        if grant_names.is_empty() {
            return Err(bad("grant_types", "must list at least one grant type"));
        }
        let mut grant_types = Vec::new();
        for g in &grant_names {
            let g: GrantType = g.parse().map_err(|e: String| bad("grant_types", e))?;
            if g == GrantType::ClientCredentials && app_type == AppType::Public {
                return Err(bad(
                    "grant_types",
                    "a public app cannot use client_credentials",
                ));
            }
            if !grant_types.contains(&g) {
                grant_types.push(g);
            }
        }

        for uri in &self.redirect_uris {
            check_redirect_uri(uri).map_err(|m| bad("redirect_uris", m))?;
        }

        let mut scopes = Vec::new();
        for s in &self.scopes {
            if !scope::is_special(s) && scope::resource_server_of(s, servers).is_none() {
                return Err(bad(
                    "scopes",
                    format!(
                        "unknown scope {s:?} (not a special scope, nor audience + scope of a resource server)"
                    ),
                ));
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }

        let app_roles = parse_roles("app_roles", &self.app_roles)?;
        if !app_roles.is_empty() && app_type != AppType::Trusted {
            return Err(bad(
                "app_roles",
                "only trusted apps may hold application roles",
            ));
        }
        let access_token_ttl = ttl(
            &self.access_token_ttl,
            "access_token_ttl",
            defaults.access_token_ttl,
            MAX_ACCESS_TTL,
        )?;
        let refresh_token_ttl = ttl(
            &self.refresh_token_ttl,
            "refresh_token_ttl",
            defaults.refresh_token_ttl,
            MAX_REFRESH_TTL,
        )?;
        let session_lifetime = match &self.session_lifetime {
            None => None,
            Some(_) => Some(ttl(
                &self.session_lifetime,
                "session_lifetime",
                0,
                MAX_REFRESH_TTL,
            )?),
        };
        let refresh_token_reuse_interval = reuse_interval(
            &self.refresh_token_reuse_interval,
            defaults.refresh_token_reuse_interval,
        )?;
        if access_token_ttl < 60 {
            warnings.push(format!(
                "app {client_id}: access_token_ttl under 60s is meant for tests and demos"
            ));
        }

        Ok(ValidatedApp {
            spec: AppSpec {
                id: self.id.clone(),
                client_id,
                name: self.name.clone(),
                app_type,
                active: self.active.unwrap_or(true),
                secret,
                sealed_secret: self.client_secret_sealed.clone(),
                client_secret_jwt,
                grant_types,
                redirect_uris: self.redirect_uris.clone(),
                scopes,
                app_roles,
                jwks: self.jwks.clone(),
                certificate: self.certificate.clone(),
                access_token_ttl,
                refresh_token_ttl,
                session_lifetime,
                refresh_token_reuse_interval,
            },
            client_secret: self.client_secret.clone(),
            warnings,
        })
    }
}

/// Redirect URIs must be absolute `https` (or `http` on loopback), without
/// a fragment (RFC 6749 §3.1.2, OAuth 2.0 Security BCP §4.1.3).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri:?} must not contain a fragment"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{uri:?} must use https (http is allowed only on loopback)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(app_type: &str) -> AppInput {
        AppInput {
            name: "Reports".into(),
            app_type: app_type.into(),
            ..AppInput::default()
        }
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://example.com/cb").is_err());
        assert!(check_redirect_uri("https://example.com/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }

    #[test]
    fn app_types_are_enforced() {
        let spec = input("trusted").validate(&[]).unwrap().spec;
        assert_eq!(spec.client_id, "reports");
        assert!(spec.active);
        let public_with = |f: fn(&mut AppInput)| {
            let mut a = input("public");
            f(&mut a);
            a.validate(&[]).unwrap_err().field
        };
        assert_eq!(
            public_with(|a| a.client_secret = Some("0123456789abcdef".into())),
            "client_secret"
        );
        assert_eq!(
            public_with(|a| a.client_secret_jwt = Some(true)),
            "client_secret_jwt"
        );
        assert_eq!(
            public_with(|a| a.grant_types = Some(vec!["client_credentials".into()])),
            "grant_types"
        );
        let mut a = input("confidential");
        a.app_roles = vec!["User Administrator".into()];
        assert_eq!(a.validate(&[]).unwrap_err().field, "app_roles");
        let mut a = input("confidential");
        a.jwks = Some(r#"{"keys":[]}"#.into());
        assert_eq!(a.validate(&[]).unwrap_err().field, "jwks");
    }

    #[test]
    fn key_material_is_checked_when_written() {
        let mut a = input("trusted");
        a.jwks = Some(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into());
        let err = a.validate(&[]).unwrap_err();
        assert_eq!(err.field, "jwks");
        let mut a = input("trusted");
        a.certificate =
            Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into());
        assert_eq!(a.validate(&[]).unwrap_err().field, "certificate");
    }

    #[test]
    fn the_reuse_interval_is_off_or_at_most_a_minute() {
        let with = |value: Option<DurationInput>| {
            let mut a = input("confidential");
            a.refresh_token_reuse_interval = value;
            a.validate(&[])
                .map(|v| v.spec.refresh_token_reuse_interval)
                .map_err(|e| (e.field, e.message))
        };
        assert_eq!(with(None), Ok(DEFAULT_REUSE_INTERVAL), "the default");
        assert_eq!(with(Some(DurationInput::Seconds(0))), Ok(0), "off");
        assert_eq!(with(Some(DurationInput::Text("0".into()))), Ok(0));
        assert_eq!(with(Some(DurationInput::Text("45s".into()))), Ok(45));
        assert_eq!(with(Some(DurationInput::Text("1m".into()))), Ok(60));
        for too_much in [
            DurationInput::Text("61s".into()),
            DurationInput::Seconds(-1),
        ] {
            let (field, message) = with(Some(too_much)).unwrap_err();
            assert_eq!(field, "refresh_token_reuse_interval");
            assert!(message.contains("60s"), "{message}");
        }
        // The `[tokens]` default applies to apps that name none.
        let mut a = input("confidential");
        a.refresh_token_reuse_interval = None;
        let defaults = TokenDefaults {
            refresh_token_reuse_interval: 0,
            ..TokenDefaults::default()
        };
        let spec = a.validate_with(&[], defaults).unwrap().spec;
        assert_eq!(spec.refresh_token_reuse_interval, 0);
        assert!(
            TokenDefaults {
                refresh_token_reuse_interval: 61,
                ..TokenDefaults::default()
            }
            .validate()
            .is_err()
        );
    }
}
