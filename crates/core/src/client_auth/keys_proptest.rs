//! Property tests of the client-key parser (JWKS and PEM), which reads
//! what an administrator pastes and, at every assertion, what the store
//! holds: never a panic, private material always refused, and whatever
//! parses can be used to select and verify without a panic either.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::keys::{ClientKeys, KeyHint};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../testdata/client-keys/", $name))
    };
}

static FIXTURES: [&str; 5] = [
    fixture!("rsa.cert.pem"),
    fixture!("p256.cert.pem"),
    fixture!("ed25519.cert.pem"),
    fixture!("p384.pub.pem"),
    fixture!("rsa-other.pub.pem"),
];

const ALGS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Every way an assertion could ask for a key, and a verification with
/// each key that is picked: none of it may panic, whatever was registered.
fn exercise(keys: &ClientKeys, kid: Option<&str>) {
    let token = {
        let key = EncodingKey::from_ec_pem(fixture!("p256.key.pem").as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &json!({"sub": "x"}), &key).unwrap()
    };
    for alg in ALGS {
        for hint in [
            KeyHint::default(),
            KeyHint {
                kid,
                ..KeyHint::default()
            },
            KeyHint {
                x5t: Some("AAAA"),
                x5t_s256: keys.keys().first().and_then(|k| k.x5t_s256.as_deref()),
                ..KeyHint::default()
            },
        ] {
            if let Ok(key) = keys.select(&hint, alg) {
                assert!(
                    key.kind.verifies(alg),
                    "{alg:?} selected a {:?} key",
                    key.kind
                );
                let mut v = jsonwebtoken::Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                let _ = jsonwebtoken::decode::<Value>(&token, &key.key, &v);
            }
        }
    }
}

fn b64url_of_len(lengths: &'static [usize]) -> impl Strategy<Value = String> {
    prop::sample::select(lengths)
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
        .prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
}

fn maybe<T: Strategy>(s: T) -> impl Strategy<Value = Option<T::Value>> {
    proptest::option::weighted(0.7, s)
}

/// A JWK near the accepted shapes: right and wrong kty/crv pairs,
/// coordinates of the right length and one off, real-sized and short RSA
/// moduli, stray private members.
fn arb_jwk() -> impl Strategy<Value = Value> {
    (
        (
            maybe(prop_oneof![
                Just("RSA".to_owned()),
                Just("EC".to_owned()),
                Just("OKP".to_owned()),
                Just("oct".to_owned()),
                "[A-Za-z]{0,4}",
            ]),
            maybe(prop_oneof![
                Just("P-256".to_owned()),
                Just("P-384".to_owned()),
                Just("Ed25519".to_owned()),
                Just("X25519".to_owned()),
                ".{0,6}",
            ]),
            maybe(prop_oneof![
                b64url_of_len(&[0, 1, 8, 128, 255, 256, 257, 512]),
                ".{0,12}",
            ]),
            maybe(prop_oneof![
                Just("AQAB".to_owned()),
                b64url_of_len(&[0, 1, 3, 9]),
                ".{0,6}"
            ]),
        ),
        (
            maybe(prop_oneof![
                b64url_of_len(&[0, 31, 32, 33, 47, 48, 49]),
                ".{0,8}"
            ]),
            maybe(b64url_of_len(&[31, 32, 33, 48])),
            maybe(prop_oneof![
                Just("sig".to_owned()),
                Just("enc".to_owned()),
                ".{0,4}"
            ]),
            maybe(prop_oneof![
                Just("ES256".to_owned()),
                Just("ES384".to_owned()),
                Just("RS256".to_owned()),
                Just("PS512".to_owned()),
                Just("EdDSA".to_owned()),
                Just("HS256".to_owned()),
                ".{0,6}",
            ]),
            maybe(prop_oneof![Just("k1".to_owned()), Just("k2".to_owned())]),
            proptest::option::weighted(0.15, prop_oneof![Just("d"), Just("k")]),
            proptest::option::weighted(
                0.2,
                proptest::collection::vec(
                    prop_oneof![
                        proptest::collection::vec(any::<u8>(), 0..64)
                            .prop_map(|b| STANDARD.encode(b)),
                        ".{0,10}",
                    ],
                    0..3,
                ),
            ),
        ),
    )
        .prop_map(
            |((kty, crv, n, e), (x, y, key_use, alg, kid, private, x5c))| {
                let mut jwk = Map::new();
                for (name, value) in [
                    ("kty", kty),
                    ("crv", crv),
                    ("n", n),
                    ("e", e),
                    ("x", x),
                    ("y", y),
                    ("use", key_use),
                    ("alg", alg),
                    ("kid", kid),
                ] {
                    if let Some(value) = value {
                        jwk.insert(name.into(), json!(value));
                    }
                }
                if let Some(name) = private {
                    jwk.insert(name.into(), json!("c2VjcmV0"));
                }
                if let Some(x5c) = x5c {
                    jwk.insert("x5c".into(), json!(x5c));
                }
                Value::Object(jwk)
            },
        )
}

/// A PEM block with a real tag around a real key's DER, a few of its
/// bytes changed or its end cut off; or around random bytes.
fn arb_pem() -> impl Strategy<Value = (String, String)> {
    let der = (
        prop::sample::select(&FIXTURES[..]),
        proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(pem_text, flips, cut)| {
            let mut der = pem::parse(pem_text).unwrap().into_contents();
            for (at, xor) in flips {
                let at = at.index(der.len());
                der[at] ^= xor;
            }
            if let Some(cut) = cut {
                der.truncate(cut.index(der.len() + 1));
            }
            der
        });
    let tag = prop_oneof![
        Just("CERTIFICATE".to_owned()),
        Just("PUBLIC KEY".to_owned()),
        Just("RSA PUBLIC KEY".to_owned()),
        Just("PRIVATE KEY".to_owned()),
        Just("EC PRIVATE KEY".to_owned()),
        "[A-Z]{1,10}",
    ];
    (
        tag,
        prop_oneof![3 => der, 1 => proptest::collection::vec(any::<u8>(), 0..200)],
    )
        .prop_map(|(tag, der)| {
            let text = pem::encode(&pem::Pem::new(tag.clone(), der));
            (tag, text)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        for parsed in [ClientKeys::from_jwks(&text), ClientKeys::from_pem(&text)] {
            match parsed {
                Ok(keys) => exercise(&keys, None),
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }
    }

    #[test]
    fn near_valid_jwks_are_checked_without_panics(
        keys in proptest::collection::vec(arb_jwk(), 0..4),
        extra in proptest::collection::vec(arb_jwk(), 0..22),
        big in proptest::bool::weighted(0.05),
    ) {
        let keys = if big { [keys, extra].concat() } else { keys };
        let set = json!({ "keys": keys });
        let parsed = ClientKeys::from_jwks(&set.to_string());
        let has_private = keys.iter().any(|k| k.get("d").is_some() || k.get("k").is_some());
        let not_signing = keys
            .iter()
            .any(|k| k.get("use").is_some_and(|u| u != "sig"));
        match parsed {
            Ok(parsed) => {
                prop_assert!(!has_private, "private material was accepted: {}", set);
                prop_assert!(!not_signing, "a non-signing key was accepted: {}", set);
                prop_assert!(!keys.is_empty() && keys.len() <= 20);
                prop_assert_eq!(parsed.keys().len(), keys.len());
                for key in parsed.keys() {
                    prop_assert!(key.alg.is_none_or(|a| key.kind.verifies(a)));
                }
                exercise(&parsed, Some("k1"));
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    #[test]
    fn damaged_pem_keys_never_panic((tag, text) in arb_pem()) {
        match ClientKeys::from_pem(&text) {
            Ok(keys) => {
                prop_assert!(
                    ["CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"].contains(&tag.as_str()),
                    "a {} block was accepted", tag
                );
                prop_assert_eq!(keys.keys().len(), 1);
                exercise(&keys, None);
            }
            Err(message) => {
                if tag.ends_with("PRIVATE KEY") {
                    prop_assert!(message.contains("private key"), "{}", message);
                }
            }
        }
    }
}
