//! `private_key_jwt` / `client_secret_jwt` through
//! `ClientAuthenticator::authenticate`, as the token endpoint calls it.
//!
//! The first byte picks the mode. Raw: the rest is the assertion (random
//! signatures never verify, so this covers splitting, decoding and header
//! checks). Signed: the rest is `header JSON \n claims JSON`, which the
//! target encodes and signs (HS256 with the client secret, or ES256 with
//! the registered key), so the fuzzer also reaches the checks that run
//! only after a signature verifies (claims, key selection, replay).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::OAuthErrorKind;
use latchkey_core::client_auth::{ClientAssertion, ClientCredentials};
use latchkey_fuzz::{CLIENT_ID, KEY, SECRET, authenticator, run};
use libfuzzer_sys::fuzz_target;

fn signed(data: &[u8], es256: bool) -> Option<String> {
    let at = data.iter().position(|&b| b == b'\n')?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&data[..at]),
        URL_SAFE_NO_PAD.encode(&data[at + 1..])
    );
    let (key, alg) = if es256 {
        (
            jsonwebtoken::EncodingKey::from_ec_pem(KEY.as_bytes()).ok()?,
            jsonwebtoken::Algorithm::ES256,
        )
    } else {
        (
            jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
            jsonwebtoken::Algorithm::HS256,
        )
    };
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg).ok()?;
    Some(format!("{input}.{signature}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let assertion = match mode % 4 {
        0 | 1 => match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        },
        2 => match signed(rest, false) {
            Some(a) => a,
            None => return,
        },
        _ => match signed(rest, true) {
            Some(a) => a,
            None => return,
        },
    };
    // The client_id in the body is optional (RFC 7521 §4.2).
    let client_id = (mode & 0x80 != 0).then(|| CLIENT_ID.to_owned());
    let auth = authenticator();
    let credentials = ClientCredentials::Assertion {
        client_id,
        assertion: ClientAssertion::new(assertion),
    };
    match run(auth.authenticate(&credentials)) {
        Ok(app) => {
            assert_eq!(app.client_id, CLIENT_ID);
            // A second use of the same assertion is a replay.
            let again = run(auth.authenticate(&credentials));
            assert!(again.is_err(), "a replayed assertion was accepted");
        }
        Err(e) => assert_eq!(
            e.kind,
            OAuthErrorKind::InvalidClient {
                basic_attempted: false
            },
            "{e}"
        ),
    }
});
