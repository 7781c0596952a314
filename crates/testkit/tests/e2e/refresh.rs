//! The refresh grant (RFC 6749 §6): rotation, reuse detection, narrowing.

use latchkey_testkit::{DOMAIN, HR_SECRET, READ, REPORTS_ID, REPORTS_SECRET, TestServer};

use crate::support::*;

on_both_engines!(
    each_refresh_rotates_and_reuse_revokes_the_whole_family,
    a_retry_after_a_lost_answer_goes_on_and_the_lost_token_dies,
    a_replay_after_the_interval_or_without_one_ends_the_session,
    refresh_narrows_scope_but_never_widens_it,
);

async fn refresh(server: &TestServer, token: &str, scope: Option<&str>) -> Answer {
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    token_basic(server, "hr-mobile", HR_SECRET, &params).await
}

async fn first_refresh_token(server: &TestServer) -> String {
    let answer = alice_grant(server, &format!("{READ} offline_access")).await;
    answer.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn each_refresh_rotates_and_reuse_revokes_the_whole_family(server: &TestServer) {
    let first = first_refresh_token(server).await;
    let answer = refresh(server, &first, None).await;
    let body = answer.assert_ok();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(
        second, first,
        "a refresh always returns a new refresh token"
    );
    assert_eq!(body["scope"], format!("{READ} offline_access"));
    let (_, claims) = verify_jwt(
        server,
        body["access_token"].as_str().unwrap(),
        "https://hr.example.com/",
    )
    .await;
    assert_eq!(claims["username"], "alice");

    let third = refresh(server, &second, None).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The rotated-out first token comes back: reuse. It is refused, and
    // the newest token of the family stops working too.
    refresh(server, &first, None)
        .await
        .assert_error(400, "invalid_grant");
    refresh(server, &third, None)
        .await
        .assert_error(400, "invalid_grant");
    // The replay is in the audit trail, naming the revoked session.
    let events = server
        .audit_events(latchkey_core::audit::AuditQuery {
            event_type: Some(latchkey_core::audit::kind::REFRESH_REUSE.into()),
            start_index: 1,
            count: 10,
            ..Default::default()
        })
        .await;
    assert_eq!(events.len(), 1, "{:?}", events);
    assert_eq!(events[0].outcome, "failure");
    assert_eq!(events[0].client_id.as_deref(), Some("hr-mobile"));
    // A new sign-in starts a new family that works.
    let fresh = first_refresh_token(server).await;
    refresh(server, &fresh, None).await.assert_ok();
}

async fn refresh_narrows_scope_but_never_widens_it(server: &TestServer) {
    let token = first_refresh_token(server).await;
    let widened = refresh(
        server,
        &token,
        Some(&format!(
            "{READ} offline_access https://hr.example.com/employees.write"
        )),
    )
    .await;
    widened.assert_error(400, "invalid_scope");
    // The refused attempt did not consume the token.
    let narrowed = refresh(server, &token, Some(READ)).await;
    let body = narrowed.assert_ok();
    assert_eq!(body["scope"], READ);
    let next = body["refresh_token"]
        .as_str()
        .expect("a new refresh token even when narrowing")
        .to_owned();
    // The narrowed token keeps the narrowed scope: it cannot widen back.
    refresh(server, &next, Some(&format!("{READ} offline_access")))
        .await
        .assert_error(400, "invalid_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_works_only_for_its_own_client() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let token = first_refresh_token(&server).await;
    // Kiosk (public) presents hr-mobile's token: refused, and the token is
    // left alone for its owner.
    let stolen = token_body(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", "kiosk"),
        ],
    )
    .await;
    stolen.assert_error(400, "invalid_grant");
    refresh(&server, &token, None).await.assert_ok();
    refresh(&server, "no-such-token", None)
        .await
        .assert_error(400, "invalid_grant");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_refresh_with_client_id_alone() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let answer = token_body(
        &server,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", latchkey_testkit::ALICE_PASSWORD),
            ("client_id", "kiosk"),
            ("scope", &format!("{READ} offline_access")),
        ],
    )
    .await;
    let token = answer.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = token_body(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", "kiosk"),
        ],
    )
    .await;
    answer.assert_ok();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_user_cannot_refresh() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    let token = first_refresh_token(&server).await;
    let ctx = server.context().await;
    let alice = ctx
        .store
        .repos
        .users
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    ctx.store
        .repos
        .users
        .set_active(&alice.id, false, 0)
        .await
        .unwrap();
    ctx.store.close().await;
    refresh(&server, &token, None)
        .await
        .assert_error(400, "invalid_grant");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_may_use_only_its_grant_types() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    // Reports lists only "password".
    let answer = token_basic(
        &server,
        REPORTS_ID,
        REPORTS_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    answer.assert_error(400, "unauthorized_client");
    server.stop().await;
}

fn refresh_token_of(answer: &Answer) -> String {
    answer.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn events_of(server: &TestServer, kind: &str) -> usize {
    server
        .audit_events(latchkey_core::audit::AuditQuery {
            event_type: Some(kind.into()),
            start_index: 1,
            count: 100,
            ..Default::default()
        })
        .await
        .len()
}

/// The rotation commits but its answer never reaches the client (a
/// killed node, a dropped connection): the client retries with the token
/// it has, within the reuse interval, and goes on. The answer it never
/// saw is dead from then on: whoever presents it ends the session.
async fn a_retry_after_a_lost_answer_goes_on_and_the_lost_token_dies(server: &TestServer) {
    let first = first_refresh_token(server).await;
    let lost = refresh_token_of(&refresh(server, &first, None).await);
    let retried = refresh(server, &first, None).await;
    let body = retried.assert_ok().clone();
    let kept = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(kept, lost, "the retry gets a refresh token of its own");
    assert_eq!(body["scope"], format!("{READ} offline_access"));
    let (_, claims) = verify_jwt(
        server,
        body["access_token"].as_str().unwrap(),
        "https://hr.example.com/",
    )
    .await;
    assert_eq!(claims["username"], "alice");
    // The client goes on.
    let next = refresh_token_of(&refresh(server, &kept, None).await);
    let newest = refresh_token_of(&refresh(server, &next, None).await);
    assert_eq!(
        events_of(server, latchkey_core::audit::kind::REFRESH_REDEEMED).await,
        1
    );
    assert_eq!(
        events_of(server, latchkey_core::audit::kind::REFRESH_REUSE).await,
        0
    );

    // The lost answer surfaces later (a thief, or a confused client):
    // its generation has moved on, so it is a replay, and the session
    // ends with every branch of it.
    refresh(server, &lost, None)
        .await
        .assert_error(400, "invalid_grant");
    refresh(server, &newest, None)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        events_of(server, latchkey_core::audit::kind::REFRESH_REUSE).await,
        1
    );
}

/// Outside the interval (an app with 1 s), or with the interval off, the
/// rotated-out token presented again is a replay as before.
async fn a_replay_after_the_interval_or_without_one_ends_the_session(server: &TestServer) {
    let quick = r#"
[[apps]]
name = "HR Quick"
type = "confidential"
client_secret = "hr-quick-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
refresh_token_reuse_interval = "1s"
"#;
    server
        .apply(&format!("{DOMAIN}{quick}{STRICT_APP}"))
        .await
        .unwrap();
    let quick_refresh = |token: String| async move {
        token_basic(
            server,
            "hr-quick",
            "hr-quick-secret-0123456789",
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
        )
        .await
    };
    let first = refresh_token_of(
        &token_basic(
            server,
            "hr-quick",
            "hr-quick-secret-0123456789",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", latchkey_testkit::ALICE_PASSWORD),
                ("scope", &format!("{READ} offline_access")),
            ],
        )
        .await,
    );
    let second = refresh_token_of(&quick_refresh(first.clone()).await);
    // Two whole seconds later: past the interval.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    quick_refresh(first)
        .await
        .assert_error(400, "invalid_grant");
    quick_refresh(second)
        .await
        .assert_error(400, "invalid_grant");

    // The interval off: the replay at once ends the session.
    let first = refresh_token_of(&strict_grant(server).await);
    let second = refresh_token_of(&refresh_strict(server, &first).await);
    refresh_strict(server, &first)
        .await
        .assert_error(400, "invalid_grant");
    refresh_strict(server, &second)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        events_of(server, latchkey_core::audit::kind::REFRESH_REUSE).await,
        2
    );
    assert_eq!(
        events_of(server, latchkey_core::audit::kind::REFRESH_REDEEMED).await,
        0
    );
}
