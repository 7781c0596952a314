//! The token, introspection and revocation request body: the strict form
//! parser, then the extraction of the client credentials from it.
#![no_main]

use latchkey_core::OAuthErrorKind;
use latchkey_http::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Err(e) = fuzzing::form(body) {
        assert_eq!(e.kind, OAuthErrorKind::InvalidRequest, "{e}");
    }
    let extracted = fuzzing::client_credentials(None, body).expect("no header to refuse");
    if let Err(e) = extracted {
        assert!(
            matches!(
                e.kind,
                OAuthErrorKind::InvalidRequest
                    | OAuthErrorKind::InvalidClient {
                        basic_attempted: false
                    }
            ),
            "{e}"
        );
    }
});
