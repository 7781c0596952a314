//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests:
//! repeated parameters and invalid encodings are errors (RFC 6749 §3.1),
//! never silently resolved.

use std::collections::HashMap;

use latchkey_core::OAuthError;
use percent_encoding::percent_decode;

/// Checks the media type is form-urlencoded (parameters such as
/// `charset=UTF-8` allowed).
pub(crate) fn check_content_type(value: Option<&str>) -> Result<(), OAuthError> {
    let essence = value
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        )),
    }
}

/// Decodes one form-urlencoded component: `+` is a space, `%XX` a byte,
/// and the result must be UTF-8.
pub(crate) fn decode_component(raw: &[u8]) -> Option<String> {
    let plus_decoded: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus_decoded).collect();
    // NUL is never meaningful in OAuth parameters, and PostgreSQL text
    // cannot hold it: refuse it here rather than fail in the database.
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

pub(crate) fn parse(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let bad =
            || OAuthError::invalid_request("the request body is not valid UTF-8 form encoding");
        let name = decode_component(name).ok_or_else(bad)?;
        let value = decode_component(value).ok_or_else(bad)?;
        if params.contains_key(&name) {
            let shown: String = name.chars().take(64).collect();
            return Err(OAuthError::invalid_request(format!(
                "the {shown} parameter is repeated"
            )));
        }
        params.insert(name, value);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_plus_and_percent() {
        let p = parse(b"grant_type=password&username=a+b&password=%C3%A9%26x&scope=").unwrap();
        assert_eq!(p["username"], "a b");
        assert_eq!(p["password"], "é&x");
        assert_eq!(p["scope"], "");
    }

    #[test]
    fn repeated_parameters_are_rejected() {
        let err = parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(err.kind.code(), "invalid_request");
        assert!(err.description.contains("scope"));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert!(parse(b"username=%FF").is_err());
        assert!(parse(b"username=\xff").is_err());
        assert!(parse(b"username=a%00b").is_err(), "NUL is refused");
    }

    #[test]
    fn content_type_rules() {
        assert!(
            check_content_type(Some("application/x-www-form-urlencoded;charset=UTF-8")).is_ok()
        );
        assert!(check_content_type(Some("Application/X-WWW-Form-Urlencoded")).is_ok());
        assert!(check_content_type(Some("application/json")).is_err());
        assert!(check_content_type(None).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_errors_are_invalid_request(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse(&body) {
                prop_assert_eq!(e.kind.code(), "invalid_request");
            }
        }
    }
}
