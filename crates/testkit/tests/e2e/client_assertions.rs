//! JWT client assertions (RFC 7523 §2.2, §3) through the real token
//! endpoint: `private_key_jwt` with a JWKS or a certificate, and
//! `client_secret_jwt`. Assertions are minted with jwt-compact, a JOSE
//! implementation the server does not use, so a passing test shows two
//! implementations agree, not one agreeing with itself.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::{AlgorithmExt, Claims, Header};
use latchkey_testkit::{ALICE_PASSWORD, Engine, HR_SECRET, TestServer};
use serde_json::{Value, json};

use crate::support::*;

macro_rules! key_file {
    ($name:literal) => {
        include_str!(concat!("../../../core/testdata/client-keys/", $name))
    };
}

const HMAC_SECRET: &str = "hmac-app-secret-0123456789abcdef";

/// Apps that authenticate with assertions, beside the shared domain.
fn assertion_domain() -> String {
    let jwk = |pem: &str, alg: jsonwebtoken::Algorithm, kid: &str| {
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => {
                jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            }
            jsonwebtoken::Algorithm::EdDSA => {
                jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes())
            }
            _ => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut jwk =
            serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap())
                .unwrap();
        jwk["kid"] = kid.into();
        // The JWK's alg would pin one algorithm; RSA keys here serve six.
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    };
    let jwks = json!({"keys": [
        jwk(key_file!("rsa.key.pem"), jsonwebtoken::Algorithm::RS256, "rsa-1"),
        jwk(key_file!("p256.key.pem"), jsonwebtoken::Algorithm::ES256, "ec-1"),
        jwk(key_file!("p384.key.pem"), jsonwebtoken::Algorithm::ES384, "ec384-1"),
        jwk(key_file!("ed25519.key.pem"), jsonwebtoken::Algorithm::EdDSA, "ed-1"),
    ]});
    format!(
        r#"
[[apps]]
name = "Signer"
type = "trusted"
grant_types = ["password", "refresh_token", "client_credentials"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
jwks = '{jwks}'

[[apps]]
name = "Cert App"
type = "trusted"
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
certificate = """
{cert}"""

[[apps]]
name = "HMAC App"
type = "confidential"
client_secret = "{HMAC_SECRET}"
client_secret_jwt = true
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
"#,
        cert = key_file!("rsa.cert.pem"),
    )
}

async fn assertion_server(engine: Engine) -> Option<TestServer> {
    let server = domain_server(engine).await?;
    server
        .apply(&assertion_domain())
        .await
        .expect("the assertion domain applies");
    Some(server)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims RFC 7523 §3 asks for, valid for five minutes.
fn claims_for(server: &TestServer, client_id: &str) -> HashMap<String, Value> {
    HashMap::from([
        ("iss".to_owned(), json!(client_id)),
        ("sub".to_owned(), json!(client_id)),
        ("aud".to_owned(), json!(server.token_url())),
        ("iat".to_owned(), json!(now())),
        ("exp".to_owned(), json!(now() + 300)),
        ("jti".to_owned(), json!(uuid::Uuid::new_v4().to_string())),
    ])
}

fn rsa_key(pem: &str) -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

/// Signs `claims` with jwt-compact. `alg` picks the algorithm and the key
/// (the registered test key of that family, or the HMAC app's secret).
fn mint(alg: &str, header: Header, claims: &HashMap<String, Value>) -> String {
    let claims = Claims::new(claims.clone());
    let rsa = |alg: Rsa| alg.token(&header, &claims, &rsa_key(key_file!("rsa.key.pem")));
    match alg {
        "RS256" => rsa(Rsa::rs256()),
        "RS384" => rsa(Rsa::rs384()),
        "RS512" => rsa(Rsa::rs512()),
        "PS256" => rsa(Rsa::ps256()),
        "PS384" => rsa(Rsa::ps384()),
        "PS512" => rsa(Rsa::ps512()),
        "ES256" => {
            use p256::pkcs8::DecodePrivateKey;
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(key_file!("p256.key.pem")).unwrap();
            Es256.token(&header, &claims, &key)
        }
        "EdDSA" => {
            let key = ed25519_compact::SecretKey::from_pem(key_file!("ed25519.key.pem")).unwrap();
            Ed25519.token(&header, &claims, &key)
        }
        "HS256" => Hs256.token(&header, &claims, &Hs256Key::new(HMAC_SECRET)),
        "HS384" => Hs384.token(&header, &claims, &Hs384Key::new(HMAC_SECRET)),
        "HS512" => Hs512.token(&header, &claims, &Hs512Key::new(HMAC_SECRET)),
        other => panic!("no test signer for {other}"),
    }
    .unwrap()
}

fn with_kid(kid: &str) -> Header {
    Header::empty().with_key_id(kid)
}

/// A password grant authenticated with an assertion, as Oracle's
/// documentation sends it: no Authorization header.
async fn grant_with(server: &TestServer, client_id: Option<&str>, assertion: &str) -> Answer {
    let mut params = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        ("scope", latchkey_testkit::READ),
        (
            "client_assertion_type",
            latchkey_core::client_auth::JWT_BEARER,
        ),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        params.push(("client_id", id));
    }
    token_body(server, &params).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_minted_by_another_jose_library_authenticate_every_algorithm() {
    let server = assertion_server(Engine::Sqlite).await.unwrap();
    let families = [
        ("RS256", Some("rsa-1")),
        ("RS384", Some("rsa-1")),
        ("RS512", Some("rsa-1")),
        ("PS256", Some("rsa-1")),
        ("PS384", Some("rsa-1")),
        ("PS512", Some("rsa-1")),
        ("ES256", Some("ec-1")),
        ("EdDSA", Some("ed-1")),
        // Without kid: the one registered key that can verify the alg.
        ("ES256", None),
    ];
    for (alg, kid) in families {
        let header = kid.map(with_kid).unwrap_or_else(Header::empty);
        let assertion = mint(alg, header, &claims_for(&server, "signer"));
        let answer = grant_with(&server, Some("signer"), &assertion).await;
        let body = answer.assert_ok();
        let (_, claims) = verify_jwt(
            &server,
            body["access_token"].as_str().unwrap(),
            "https://hr.example.com/",
        )
        .await;
        assert_eq!(claims["client_id"], "signer", "{alg}");
    }
    // ES384: jwt-compact has no P-384, so this one comes from the
    // server's own library; the key and the lookup are still exercised.
    let es384 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("ec384-1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384)
        },
        &claims_for(&server, "signer"),
        &jsonwebtoken::EncodingKey::from_ec_pem(key_file!("p384.key.pem").as_bytes()).unwrap(),
    )
    .unwrap();
    grant_with(&server, None, &es384).await.assert_ok();

    // client_secret_jwt, every HMAC size; client_id may be left out.
    for alg in ["HS256", "HS384", "HS512"] {
        let assertion = mint(alg, Header::empty(), &claims_for(&server, "hmac-app"));
        grant_with(&server, None, &assertion).await.assert_ok();
    }

    // A certificate: picked as the only key, or by its SHA-256 thumbprint.
    let der = pem_contents(key_file!("rsa.cert.pem"));
    let thumbprint = sha256(&der);
    for header in [
        Header::empty(),
        Header::empty().with_certificate_thumbprint(thumbprint),
        Header::empty().with_key_id("an alias the server ignores"),
    ] {
        let assertion = mint("PS256", header, &claims_for(&server, "cert-app"));
        grant_with(&server, Some("cert-app"), &assertion)
            .await
            .assert_ok();
    }

    // The same assertion methods work at introspection, whose own URL is
    // an accepted audience there.
    let token = alice_grant(&server, latchkey_testkit::READ)
        .await
        .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut claims = claims_for(&server, "signer");
    claims.insert("aud".into(), json!(server.url("/oauth2/v1/introspect")));
    let assertion = mint("ES256", with_kid("ec-1"), &claims);
    let answer = Answer::read(
        reqwest::Client::new()
            .post(server.url("/oauth2/v1/introspect"))
            .header("content-type", FORM_CT)
            .body(form(&[
                ("token", &token),
                (
                    "client_assertion_type",
                    latchkey_core::client_auth::JWT_BEARER,
                ),
                ("client_assertion", &assertion),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["active"], true);
    server.stop().await;
}

fn pem_contents(pem: &str) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap()
}

/// An unsigned JWT with the given header (for `alg: none` and friends).
fn forged(header: Value, claims: &HashMap<String, Value>) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_assertion_is_invalid_client_with_its_reason() {
    let server = assertion_server(Engine::Sqlite).await.unwrap();
    let good = || claims_for(&server, "signer");
    let changed = |name: &str, value: Value| {
        let mut c = good();
        c.insert(name.into(), value);
        c
    };
    let without = |name: &str| {
        let mut c = good();
        c.remove(name);
        c
    };
    // Key confusion: an HMAC keyed with the client's *public* key, the
    // classic attack on servers that let the token choose the algorithm.
    let public_pem = key_file!("rsa.cert.pem");
    let confused = Hs256
        .token(
            &with_kid("rsa-1"),
            &Claims::new(good()),
            &Hs256Key::new(public_pem),
        )
        .unwrap();
    let wrong_key = Rsa::rs256()
        .token(
            &with_kid("rsa-1"),
            &Claims::new(good()),
            &rsa_key(key_file!("rsa-other.key.pem")),
        )
        .unwrap();
    let mut tampered = mint("ES256", with_kid("ec-1"), &good());
    // Flip the signature's first character (its last may be padding bits).
    let at = tampered.rfind('.').unwrap() + 1;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let kiosk = claims_for(&server, "kiosk");
    let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
        (
            "alg none",
            None,
            forged(json!({"alg": "none"}), &good()),
            "alg none",
        ),
        (
            "key confusion",
            None,
            confused,
            "client_secret_jwt (HS256) is not enabled",
        ),
        (
            "unregistered kid",
            None,
            mint("ES256", with_kid("not-registered"), &good()),
            "no registered key has kid",
        ),
        ("wrong key", None, wrong_key, "does not verify"),
        ("bad signature", None, tampered, "does not verify"),
        (
            "expired",
            None,
            mint(
                "ES256",
                with_kid("ec-1"),
                &changed("exp", json!(now() - 120)),
            ),
            "expired",
        ),
        (
            "too far ahead",
            None,
            mint(
                "ES256",
                with_kid("ec-1"),
                &changed("exp", json!(now() + 3600)),
            ),
            "too far ahead",
        ),
        (
            "wrong aud",
            None,
            mint(
                "ES256",
                with_kid("ec-1"),
                &changed("aud", json!("https://elsewhere.example.com")),
            ),
            "aud must contain",
        ),
        (
            "no jti",
            None,
            mint("ES256", with_kid("ec-1"), &without("jti")),
            "no jti",
        ),
        (
            "no exp",
            None,
            mint("ES256", with_kid("ec-1"), &without("exp")),
            "no exp",
        ),
        (
            "iss differs from sub",
            None,
            mint(
                "ES256",
                with_kid("ec-1"),
                &changed("iss", json!("someone-else")),
            ),
            "iss and sub",
        ),
        (
            "body client_id differs from sub",
            Some("hmac-app"),
            mint("HS256", Header::empty(), &claims_for(&server, "signer")),
            "iss and sub",
        ),
        (
            "a public app",
            None,
            mint("ES256", with_kid("ec-1"), &kiosk),
            // As for an unknown client: the answer does not say it exists.
            "client authentication failed",
        ),
        (
            "a client without keys",
            None,
            mint("ES256", with_kid("ec-1"), &claims_for(&server, "hr-mobile")),
            "needs public keys registered",
        ),
        (
            "an unknown client",
            None,
            mint("ES256", with_kid("ec-1"), &claims_for(&server, "nobody")),
            "client authentication failed",
        ),
        ("garbage", None, "not-a-jwt".to_owned(), "not a signed JWT"),
        ("garbage parts", None, "a.b.c".to_owned(), "not base64url"),
        ("oversized", None, "e".repeat(9000), "too large"),
    ];
    for (case, client_id, assertion, reason) in cases {
        let answer = grant_with(&server, client_id, &assertion).await;
        answer.assert_error(401, "invalid_client");
        let description = answer.json["error_description"].as_str().unwrap();
        assert!(description.contains(reason), "{case}: {description}");
        assert!(
            !answer.headers.contains_key("www-authenticate"),
            "{case}: no Basic challenge without Basic"
        );
        // Nothing secret leaks into the answer.
        assert!(!description.contains(HMAC_SECRET), "{case}");
    }

    // Two methods at once is a malformed request (RFC 6749 §5.2).
    let assertion = mint("ES256", with_kid("ec-1"), &good());
    let answer = post_token(
        &server,
        Some(&basic("hr-mobile", HR_SECRET)),
        Some(FORM_CT),
        form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            (
                "client_assertion_type",
                latchkey_core::client_auth::JWT_BEARER,
            ),
            ("client_assertion", &assertion),
        ]),
    )
    .await;
    answer.assert_error(400, "invalid_request");
    server.stop().await;
}

on_both_engines!(an_assertion_is_accepted_once_by_any_node);

async fn an_assertion_is_accepted_once_by_any_node(server: &TestServer) {
    server.apply(&assertion_domain()).await.unwrap();
    let sibling = server.start_sibling().await;
    let assertion = mint("EdDSA", with_kid("ed-1"), &claims_for(server, "signer"));
    grant_with(server, None, &assertion).await.assert_ok();
    for node in [server, &sibling] {
        let answer = grant_with(node, None, &assertion).await;
        answer.assert_error(401, "invalid_client");
        assert!(
            answer.json["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{}",
            answer.json
        );
    }
    // The same jti in a new assertion is a replay too.
    let mut claims = claims_for(server, "signer");
    let first = mint("ES256", with_kid("ec-1"), &claims);
    grant_with(&sibling, None, &first).await.assert_ok();
    claims.insert("exp".into(), json!(now() + 200));
    let again = mint("ES256", with_kid("ec-1"), &claims);
    grant_with(server, None, &again)
        .await
        .assert_error(401, "invalid_client");
    sibling.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_working_for_its_grace_then_stops() {
    let server = assertion_server(Engine::Sqlite).await.unwrap();
    let ctx = server.context().await;
    let apps = &ctx.store.repos.apps;
    let hmac_app = apps.find_by_client_id("hmac-app").await.unwrap().unwrap();
    let (new_secret, _) =
        latchkey_core::client_auth::rotate_secret(apps.as_ref(), &ctx.master, &hmac_app, 4, now())
            .await
            .unwrap();
    assert_eq!(new_secret.len(), 43, "256 bits, base64url");
    let grant = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
    ];
    // Both secrets work while the grace lasts, over Basic and as the
    // HMAC key of client_secret_jwt (the new one sealed for it too).
    eventually(
        "the new secret working",
        std::time::Duration::from_secs(10),
        async || {
            token_basic(&server, "hmac-app", &new_secret, &grant)
                .await
                .status
                == 200
        },
    )
    .await;
    token_basic(&server, "hmac-app", HMAC_SECRET, &grant)
        .await
        .assert_ok();
    let new_key_assertion = Hs256
        .token(
            &Header::empty(),
            &Claims::new(claims_for(&server, "hmac-app")),
            &Hs256Key::new(&new_secret),
        )
        .unwrap();
    grant_with(&server, None, &new_key_assertion)
        .await
        .assert_ok();
    let old_key_assertion = mint("HS256", Header::empty(), &claims_for(&server, "hmac-app"));
    grant_with(&server, None, &old_key_assertion)
        .await
        .assert_ok();
    // Then the old one stops.
    eventually(
        "the old secret being refused",
        std::time::Duration::from_secs(15),
        async || {
            token_basic(&server, "hmac-app", HMAC_SECRET, &grant)
                .await
                .status
                == 401
        },
    )
    .await;
    token_basic(&server, "hmac-app", &new_secret, &grant)
        .await
        .assert_ok();
    ctx.store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_app_is_refused_and_its_sessions_end() {
    let server = assertion_server(Engine::Sqlite).await.unwrap();
    let assertion = mint("ES256", with_kid("ec-1"), &{
        let mut c = claims_for(&server, "signer");
        c.insert("jti".into(), json!("first"));
        c
    });
    let mut params = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        ("scope", "offline_access"),
        (
            "client_assertion_type",
            latchkey_core::client_auth::JWT_BEARER,
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let tokens = token_body(&server, &params).await;
    let refresh = tokens.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctx = server.context().await;
    let app = ctx
        .store
        .repos
        .apps
        .find_by_client_id("signer")
        .await
        .unwrap()
        .unwrap();
    ctx.store
        .repos
        .apps
        .set_active(&app.id, false, now())
        .await
        .unwrap();
    eventually(
        "the deactivated app being refused",
        std::time::Duration::from_secs(10),
        async || {
            let fresh = mint("ES256", with_kid("ec-1"), &claims_for(&server, "signer"));
            grant_with(&server, None, &fresh).await.status == 401
        },
    )
    .await;
    ctx.store
        .repos
        .apps
        .set_active(&app.id, true, now())
        .await
        .unwrap();
    // Active again, but the session deactivation ended stays ended.
    let fresh = mint("ES256", with_kid("ec-1"), &claims_for(&server, "signer"));
    eventually(
        "the app working again",
        std::time::Duration::from_secs(10),
        async || grant_with(&server, None, &fresh).await.status == 200,
    )
    .await;
    let fresh = mint("ES256", with_kid("ec-1"), &claims_for(&server, "signer"));
    params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        (
            "client_assertion_type",
            latchkey_core::client_auth::JWT_BEARER,
        ),
        ("client_assertion", fresh.as_str()),
    ];
    token_body(&server, &params)
        .await
        .assert_error(400, "invalid_grant");
    ctx.store.close().await;
    server.stop().await;
}
