//! JWT client assertions (RFC 7523 §2.2 and §3, RFC 7521 §4.2):
//! `private_key_jwt` with the app's registered public keys, and
//! `client_secret_jwt` with its secret. Each check fails with its own
//! description, so a developer can see what to fix; none reveals a secret.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::keys::{ClientKeys, KeyHint};
use crate::model::App;
use crate::secrets::MasterKey;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest a `jti` may be (it is stored in the replay cache).
const MAX_JTI_BYTES: usize = 256;

/// Limits on what assertions are accepted.
#[derive(Debug, Clone)]
pub struct AssertionPolicy {
    /// `exp` may lie at most this far ahead (an assertion is a one-shot
    /// credential: a long-lived one is a stolen password waiting).
    pub max_lifetime_secs: i64,
    /// Tolerated clock difference for `exp`, `nbf` and `iat`.
    pub clock_skew_secs: i64,
    /// Longer assertions are refused before any parsing.
    pub max_bytes: usize,
}

impl Default for AssertionPolicy {
    fn default() -> Self {
        AssertionPolicy {
            max_lifetime_secs: 600,
            clock_skew_secs: 60,
            max_bytes: 8 * 1024,
        }
    }
}

/// An assertion in transit. Never printed: it is a bearer credential
/// until it expires.
#[derive(Clone)]
pub struct ClientAssertion(String);

impl ClientAssertion {
    pub fn new(value: impl Into<String>) -> Self {
        ClientAssertion(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAssertion(***)")
    }
}

/// Why an assertion was refused: what the developer is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

fn rejected(message: impl Into<String>) -> Rejected {
    Rejected(message.into())
}

/// The unverified parts of an assertion: enough to find the client and
/// its key. Nothing here is trusted until the signature verifies.
#[derive(Debug)]
pub struct Unverified {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    pub alg: Algorithm,
}

fn segment(part: &str, what: &str) -> Result<Map<String, Value>, Rejected> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| rejected(format!("the client assertion's {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(rejected(format!(
            "the client assertion's {what} is not a JSON object"
        ))),
    }
}

fn string<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name).and_then(Value::as_str)
}

impl Unverified {
    /// Splits and decodes the assertion, and checks its header.
    pub fn parse(assertion: &str, policy: &AssertionPolicy) -> Result<Self, Rejected> {
        if assertion.len() > policy.max_bytes {
            return Err(rejected(format!(
                "the client assertion is too large (at most {} bytes)",
                policy.max_bytes
            )));
        }
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, _signature] = parts.as_slice() else {
            return Err(rejected(
                "the client assertion is not a signed JWT (three base64url parts)",
            ));
        };
        let header = segment(header, "header")?;
        let claims = segment(claims, "claims")?;
        let alg = match string(&header, "alg") {
            None => return Err(rejected("the client assertion's header has no alg")),
            Some(name) if name.eq_ignore_ascii_case("none") => {
                return Err(rejected(
                    "unsigned client assertions (alg none) are not accepted",
                ));
            }
            Some(name) => name.parse::<Algorithm>().map_err(|_| {
                rejected(format!(
                    "alg {name:?} is not supported; use RS256/384/512, PS256/384/512, ES256, ES384, EdDSA, or HS256/384/512 for client_secret_jwt"
                ))
            })?,
        };
        // RFC 7515 §4.1.11: a critical extension we do not know means the
        // JWS must be rejected.
        if header.contains_key("crit") {
            return Err(rejected(
                "the client assertion's header has crit extensions, which are not supported",
            ));
        }
        if header.contains_key("jku") || header.contains_key("x5u") || header.contains_key("jwk") {
            return Err(rejected(
                "keys are taken only from the client's registration, never from the assertion (jku, x5u, jwk)",
            ));
        }
        Ok(Unverified {
            header,
            claims,
            alg,
        })
    }

    /// The client the assertion claims to be: its `sub` (RFC 7523 §3).
    pub fn subject(&self) -> Option<&str> {
        string(&self.claims, "sub")
    }

    fn hint(&self) -> KeyHint<'_> {
        KeyHint {
            kid: string(&self.header, "kid"),
            x5t: string(&self.header, "x5t"),
            x5t_s256: string(&self.header, "x5t#S256"),
        }
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Checks the signature only; claims are checked by `check_claims`, each
/// with its own message.
fn signature_verifies(assertion: &str, key: &DecodingKey, alg: Algorithm) -> bool {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(assertion, key, &validation).is_ok()
}

/// Verifies the signature with the key the app registered for `alg`:
/// its secret (current, or previous within its grace) for HMAC, its public
/// keys otherwise. An HMAC assertion is never checked against a public
/// key, nor the reverse (key confusion).
pub fn verify_signature(
    assertion: &str,
    unverified: &Unverified,
    app: &App,
    master: &MasterKey,
    now: i64,
) -> Result<(), Rejected> {
    let alg = unverified.alg;
    if is_hmac(alg) {
        if !app.accepts_client_secret_jwt() {
            return Err(rejected(format!(
                "client_secret_jwt ({alg:?}) is not enabled for this client{}",
                if app.has_public_keys() {
                    "; it authenticates with its registered public keys (private_key_jwt)"
                } else {
                    ""
                }
            )));
        }
        let sealed = app
            .secret_sealed
            .iter()
            .chain(app.previous_secret_at(now).and_then(|p| p.sealed.as_ref()));
        for sealed in sealed {
            match master.open_client_secret(&app.client_id, sealed) {
                Ok(secret) => {
                    let key = DecodingKey::from_secret(secret.as_bytes());
                    if signature_verifies(assertion, &key, alg) {
                        return Ok(());
                    }
                }
                Err(e) => {
                    tracing::error!(
                        client_id = app.client_id.as_str(),
                        error = e.to_string(),
                        "a sealed client secret does not open: was the master key changed?"
                    );
                }
            }
        }
        return Err(rejected(
            "the client assertion's signature does not verify with the client secret",
        ));
    }
    let keys = match (&app.jwks, &app.certificate) {
        (Some(jwks), _) => ClientKeys::from_jwks(jwks),
        (None, Some(certificate)) => ClientKeys::from_pem(certificate),
        (None, None) => {
            return Err(rejected(format!(
                "private_key_jwt ({alg:?}) needs public keys registered for this client (jwks or certificate)"
            )));
        }
    }
    .map_err(|e| {
        tracing::error!(client_id = app.client_id.as_str(), error = e.to_string(), "the client's registered keys do not parse");
        rejected("the client's registered keys are unusable; ask the administrator to register them again")
    })?;
    let key = keys.select(&unverified.hint(), alg).map_err(rejected)?;
    if !signature_verifies(assertion, &key.key, alg) {
        return Err(rejected(
            "the client assertion's signature does not verify with the registered key",
        ));
    }
    Ok(())
}

/// The claims of RFC 7523 §3, after the signature verified. Returns the
/// `jti` and how long it must be remembered.
pub fn check_claims(
    unverified: &Unverified,
    client_id: &str,
    audiences: &[String],
    policy: &AssertionPolicy,
    now: i64,
) -> Result<(String, i64), Rejected> {
    let claims = &unverified.claims;
    if string(claims, "iss") != Some(client_id) || string(claims, "sub") != Some(client_id) {
        return Err(rejected(
            "the client assertion's iss and sub must both be the client_id",
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(rejected(format!(
            "the client assertion's aud must contain the token endpoint URL ({}) or the issuer ({})",
            audiences.get(1).map(String::as_str).unwrap_or_default(),
            audiences.first().map(String::as_str).unwrap_or_default()
        )));
    }
    let time = |name: &str| -> Result<Option<i64>, Rejected> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| rejected(format!("the client assertion's {name} is not a number"))),
        }
    };
    let skew = policy.clock_skew_secs;
    let exp = time("exp")?.ok_or_else(|| rejected("the client assertion has no exp"))?;
    if exp <= now - skew {
        return Err(rejected("the client assertion has expired"));
    }
    if exp > now + policy.max_lifetime_secs + skew {
        return Err(rejected(format!(
            "the client assertion's exp is too far ahead (at most {} s from now)",
            policy.max_lifetime_secs
        )));
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now + skew) {
        return Err(rejected("the client assertion is not valid yet (nbf)"));
    }
    if time("iat")?.is_some_and(|iat| iat > now + skew) {
        return Err(rejected(
            "the client assertion was issued in the future (iat)",
        ));
    }
    let jti = match string(claims, "jti") {
        // Bytes: the jti is stored (the replay cache) and indexed.
        Some(jti)
            if !jti.is_empty()
                && jti.len() <= MAX_JTI_BYTES
                && !jti.chars().any(char::is_control) =>
        {
            jti
        }
        Some(_) => {
            return Err(rejected(format!(
                "the client assertion's jti must be 1 to {MAX_JTI_BYTES} bytes without control characters"
            )));
        }
        None => {
            return Err(rejected(
                "the client assertion has no jti (needed to refuse replays)",
            ));
        }
    };
    // Remembered until the assertion could no longer pass the exp check.
    Ok((jti.to_owned(), exp + skew))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unsigned(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn policy() -> AssertionPolicy {
        AssertionPolicy::default()
    }

    #[test]
    fn headers_are_checked_before_anything_else() {
        let claims = json!({"sub": "app"});
        let reason = |header: Value| {
            Unverified::parse(&unsigned(header, claims.clone()), &policy())
                .err()
                .map(|r| r.0)
                .unwrap_or_default()
        };
        assert!(reason(json!({"alg": "none"})).contains("alg none"));
        assert!(reason(json!({"alg": "NONE"})).contains("alg none"));
        assert!(reason(json!({})).contains("no alg"));
        assert!(reason(json!({"alg": "RS1"})).contains("not supported"));
        assert!(reason(json!({"alg": "RS256", "crit": ["exp"]})).contains("crit"));
        assert!(reason(json!({"alg": "RS256", "jku": "https://evil"})).contains("jku"));
        assert!(reason(json!({"alg": "RS256"})).is_empty());
        for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.bm90anNvbg.c2ln"] {
            assert!(Unverified::parse(garbage, &policy()).is_err(), "{garbage}");
        }
        let huge = "a".repeat(policy().max_bytes + 1);
        assert!(
            Unverified::parse(&huge, &policy())
                .unwrap_err()
                .0
                .contains("too large")
        );
    }

    #[test]
    fn claims_follow_rfc_7523() {
        let audiences = vec![
            "https://id.example.com".to_owned(),
            "https://id.example.com/oauth2/v1/token".to_owned(),
        ];
        let now = 1_000_000;
        let good =
            json!({"iss": "app", "sub": "app", "aud": audiences[1], "exp": now + 300, "jti": "j1"});
        let check = |claims: &Value| {
            let u = Unverified::parse(
                &unsigned(json!({"alg": "ES256"}), claims.clone()),
                &policy(),
            )
            .unwrap();
            check_claims(&u, "app", &audiences, &policy(), now)
        };
        assert_eq!(check(&good), Ok(("j1".to_owned(), now + 360)));
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            check(&c).unwrap_err().0
        };
        let without = |k: &str| {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove(k);
            check(&c).unwrap_err().0
        };
        assert!(with("iss", json!("other")).contains("iss and sub"));
        assert!(with("sub", json!("other")).contains("iss and sub"));
        assert!(with("aud", json!("https://elsewhere")).contains("aud"));
        assert!(
            check(&{
                let mut c = good.clone();
                c["aud"] = json!(["x", audiences[0]]);
                c
            })
            .is_ok()
        );
        assert!(without("exp").contains("no exp"));
        assert!(with("exp", json!(now - 61)).contains("expired"));
        assert!(
            check(&{
                let mut c = good.clone();
                c["exp"] = json!(now - 59);
                c
            })
            .is_ok(),
            "within the clock skew"
        );
        assert!(with("exp", json!(now + 661)).contains("too far"));
        assert!(with("exp", json!("soon")).contains("not a number"));
        assert!(with("nbf", json!(now + 61)).contains("nbf"));
        assert!(with("iat", json!(now + 61)).contains("iat"));
        assert!(without("jti").contains("no jti"));
        assert!(with("jti", json!("")).contains("jti"));
        assert!(with("jti", json!("x".repeat(257))).contains("jti"));
    }
}
