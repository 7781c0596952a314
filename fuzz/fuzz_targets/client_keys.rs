//! The registered client keys (`jwks` and `certificate`), parsed when an
//! app is written and again at every assertion; whatever parses is then
//! used as an assertion would use it (select by hint, verify).
//!
//! The first byte picks the input: a JWK Set, PEM text, or raw DER that
//! the target wraps in a CERTIFICATE / PUBLIC KEY / RSA PUBLIC KEY block
//! (so the fuzzer works on the ASN.1 directly, below the PEM armour).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::Algorithm;
use latchkey_core::client_auth::{ClientKeys, KeyHint};
use latchkey_fuzz::KEY;
use libfuzzer_sys::fuzz_target;

const ALGS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::HS256,
    Algorithm::RS512,
    Algorithm::PS256,
];

fn pem(tag: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
        lines.join("\n")
    )
}

fn exercise(keys: &ClientKeys, kid: Option<&str>) {
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::ES256),
        &serde_json::json!({"sub": "x"}),
        &jsonwebtoken::EncodingKey::from_ec_pem(KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    for alg in ALGS {
        for hint in [
            KeyHint::default(),
            KeyHint {
                kid,
                ..KeyHint::default()
            },
        ] {
            if let Ok(key) = keys.select(&hint, alg) {
                assert!(key.kind.verifies(alg));
                let mut v = jsonwebtoken::Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                let _ = jsonwebtoken::decode::<serde_json::Value>(&token, &key.key, &v);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 5 {
        0 | 1 => match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        },
        2 => pem("CERTIFICATE", rest),
        3 => pem("PUBLIC KEY", rest),
        _ => pem("RSA PUBLIC KEY", rest),
    };
    let parsed = if mode % 5 == 0 {
        ClientKeys::from_jwks(&text)
    } else {
        ClientKeys::from_pem(&text)
    };
    match parsed {
        Ok(keys) => {
            assert!(!keys.keys().is_empty());
            let kid = keys.keys().iter().find_map(|k| k.kid.clone());
            exercise(&keys, kid.as_deref());
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
