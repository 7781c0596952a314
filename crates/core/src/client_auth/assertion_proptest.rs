//! Property tests of client assertions, driven through
//! `ClientAuthenticator::authenticate` (what the token endpoint calls):
//! whatever arrives, the answer is an authenticated app or `invalid_client`,
//! never a panic and never another error class. The structured strategy
//! builds really signed JWTs whose header and claims each pick a valid or
//! an invalid variant, so the oracle is simply "every part is valid".

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{ClientAssertion, ClientAuthenticator, ClientCredentials};
use crate::clock::FixedClock;
use crate::error::OAuthErrorKind;
use crate::model::{App, AppType, GrantType};
use crate::secrets::MasterKey;
use crate::store::{AppRepo, AssertionReplayRepo, NewSecret, StoreError, StoreResult};

const CLIENT_ID: &str = "reports";
const ISSUER: &str = "https://id.example.com";
const TOKEN_ENDPOINT: &str = "https://id.example.com/oauth2/v1/token";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_800_000_000;
const CERT: &str = include_str!("../../testdata/client-keys/p256.cert.pem");
const KEY: &str = include_str!("../../testdata/client-keys/p256.key.pem");

struct OneApp(App);

#[async_trait]
impl AppRepo for OneApp {
    async fn find_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        Ok((client_id == self.0.client_id).then(|| self.0.clone()))
    }
    async fn list(&self) -> StoreResult<Vec<App>> {
        Ok(vec![self.0.clone()])
    }
    async fn set_secret(&self, _: &str, _: &NewSecret, _: i64) -> StoreResult<()> {
        Err(StoreError::Other("read-only fake".into()))
    }
    async fn set_active(&self, _: &str, _: bool, _: i64) -> StoreResult<()> {
        Err(StoreError::Other("read-only fake".into()))
    }
    async fn delete(&self, _: &str) -> StoreResult<()> {
        Err(StoreError::Other("read-only fake".into()))
    }
}

#[derive(Default)]
struct Replay(Mutex<HashSet<(String, String)>>);

#[async_trait]
impl AssertionReplayRepo for Replay {
    async fn record_assertion(&self, client_id: &str, jti: &str, _: i64) -> StoreResult<bool> {
        let mut seen = self.0.lock().expect("replay cache lock");
        Ok(seen.insert((client_id.to_owned(), jti.to_owned())))
    }
    async fn purge_assertions(&self, _: i64, _: u32) -> StoreResult<u64> {
        Ok(0)
    }
}

/// A trusted app with the P-256 certificate registered and, when `hmac`,
/// its secret sealed so that `client_secret_jwt` is accepted too.
fn authenticator(hmac: bool) -> ClientAuthenticator {
    let master = MasterKey::generate();
    let app = App {
        id: "a1".into(),
        client_id: CLIENT_ID.into(),
        name: "Reports".into(),
        app_type: AppType::Trusted,
        active: true,
        secret_hash: Some(master.secret_hasher().hash(SECRET)),
        secret_sealed: hmac.then(|| master.seal_client_secret(CLIENT_ID, SECRET)),
        previous_secret: None,
        grant_types: vec![GrantType::Password],
        redirect_uris: vec![],
        scopes: vec![],
        app_roles: vec![],
        jwks: None,
        certificate: Some(CERT.into()),
        access_token_ttl: 3600,
        refresh_token_ttl: 3600,
        session_lifetime: None,
        refresh_token_reuse_interval: 30,
        created_at: 0,
        updated_at: 0,
        tokens_revoked_at: None,
    };
    ClientAuthenticator {
        apps: Arc::new(OneApp(app)),
        replay: Arc::new(Replay::default()),
        secrets: master.secret_hasher(),
        master,
        audiences: ClientAuthenticator::audiences_for(ISSUER),
        policy: super::AssertionPolicy::default(),
        clock: Arc::new(FixedClock::new(NOW)),
        budget: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// `Ok(())` when authenticated, else the error's kind.
fn authenticate(
    rt: &tokio::runtime::Runtime,
    auth: &ClientAuthenticator,
    client_id: Option<&str>,
    assertion: &str,
) -> Result<(), OAuthErrorKind> {
    let credentials = ClientCredentials::Assertion {
        client_id: client_id.map(str::to_owned),
        assertion: ClientAssertion::new(assertion),
    };
    rt.block_on(auth.authenticate(&credentials))
        .map(|app| assert_eq!(app.client_id, CLIENT_ID))
        .map_err(|e| e.kind)
}

const INVALID_CLIENT: OAuthErrorKind = OAuthErrorKind::InvalidClient {
    basic_attempted: false,
};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z#]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One JWT segment that decodes to anything from garbage to a JSON object.
fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_=+/!-]{0,40}",
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64(&b)),
        arb_json().prop_map(|v| b64(v.to_string().as_bytes())),
        arb_json().prop_map(|v| b64(json!({"alg": "ES256", "x": v}).to_string().as_bytes())),
        arb_json().prop_map(|v| b64(json!({"alg": v}).to_string().as_bytes())),
    ]
}

/// How the assertion is signed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Signer {
    /// ES256 with the registered certificate's key.
    Es256,
    /// HS256 with the client secret: valid only when the app accepts
    /// `client_secret_jwt`.
    Hs256Secret,
    /// HS256 keyed with the public certificate (the key-confusion attack).
    Hs256Certificate,
    /// ES384 announced, ES256 key: the registered key cannot verify it.
    Es384Announced,
    /// `alg: none`, empty signature.
    None,
}

/// One claim or header member: the JSON to write (`None`: leave it out)
/// and whether it satisfies the rules.
type Part = (Option<Value>, bool);

fn part(value: Value, valid: bool) -> Part {
    (Some(value), valid)
}

fn arb_iss_or_sub() -> impl Strategy<Value = Part> {
    prop_oneof![
        24 => Just(part(json!(CLIENT_ID), true)),
        1 => "[a-z]{0,8}".prop_filter("another client", |s| s != CLIENT_ID)
            .prop_map(|s| part(json!(s), false)),
        1 => arb_json().prop_filter("not a string", |v| !v.is_string())
            .prop_map(|v| part(v, false)),
        1 => Just((None, false)),
    ]
}

fn arb_aud() -> impl Strategy<Value = Part> {
    prop_oneof![
        12 => Just(part(json!(TOKEN_ENDPOINT), true)),
        6 => Just(part(json!(ISSUER), true)),
        6 => proptest::collection::vec(arb_json(), 0..3)
            .prop_map(|mut v| { v.push(json!(TOKEN_ENDPOINT)); part(Value::Array(v), true) }),
        1 => proptest::collection::vec("[a-z:/.]{0,12}", 0..3)
            .prop_map(|v| part(json!(v), false)),
        1 => ".{0,20}".prop_filter("not an audience", |s| !s.starts_with(ISSUER))
            .prop_map(|s| part(json!(s), false)),
        1 => Just((None, false)),
    ]
}

/// `exp`, valid when it is after `now - skew` and at most
/// `max_lifetime + skew` ahead; fractions are truncated.
fn arb_exp() -> impl Strategy<Value = Part> {
    prop_oneof![
        8 => (-70i64..680).prop_map(|d| part(json!(NOW + d), d > -60 && d <= 660)),
        // Either side of both limits, where an off-by-one would show.
        8 => prop::sample::select(&[-61i64, -60, -59, 659, 660, 661][..])
            .prop_map(|d| part(json!(NOW + d), d > -60 && d <= 660)),
        4 => (-70i64..680).prop_map(|d| part(json!(NOW as f64 + d as f64 + 0.5), d > -60 && d <= 660)),
        1 => Just(part(json!("soon"), false)),
        1 => Just((None, false)),
    ]
}

/// `nbf` or `iat`: optional, valid unless more than the skew ahead.
fn arb_not_future() -> impl Strategy<Value = Part> {
    prop_oneof![
        10 => Just((None, true)),
        5 => (-5000i64..80).prop_map(|d| part(json!(NOW + d), d <= 60)),
        5 => prop::sample::select(&[59i64, 60, 61][..]).prop_map(|d| part(json!(NOW + d), d <= 60)),
        1 => arb_json().prop_filter("not a number", |v| !v.is_number())
            .prop_map(|v| part(v, false)),
    ]
}

fn arb_jti() -> impl Strategy<Value = Part> {
    prop_oneof![
        // Stored in the replay cache: no control character (a NUL cannot
        // be stored), at most 256 bytes.
        20 => "\\PC{1,40}".prop_map(|s| part(json!(s), true)),
        2 => "\\PC{0,10}\\p{Cc}\\PC{0,10}".prop_map(|s| part(json!(s), false)),
        1 => Just(part(json!("é".repeat(129)), false)),
        4 => Just(part(json!("j".repeat(256)), true)),
        1 => (257usize..300).prop_map(|n| part(json!("j".repeat(n)), false)),
        1 => Just(part(json!(""), false)),
        1 => any::<i64>().prop_map(|n| part(json!(n), false)),
        1 => Just((None, false)),
    ]
}

fn arb_signer() -> impl Strategy<Value = Signer> {
    prop_oneof![
        16 => Just(Signer::Es256),
        8 => Just(Signer::Hs256Secret),
        1 => Just(Signer::Hs256Certificate),
        1 => Just(Signer::Es384Announced),
        1 => Just(Signer::None),
    ]
}

/// Header members besides `alg`. A thumbprint must match the certificate
/// for a public-key assertion; an HMAC assertion ignores it.
#[derive(Debug, Clone)]
enum HeaderExtra {
    Nothing,
    Kid(String),
    RightThumbprint,
    WrongThumbprint(String),
    /// `crit`, `jku`, `x5u` or `jwk`: always refused.
    Forbidden(&'static str, Value),
}

fn arb_header_extra() -> impl Strategy<Value = HeaderExtra> {
    prop_oneof![
        12 => Just(HeaderExtra::Nothing),
        6 => ".{0,16}".prop_map(HeaderExtra::Kid),
        4 => Just(HeaderExtra::RightThumbprint),
        1 => "[A-Za-z0-9_-]{0,43}".prop_map(HeaderExtra::WrongThumbprint),
        1 => (prop_oneof![Just("crit"), Just("jku"), Just("x5u"), Just("jwk")], arb_json())
            .prop_map(|(name, v)| HeaderExtra::Forbidden(name, v)),
    ]
}

/// Members no rule looks at (prefixed so they never name a real one).
fn arb_unrelated() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec(
        ("[a-z]{1,6}".prop_map(|k| format!("ext_{k}")), arb_json()),
        0..3,
    )
}

#[derive(Debug, Clone)]
struct Case {
    hmac_enabled: bool,
    body_client_id: Option<&'static str>,
    signer: Signer,
    header_extra: HeaderExtra,
    header_unrelated: Vec<(String, Value)>,
    iss: Part,
    sub: Part,
    aud: Part,
    exp: Part,
    nbf: Part,
    iat: Part,
    jti: Part,
    claims_unrelated: Vec<(String, Value)>,
    tamper: bool,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        (
            proptest::bool::weighted(0.8),
            prop_oneof![12 => Just(None), 8 => Just(Some(CLIENT_ID)), 1 => Just(Some("other"))],
            arb_signer(),
            arb_header_extra(),
            arb_unrelated(),
        ),
        (
            arb_iss_or_sub(),
            arb_iss_or_sub(),
            arb_aud(),
            arb_exp(),
            arb_not_future(),
            arb_not_future(),
            arb_jti(),
            arb_unrelated(),
            proptest::bool::weighted(0.05),
        ),
    )
        .prop_map(
            |(
                (hmac_enabled, body_client_id, signer, header_extra, header_unrelated),
                (iss, sub, aud, exp, nbf, iat, jti, claims_unrelated, tamper),
            )| Case {
                hmac_enabled,
                body_client_id,
                signer,
                header_extra,
                header_unrelated,
                iss,
                sub,
                aud,
                exp,
                nbf,
                iat,
                jti,
                claims_unrelated,
                tamper,
            },
        )
}

fn certificate_s256() -> String {
    let der = pem::parse(CERT).expect("the fixture is PEM");
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.contents()).as_ref())
}

impl Case {
    fn assertion(&self) -> String {
        let mut header = Map::new();
        for (k, v) in &self.header_unrelated {
            header.insert(k.clone(), v.clone());
        }
        let alg = match self.signer {
            Signer::Es256 => "ES256",
            Signer::Hs256Secret | Signer::Hs256Certificate => "HS256",
            Signer::Es384Announced => "ES384",
            Signer::None => "none",
        };
        header.insert("alg".into(), json!(alg));
        match &self.header_extra {
            HeaderExtra::Nothing => {}
            HeaderExtra::Kid(kid) => {
                header.insert("kid".into(), json!(kid));
            }
            HeaderExtra::RightThumbprint => {
                header.insert("x5t#S256".into(), json!(certificate_s256()));
            }
            HeaderExtra::WrongThumbprint(t) => {
                header.insert("x5t#S256".into(), json!(t));
            }
            HeaderExtra::Forbidden(name, v) => {
                header.insert((*name).into(), v.clone());
            }
        }
        let mut claims = Map::new();
        for (k, v) in &self.claims_unrelated {
            claims.insert(k.clone(), v.clone());
        }
        for (name, (value, _)) in [
            ("iss", &self.iss),
            ("sub", &self.sub),
            ("aud", &self.aud),
            ("exp", &self.exp),
            ("nbf", &self.nbf),
            ("iat", &self.iat),
            ("jti", &self.jti),
        ] {
            if let Some(value) = value {
                claims.insert(name.into(), value.clone());
            }
        }
        let input = format!(
            "{}.{}",
            b64(Value::Object(header).to_string().as_bytes()),
            b64(Value::Object(claims).to_string().as_bytes())
        );
        let es256 = || EncodingKey::from_ec_pem(KEY.as_bytes()).expect("the fixture key");
        let sign = |key: &EncodingKey, alg| {
            jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signing works")
        };
        let mut signature = match self.signer {
            Signer::Es256 | Signer::Es384Announced => sign(&es256(), Algorithm::ES256),
            Signer::Hs256Secret => sign(
                &EncodingKey::from_secret(SECRET.as_bytes()),
                Algorithm::HS256,
            ),
            Signer::Hs256Certificate => {
                sign(&EncodingKey::from_secret(CERT.as_bytes()), Algorithm::HS256)
            }
            Signer::None => String::new(),
        };
        if self.tamper && !signature.is_empty() {
            // The first character: the last may only carry padding bits.
            let flipped = if signature.starts_with('A') { "B" } else { "A" };
            signature.replace_range(0..1, flipped);
        }
        format!("{input}.{signature}")
    }

    /// The rules of RFC 7523 §3 and of the registration, stated apart
    /// from the code under test.
    fn should_pass(&self) -> bool {
        let public_key = matches!(self.signer, Signer::Es256 | Signer::Es384Announced);
        let signature_ok = !self.tamper
            && match self.signer {
                Signer::Es256 => true,
                Signer::Hs256Secret => self.hmac_enabled,
                Signer::Hs256Certificate | Signer::Es384Announced | Signer::None => false,
            };
        let header_ok = match &self.header_extra {
            HeaderExtra::Nothing | HeaderExtra::Kid(_) | HeaderExtra::RightThumbprint => true,
            HeaderExtra::WrongThumbprint(t) => !public_key || *t == certificate_s256(),
            HeaderExtra::Forbidden(..) => false,
        };
        let client_ok = self.body_client_id.is_none_or(|id| id == CLIENT_ID);
        signature_ok
            && header_ok
            && client_ok
            && [
                &self.iss, &self.sub, &self.aud, &self.exp, &self.nbf, &self.iat, &self.jti,
            ]
            .iter()
            .all(|(_, valid)| *valid)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_is_invalid_client(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        text in ".{0,200}",
        with_id in any::<bool>(),
    ) {
        let rt = runtime();
        let auth = authenticator(true);
        let id = with_id.then_some(CLIENT_ID);
        for input in [String::from_utf8_lossy(&bytes).into_owned(), text] {
            prop_assert_eq!(authenticate(&rt, &auth, id, &input), Err(INVALID_CLIENT));
        }
    }

    #[test]
    fn jwt_shaped_noise_is_invalid_client(
        segments in proptest::collection::vec(arb_segment(), 1..5),
        with_id in any::<bool>(),
    ) {
        let rt = runtime();
        let auth = authenticator(true);
        let input = segments.join(".");
        prop_assert_eq!(
            authenticate(&rt, &auth, with_id.then_some(CLIENT_ID), &input),
            Err(INVALID_CLIENT)
        );
    }
}

/// Runs the structured cases by hand to count them: a strategy that
/// (after a change) produced only failures would test only the refusals.
#[test]
fn signed_assertions_pass_exactly_when_every_rule_holds() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = runtime();
    let (passed, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    TestRunner::new(Config::with_cases(384))
        .run(&arb_case(), |case| {
            let auth = authenticator(case.hmac_enabled);
            let assertion = case.assertion();
            let first = authenticate(&rt, &auth, case.body_client_id, &assertion);
            if case.should_pass() {
                prop_assert_eq!(first, Ok(()), "{:?}", case);
                // The same assertion again is a replay.
                prop_assert_eq!(
                    authenticate(&rt, &auth, case.body_client_id, &assertion),
                    Err(INVALID_CLIENT)
                );
                passed.set(passed.get() + 1);
            } else {
                prop_assert_eq!(first, Err(INVALID_CLIENT), "{:?}", case);
                refused.set(refused.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Shrinking reruns cases, so these counts are at least the case count.
    assert!(
        passed.get() >= 40,
        "only {} valid assertions were generated",
        passed.get()
    );
    assert!(
        refused.get() >= 40,
        "only {} invalid assertions were generated",
        refused.get()
    );
}
