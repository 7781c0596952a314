//! Input the database cannot hold (a NUL, which PostgreSQL text refuses;
//! names whose bytes pass an index entry's limit) is refused before the
//! database, with the 4xx of its door, alike on both engines.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_testkit::{ALICE_PASSWORD, HR_SECRET, TestServer};
use serde_json::{Value, json};

use crate::support::*;

on_both_engines!(
    a_nul_in_an_assertions_subject_is_invalid_client_at_every_endpoint,
    a_control_character_in_an_admin_path_is_invalid_value,
    a_nul_in_a_scim_filter_is_invalid_filter,
    names_are_limited_by_their_bytes,
);

const MY_SCOPES: &str = "urn:opc:idm:__myscopes__";

/// An unsigned assertion (`alg: none`) naming `sub` as the client.
fn unsigned_assertion(server: &TestServer, sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": sub, "sub": sub, "aud": server.token_url(),
        "exp": now + 60, "iat": now, "jti": "j-1",
    });
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

async fn post_form(server: &TestServer, path: &str, params: &[(&str, &str)]) -> Answer {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", FORM_CT)
        .body(form(params))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

async fn a_nul_in_an_assertions_subject_is_invalid_client_at_every_endpoint(server: &TestServer) {
    let assertion = unsigned_assertion(server, "hr-mobile\u{0}x");
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    for (path, extra) in [
        ("/oauth2/v1/token", ("grant_type", "client_credentials")),
        ("/oauth2/v1/introspect", ("token", "anything")),
        ("/oauth2/v1/revoke", ("token", "anything")),
    ] {
        let answer = post_form(
            server,
            path,
            &[
                extra,
                ("client_assertion_type", jwt_bearer),
                ("client_assertion", &assertion),
            ],
        )
        .await;
        assert_eq!(
            (answer.status.as_u16(), answer.error()),
            (401, "invalid_client"),
            "{path}: {}",
            answer.json
        );
    }
}

async fn admin_token(server: &TestServer) -> String {
    token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("scope", MY_SCOPES),
        ],
    )
    .await
    .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn admin_call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    Answer::read(request.send().await.unwrap()).await
}

#[track_caller]
fn assert_scim(answer: &Answer, status: u16, scim_type: &str) {
    assert_eq!(
        (
            answer.status.as_u16(),
            answer.json["scimType"].as_str().unwrap_or("")
        ),
        (status, scim_type),
        "{}",
        answer.json
    );
}

async fn a_control_character_in_an_admin_path_is_invalid_value(server: &TestServer) {
    let token = admin_token(server).await;
    for path in [
        "/admin/v1/Users/a%00b",
        "/admin/v1/Users/%00",
        "/admin/v1/Groups/a%00b",
        "/admin/v1/Users/a%0Ab",
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let answer = admin_call(server, method.clone(), path, &token, None).await;
            assert_scim(&answer, 400, "invalidValue");
        }
    }
    // A member id in a body is checked by the group's validator.
    let answer = admin_call(
        server,
        reqwest::Method::POST,
        "/admin/v1/Groups",
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "night shift",
            "members": [{"value": "a\u{0}b"}],
        })),
    )
    .await;
    assert_scim(&answer, 400, "invalidValue");
}

async fn a_nul_in_a_scim_filter_is_invalid_filter(server: &TestServer) {
    let token = admin_token(server).await;
    for path in [
        // Raw in the query string, and as a JSON escape in the literal.
        "/admin/v1/Users?filter=userName%20eq%20%22a%00b%22",
        "/admin/v1/Users?filter=userName%20eq%20%22a%5Cu0000b%22",
        "/admin/v1/Users?count=5&filter=emails.value%20co%20%22%00%22",
        "/admin/v1/Groups?filter=displayName%20eq%20%22%00%22",
        "/admin/v1/Groups?filter=displayName%20sw%20%22x%5Cu0000%22",
    ] {
        let answer = admin_call(server, reqwest::Method::GET, path, &token, None).await;
        assert_scim(&answer, 400, "invalidFilter");
    }
    // A PATCH path's filter goes through the same parser.
    let group = admin_call(
        server,
        reqwest::Method::POST,
        "/admin/v1/Groups",
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "day shift",
        })),
    )
    .await;
    assert_eq!(group.status.as_u16(), 201, "{}", group.json);
    let id = group.json["id"].as_str().unwrap();
    let answer = admin_call(
        server,
        reqwest::Method::PATCH,
        &format!("/admin/v1/Groups/{id}"),
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members[value eq \"a\u{0}\"]"}],
        })),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.json);
}

async fn names_are_limited_by_their_bytes(server: &TestServer) {
    let token = admin_token(server).await;
    let user = |given: String| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("wide{}", given.len()),
            "name": {"givenName": given, "familyName": "𝒜".repeat(256)},
        })
    };
    // 1,024 four-byte characters: 4,096 bytes, past an index entry.
    let answer = admin_call(
        server,
        reqwest::Method::POST,
        "/admin/v1/Users",
        &token,
        Some(user("𝒜".repeat(1024))),
    )
    .await;
    assert_scim(&answer, 400, "invalidValue");
    // 256 of them (1,024 bytes) are within the limit, on both engines.
    let answer = admin_call(
        server,
        reqwest::Method::POST,
        "/admin/v1/Users",
        &token,
        Some(user("𝒜".repeat(256))),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.json);
}
