//! Which client authentication method a token request used (RFC 6749
//! §2.3, RFC 7521 §4.2): HTTP Basic, a secret or an assertion in the
//! body, or none. Exactly one; more is an error.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::OAuthError;
use latchkey_core::client_auth::{ClientAssertion, ClientCredentials, ClientSecret, JWT_BEARER};

use crate::form::decode_component;

const ASSERTION_PARAMS: [&str; 2] = ["client_assertion", "client_assertion_type"];
// The domain file allows 256 bytes; anything longer names no client.
use latchkey_core::client_auth::MAX_CLIENT_ID_BYTES;

/// Extracts the credentials and removes them from `params`, so that
/// nothing downstream sees a secret it does not need.
pub(crate) fn extract(
    headers: &HeaderMap,
    params: &mut HashMap<String, String>,
) -> Result<ClientCredentials, OAuthError> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = authorizations.next();
    if authorizations.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    let body_id = params.remove("client_id").filter(|v| !v.is_empty());
    if body_id
        .as_deref()
        .is_some_and(|id| id.len() > MAX_CLIENT_ID_BYTES)
    {
        return Err(OAuthError::invalid_client(false, "client_id is too long"));
    }
    let body_secret = params.remove("client_secret");
    let has_assertion = ASSERTION_PARAMS.iter().any(|p| params.contains_key(*p));

    if let Some(value) = authorization {
        let (id, secret) = parse_basic(value.to_str().ok())?;
        if body_secret.is_some() || has_assertion {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        if body_id.as_deref().is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_client(
                true,
                "client_id in the body differs from the Authorization header",
            ));
        }
        return Ok(ClientCredentials::Basic {
            client_id: id,
            secret: ClientSecret::new(secret),
        });
    }
    if has_assertion {
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        let assertion_type = params.remove("client_assertion_type");
        let assertion = params.remove("client_assertion");
        let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type must be sent together",
            ));
        };
        if assertion_type != JWT_BEARER {
            return Err(OAuthError::invalid_client(
                false,
                format!("unsupported client_assertion_type; use {JWT_BEARER}"),
            ));
        }
        return Ok(ClientCredentials::Assertion {
            client_id: body_id,
            assertion: ClientAssertion::new(assertion),
        });
    }
    let Some(client_id) = body_id else {
        return Err(OAuthError::invalid_client(
            false,
            "client authentication is required (HTTP Basic, or client_id in the body)",
        ));
    };
    Ok(match body_secret {
        Some(secret) => ClientCredentials::Post {
            client_id,
            secret: ClientSecret::new(secret),
        },
        None => ClientCredentials::None { client_id },
    })
}

/// `Basic base64(urlencode(client_id) ":" urlencode(secret))`.
fn parse_basic(value: Option<&str>) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client(true, "malformed HTTP Basic credentials");
    let value = value.ok_or_else(malformed)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            true,
            "unsupported authorization scheme; use HTTP Basic",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(malformed)?;
    let id = decode_component(&decoded[..colon]).ok_or_else(malformed)?;
    let secret = decode_component(&decoded[colon + 1..]).ok_or_else(malformed)?;
    if id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES {
        return Err(malformed());
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap(),
        );
        h
    }

    #[test]
    fn basic_components_are_form_decoded() {
        let mut params = HashMap::new();
        let creds = extract(&basic("my%3Aapp:s%2Bc+r"), &mut params).unwrap();
        match creds {
            ClientCredentials::Basic { client_id, secret } => {
                assert_eq!(client_id, "my:app");
                assert_eq!(secret.expose(), "s+c r");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_methods_are_invalid_request() {
        let mut params = HashMap::from([("client_secret".to_string(), "x".to_string())]);
        assert_eq!(
            extract(&basic("a:b"), &mut params).unwrap_err().kind.code(),
            "invalid_request"
        );
    }

    #[test]
    fn body_credentials_and_public_clients() {
        let mut params = HashMap::from([
            ("client_id".to_string(), "a".to_string()),
            ("client_secret".to_string(), "s".to_string()),
        ]);
        assert!(matches!(
            extract(&HeaderMap::new(), &mut params).unwrap(),
            ClientCredentials::Post { .. }
        ));
        assert!(
            params.is_empty(),
            "credentials are removed from the parameters"
        );
        let mut params = HashMap::from([("client_id".to_string(), "a".to_string())]);
        assert!(matches!(
            extract(&HeaderMap::new(), &mut params).unwrap(),
            ClientCredentials::None { .. }
        ));
        let err = extract(&HeaderMap::new(), &mut HashMap::new()).unwrap_err();
        assert_eq!(err.kind.code(), "invalid_client");
    }

    #[test]
    fn assertions_are_taken_from_the_body_alone() {
        let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut params = form(&[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", "a.b.c"),
            ("grant_type", "password"),
        ]);
        match extract(&HeaderMap::new(), &mut params).unwrap() {
            ClientCredentials::Assertion {
                client_id,
                assertion,
            } => {
                assert_eq!(client_id, None);
                assert_eq!(assertion.expose(), "a.b.c");
                assert_eq!(format!("{assertion:?}"), "ClientAssertion(***)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            params.len(),
            1,
            "the assertion is removed from the parameters"
        );
        let code = |headers: &HeaderMap, pairs: &[(&str, &str)]| {
            extract(headers, &mut form(pairs)).unwrap_err().kind.code()
        };
        let assertion = [
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", "a.b.c"),
        ];
        assert_eq!(code(&basic("a:b"), &assertion), "invalid_request");
        let mut with_secret = assertion.to_vec();
        with_secret.push(("client_secret", "s"));
        assert_eq!(code(&HeaderMap::new(), &with_secret), "invalid_request");
        assert_eq!(
            code(&HeaderMap::new(), &[("client_assertion", "a.b.c")]),
            "invalid_request"
        );
        assert_eq!(
            code(
                &HeaderMap::new(),
                &[
                    ("client_assertion_type", "urn:x"),
                    ("client_assertion", "a.b.c")
                ]
            ),
            "invalid_client"
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_challenge() {
        for raw in ["Basic !!!", "Basic", "Bearer abc", "Basic bm9jb2xvbg=="] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(raw));
            let err = extract(&h, &mut HashMap::new()).unwrap_err();
            assert_eq!(
                err.kind,
                latchkey_core::OAuthErrorKind::InvalidClient {
                    basic_attempted: true
                },
                "{raw}"
            );
        }
    }

    proptest! {
        #[test]
        fn basic_parsing_never_panics(raw in ".{0,80}") {
            let _ = parse_basic(Some(&raw));
            let _ = parse_basic(Some(&format!("Basic {}", STANDARD.encode(&raw))));
        }

        /// Whatever follows `Basic`, a refusal is `invalid_client` with the
        /// Basic challenge (RFC 6749 §5.2), never another class.
        #[test]
        fn basic_refusals_are_invalid_client_with_a_challenge(
            scheme in prop_oneof![
                Just("Basic".to_owned()),
                Just("basic".to_owned()),
                Just("Bearer".to_owned()),
                "[A-Za-z]{0,6}",
            ],
            id in "[^:]{0,12}",
            secret in ".{0,12}",
            mangle in prop_oneof![
                Just(0u8), Just(1), Just(2), Just(3),
            ],
        ) {
            let pair = format!("{id}:{secret}");
            let encoded = match mangle {
                0 => STANDARD.encode(&pair),
                1 => STANDARD.encode(&pair).trim_end_matches('=').to_owned(),
                2 => STANDARD.encode(id.as_bytes()),
                _ => format!("{}!", STANDARD.encode(&pair)),
            };
            match parse_basic(Some(&format!("{scheme} {encoded}"))) {
                Ok((got_id, _)) => {
                    prop_assert!(scheme.eq_ignore_ascii_case("basic"));
                    prop_assert!(!got_id.is_empty());
                }
                Err(e) => prop_assert_eq!(
                    e.kind,
                    latchkey_core::OAuthErrorKind::InvalidClient { basic_attempted: true }
                ),
            }
        }
    }
}
