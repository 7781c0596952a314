//! Client authentication at the token endpoint (RFC 6749 §2.3).

use latchkey_testkit::{ALICE_PASSWORD, HR_SECRET, REPORTS_ID, REPORTS_SECRET};

use crate::support::*;

fn grant() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_method_authenticates() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    // client_secret_basic with ':' in the client_id and spaces and
    // symbols in the secret: both form-urlencoded inside Basic.
    token_basic(&server, REPORTS_ID, REPORTS_SECRET, &grant())
        .await
        .assert_ok();
    // client_secret_post.
    let mut params = grant();
    params.extend([("client_id", REPORTS_ID), ("client_secret", REPORTS_SECRET)]);
    token_body(&server, &params).await.assert_ok();
    // Basic plus a matching client_id in the body is fine.
    let mut params = grant();
    params.push(("client_id", "hr-mobile"));
    token_basic(&server, "hr-mobile", HR_SECRET, &params)
        .await
        .assert_ok();
    // none, for a public app.
    let mut params = grant();
    params.push(("client_id", "kiosk"));
    token_body(&server, &params).await.assert_ok();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_invalid_client_with_a_basic_challenge_when_basic_was_tried() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    for (id, secret) in [
        ("hr-mobile", "wrong secret"),
        ("no-such-app", "x"),
        ("kiosk", "a public app has no secret"),
    ] {
        let answer = token_basic(&server, id, secret, &grant()).await;
        answer.assert_error(401, "invalid_client");
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm=\""), "{challenge}");
    }
    // Over the body: 401 without a Basic challenge.
    let mut params = grant();
    params.extend([("client_id", "hr-mobile"), ("client_secret", "wrong")]);
    let answer = token_body(&server, &params).await;
    answer.assert_error(401, "invalid_client");
    assert!(!answer.headers.contains_key("www-authenticate"));
    // A confidential app that presents no secret.
    let mut params = grant();
    params.push(("client_id", "hr-mobile"));
    token_body(&server, &params)
        .await
        .assert_error(401, "invalid_client");
    // No client at all.
    token_body(&server, &grant())
        .await
        .assert_error(401, "invalid_client");
    // A public app presenting a secret in the body.
    let mut params = grant();
    params.extend([("client_id", "kiosk"), ("client_secret", "anything")]);
    token_body(&server, &params)
        .await
        .assert_error(401, "invalid_client");
    // Basic naming one client, body naming another.
    let mut params = grant();
    params.push(("client_id", "kiosk"));
    token_basic(&server, "hr-mobile", HR_SECRET, &params)
        .await
        .assert_error(401, "invalid_client");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_method_is_invalid_request() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let mut params = grant();
    params.push(("client_secret", HR_SECRET));
    token_basic(&server, "hr-mobile", HR_SECRET, &params)
        .await
        .assert_error(400, "invalid_request");
    let mut params = grant();
    params.extend([
        ("client_id", "hr-mobile"),
        ("client_secret", HR_SECRET),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", "x.y.z"),
    ]);
    token_body(&server, &params)
        .await
        .assert_error(400, "invalid_request");
    server.stop().await;
}

/// Whether a client_id exists does not show in the answer: an unknown one,
/// a known one with a wrong secret, a public one presenting a secret and a
/// confidential one presenting none all get the same body (per method:
/// Basic answers carry the Basic challenge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_client_id_gets_the_answer_of_a_known_one() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let shape = |answer: &Answer| {
        (
            answer.status.as_u16(),
            answer.json.clone(),
            answer
                .headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned()),
        )
    };
    let mut basic_answers = Vec::new();
    for (id, secret) in [
        ("no-such-app", "x"),
        ("hr-mobile", "wrong secret"),
        ("kiosk", "a public app has no secret"),
    ] {
        basic_answers.push(shape(&token_basic(&server, id, secret, &grant()).await));
    }
    assert_eq!(basic_answers[0].0, 401);
    assert!(
        basic_answers.iter().all(|a| *a == basic_answers[0]),
        "{basic_answers:#?}"
    );

    let mut body_answers = Vec::new();
    for (id, secret) in [
        ("no-such-app", Some("x")),
        ("hr-mobile", Some("wrong")),
        ("kiosk", Some("anything")),
        // client_id alone (`none`): unknown, and confidential.
        ("no-such-app", None),
        ("hr-mobile", None),
        ("reports:app", None),
    ] {
        let mut params = grant();
        params.push(("client_id", id));
        if let Some(secret) = secret {
            params.push(("client_secret", secret));
        }
        body_answers.push(shape(&token_body(&server, &params).await));
    }
    assert_eq!(body_answers[0].0, 401);
    assert!(
        body_answers.iter().all(|a| *a == body_answers[0]),
        "{body_answers:#?}"
    );
    server.stop().await;
}
