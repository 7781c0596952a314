//! Malformed requests get the right 4xx, never a 500.

use std::time::{Duration, Instant};

use latchkey_testkit::{ALICE_PASSWORD, Engine, HR_SECRET, Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_requests_get_precise_errors() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let auth = basic("hr-mobile", HR_SECRET);
    let auth = Some(auth.as_str());
    // (name, Authorization, Content-Type, body, status, error)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "missing grant_type",
            auth,
            Some(FORM_CT),
            b"username=alice&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "empty grant_type",
            auth,
            Some(FORM_CT),
            b"grant_type=&username=alice".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "unknown grant_type",
            auth,
            Some(FORM_CT),
            b"grant_type=urn:example:magic".to_vec(),
            400,
            "unsupported_grant_type",
        ),
        (
            "missing username",
            auth,
            Some(FORM_CT),
            b"grant_type=password&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "missing password",
            auth,
            Some(FORM_CT),
            b"grant_type=password&username=alice".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "missing refresh_token",
            auth,
            Some(FORM_CT),
            b"grant_type=refresh_token".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "duplicated parameter",
            auth,
            Some(FORM_CT),
            b"grant_type=password&username=alice&username=bob&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "duplicated grant_type",
            auth,
            Some(FORM_CT),
            b"grant_type=password&grant_type=password&username=a&password=b".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "JSON body",
            auth,
            Some("application/json"),
            br#"{"grant_type":"password"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "no content type",
            auth,
            None,
            b"grant_type=password&username=alice&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8 escape",
            auth,
            Some(FORM_CT),
            b"grant_type=password&username=%FF%FE&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8 bytes",
            auth,
            Some(FORM_CT),
            b"grant_type=password&username=\xff\xfe&password=x".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "Basic not base64",
            Some("Basic %%%"),
            Some(FORM_CT),
            b"grant_type=password&username=a&password=b".to_vec(),
            401,
            "invalid_client",
        ),
        (
            "Basic without colon",
            Some("Basic aHItbW9iaWxl"),
            Some(FORM_CT),
            b"grant_type=password&username=a&password=b".to_vec(),
            401,
            "invalid_client",
        ),
        (
            "Bearer instead of Basic",
            Some("Bearer abc"),
            Some(FORM_CT),
            b"grant_type=password&username=a&password=b".to_vec(),
            401,
            "invalid_client",
        ),
        (
            "invalid scope characters",
            auth,
            Some(FORM_CT),
            b"grant_type=password&username=alice&password=x&scope=%22bad%22".to_vec(),
            400,
            "invalid_scope",
        ),
    ];
    for (name, authorization, content_type, body, status, error) in cases {
        let answer = post_token(&server, authorization, content_type, body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error()),
            (status, error),
            "{name}: {}",
            answer.json
        );
        assert_eq!(answer.headers["cache-control"], "no-store", "{name}");
    }
    // NUL bytes and absurd lengths never reach the database (PostgreSQL
    // text cannot hold NUL: that would be a 500).
    let long_user = "u".repeat(300);
    let extra: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "NUL in client_id",
            b"grant_type=password&username=a&password=b&client_id=%00".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "NUL in username",
            b"grant_type=password&username=a%00b&password=b".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "huge username",
            format!("grant_type=password&username={long_user}&password=b").into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "huge client_id",
            format!(
                "grant_type=password&username=a&password=b&client_id={}",
                "c".repeat(300)
            )
            .into_bytes(),
            401,
            "invalid_client",
        ),
    ];
    for (name, body, status, error) in extra {
        let with_basic = name.contains("username");
        let answer = post_token(
            &server,
            if with_basic { auth } else { None },
            Some(FORM_CT),
            body,
        )
        .await;
        assert_eq!(
            (answer.status.as_u16(), answer.error()),
            (status, error),
            "{name}: {}",
            answer.json
        );
    }
    // Password still correct after all that: nothing was locked or broken.
    alice_grant(&server, "").await.assert_ok();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_413_and_wrong_methods_405() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let auth = basic("hr-mobile", HR_SECRET);
    let huge = format!(
        "grant_type=password&username=alice&password={}",
        "x".repeat(200 * 1024)
    );
    let answer = post_token(&server, Some(&auth), Some(FORM_CT), huge).await;
    assert_eq!(answer.status.as_u16(), 413, "{}", answer.json);
    assert_eq!(answer.error(), "invalid_request");

    let get = reqwest::get(server.token_url()).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let missing = reqwest::get(server.url("/no/such/path")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authorization_headers_are_invalid_request() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let auth = basic("hr-mobile", HR_SECRET);
    let response = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", &auth)
        .header("authorization", &auth)
        .header("content-type", FORM_CT)
        .body(form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_gets_a_server_error() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"&&&===&".to_vec(),
        b"%".to_vec(),
        b"grant_type=password&username=%00&password=%00".to_vec(),
        b"grant_type=refresh_token&refresh_token=%F0%9F%92%A9".to_vec(),
        format!(
            "grant_type=password&username={}&password=x",
            "a".repeat(10_000)
        )
        .into_bytes(),
        vec![0xff; 512],
    ];
    let auth = basic("hr-mobile", HR_SECRET);
    for body in bodies {
        for content_type in [Some(FORM_CT), Some("text/plain"), None] {
            let answer = post_token(&server, Some(&auth), content_type, body.clone()).await;
            assert!(
                answer.status.is_client_error(),
                "{:?} → {} {}",
                String::from_utf8_lossy(&body[..body.len().min(40)]),
                answer.status,
                answer.json
            );
        }
    }
    server.stop().await;
}

/// Sends `head` on a fresh connection and returns what the server answers
/// before it closes the connection (or within 15 s).
async fn raw_exchange(server: &TestServer, head: &[u8]) -> String {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_too_many_headers_are_431() {
    let server = domain_server(Engine::Sqlite).await.unwrap();
    let big = format!(
        "GET /health/live HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let answer = raw_exchange(&server, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let mut many = String::from("GET /health/live HTTP/1.1\r\nhost: x\r\n");
    for i in 0..100 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("connection: close\r\n\r\n");
    let answer = raw_exchange(&server, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Ordinary requests on raw connections still work.
    let fine = raw_exchange(
        &server,
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_disconnected() {
    let options = Options {
        header_read_timeout_secs: 1,
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    let started = Instant::now();
    // Half a request head, then silence (a slowloris connection).
    let answer = raw_exchange(
        &server,
        b"POST /oauth2/v1/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-w",
    )
    .await;
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(10),
        "the server closed the connection itself ({held:?}), it did not wait for the client"
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    // The server is still there for everyone else.
    let live = reqwest::get(server.url("/health/live")).await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    server.stop().await;
}
