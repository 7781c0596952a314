//! The `Authorization` header (HTTP Basic, RFC 6749 §2.3.1), alone and
//! together with a form body. Input: the header value, then optionally a
//! newline and the body.
#![no_main]

use latchkey_core::OAuthErrorKind;
use latchkey_http::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // A value hyper would refuse never reaches the route.
    let Some(extracted) = fuzzing::client_credentials(Some(header), body) else {
        return;
    };
    match extracted {
        Err(e) if body.is_empty() => assert_eq!(
            e.kind,
            OAuthErrorKind::InvalidClient {
                basic_attempted: true
            },
            "{e}"
        ),
        Err(e) => assert!(
            matches!(
                e.kind,
                OAuthErrorKind::InvalidRequest | OAuthErrorKind::InvalidClient { .. }
            ),
            "{e}"
        ),
        Ok(credentials) => assert_eq!(credentials.method(), "client_secret_basic"),
    }
});
