//! Helpers shared by the end-to-end tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use latchkey_testkit::{DOMAIN, Engine, Options, TestServer};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Runs each listed `async fn(&TestServer)` against SQLite and PostgreSQL,
/// each on a fresh server with the shared domain applied.
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::support::domain_server(latchkey_testkit::Engine::Sqlite).await.unwrap();
                    super::$case(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(server) = $crate::support::domain_server(latchkey_testkit::Engine::Postgres).await else { return };
                    super::$case(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_engines;

pub async fn domain_server(engine: Engine) -> Option<TestServer> {
    let server = TestServer::start_on(engine, Options::default()).await?;
    server
        .apply(DOMAIN)
        .await
        .expect("the shared domain applies");
    Some(server)
}

/// `Basic` credentials, form-urlencoded first as RFC 6749 §2.3.1 requires.
pub fn basic(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url_encode(s);
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
    )
}

pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Answer {
    /// Reads a response: status, headers, and the body as JSON (or as a
    /// JSON string when it is not JSON).
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            json,
        }
    }

    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(
            (self.status.as_u16(), self.error()),
            (status, error),
            "{}",
            self.json
        );
        assert_eq!(self.headers["cache-control"], "no-store");
        assert_eq!(self.headers["pragma"], "no-cache");
        assert!(self.json["error_description"].is_string(), "{}", self.json);
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.json);
        assert_eq!(self.headers["cache-control"], "no-store");
        assert_eq!(self.headers["pragma"], "no-cache");
        &self.json
    }
}

/// A raw POST to the token endpoint.
pub async fn post_token(
    server: &TestServer,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = reqwest::Client::new().post(server.token_url()).body(body);
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    Answer::read(request.send().await.expect("the server answers")).await
}

pub const FORM_CT: &str = "application/x-www-form-urlencoded;charset=UTF-8";

/// A form POST to any endpoint (introspection, revocation).
pub async fn post_form(
    server: &TestServer,
    path: &str,
    authorization: Option<&str>,
    params: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", FORM_CT)
        .body(form(params));
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    Answer::read(request.send().await.expect("the server answers")).await
}

/// A token request with client_secret_basic.
pub async fn token_basic(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    params: &[(&str, &str)],
) -> Answer {
    post_token(
        server,
        Some(&basic(client_id, secret)),
        Some(FORM_CT),
        form(params),
    )
    .await
}

/// A token request with the credentials (if any) in the body.
pub async fn token_body(server: &TestServer, params: &[(&str, &str)]) -> Answer {
    post_token(server, None, Some(FORM_CT), form(params)).await
}

pub async fn alice_grant(server: &TestServer, scope: &str) -> Answer {
    token_basic(
        server,
        "hr-mobile",
        latchkey_testkit::HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
            ("scope", scope),
        ],
    )
    .await
}

/// Verifies a JWT with the server's JWKS alone, as any resource server
/// would; returns its header `typ` and claims.
pub async fn verify_jwt(server: &TestServer, token: &str, audience: &str) -> (String, Value) {
    let jwks: JwkSet = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).expect("a JWT header");
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks.find(&kid).expect("the kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[server.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = decode::<Value>(token, &key, &validation).expect("the token verifies with the JWKS");
    (header.typ.unwrap_or_default(), data.claims)
}

/// Waits until `check` holds, failing after `limit`.
pub async fn eventually(
    what: &str,
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> bool,
) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The server's published JWKS.
pub async fn jwks(server: &TestServer) -> Value {
    reqwest::get(server.url("/oauth2/v1/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An app with the reuse interval off: every rotated-out refresh token
/// presented again is a replay. Append to `DOMAIN` and apply.
pub const STRICT_APP: &str = r#"
[[apps]]
name = "HR Strict"
type = "confidential"
client_secret = "hr-strict-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
refresh_token_reuse_interval = 0
"#;
pub const STRICT_SECRET: &str = "hr-strict-secret-0123456789";

/// Alice signs in with the strict app, asking for a refresh token.
pub async fn strict_grant(server: &TestServer) -> Answer {
    token_basic(
        server,
        "hr-strict",
        STRICT_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
            (
                "scope",
                "https://hr.example.com/employees.read offline_access",
            ),
        ],
    )
    .await
}

pub async fn refresh_strict(server: &TestServer, token: &str) -> Answer {
    token_basic(
        server,
        "hr-strict",
        STRICT_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}
