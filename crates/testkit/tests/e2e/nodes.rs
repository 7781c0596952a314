//! Several nodes on one database, signing-key lifecycle, session limits.

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::clock::SystemClock;
use latchkey_core::housekeeping::{Housekeeper, HousekeepingConfig};
use latchkey_core::keys::{KeyAlgorithm, KeyRing};
use latchkey_testkit::{ALICE_PASSWORD, DOMAIN, HR_SECRET, READ, TestServer};
use serde_json::{Value, json};

use crate::support::*;

on_both_engines!(
    two_nodes_share_everything_but_memory,
    concurrent_refreshes_across_two_nodes_all_succeed_within_the_interval,
    every_replay_raced_across_two_nodes_is_audited_once,
    old_keys_verify_until_retired_then_fail,
);

async fn introspect(server: &TestServer, token: &str) -> Value {
    let response = reqwest::Client::new()
        .post(server.url("/oauth2/v1/introspect"))
        .header("authorization", basic("hr-mobile", HR_SECRET))
        .header("content-type", FORM_CT)
        .body(form(&[("token", token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn refresh(server: &TestServer, token: &str) -> Answer {
    token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// One refresh token presented at once to two nodes, ten times each,
/// within the reuse interval: every request is answered, each with a
/// refresh token of its own, the session lives, and the client goes on
/// with any one of them at either node.
async fn concurrent_refreshes_across_two_nodes_all_succeed_within_the_interval(a: &TestServer) {
    let b = a.start_sibling().await;
    let token = alice_grant(a, &format!("{READ} offline_access"))
        .await
        .assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..20 {
        let node = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let token = token.clone();
        racing.spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{node}/oauth2/v1/token"))
                .header("authorization", basic("hr-mobile", HR_SECRET))
                .header("content-type", FORM_CT)
                .body(form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                ]))
                .send()
                .await
                .unwrap();
            Answer::read(response).await
        });
    }
    let mut answered = std::collections::BTreeSet::new();
    while let Some(answer) = racing.join_next().await {
        let answer = answer.unwrap();
        answered.insert(
            answer.assert_ok()["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(answered.len(), 20, "no two refreshes return the same token");
    let kept = answered.iter().nth(7).unwrap();
    let next = refresh(&b, kept).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    refresh(a, &next).await.assert_ok();
    b.stop().await;
}

/// One refresh token presented at once to two nodes, twice each: one
/// request wins, every other is a replay that revokes the session, and
/// each such replay writes one `token.refresh_reuse` event, whichever
/// node, and whether it lost the race in the store or came after.
async fn every_replay_raced_across_two_nodes_is_audited_once(a: &TestServer) {
    // Without a reuse interval, every presentation after the first is a
    // replay.
    a.apply(&format!("{DOMAIN}{STRICT_APP}")).await.unwrap();
    let b = a.start_sibling().await;
    let trials = 15;
    let mut refused = 0;
    for _ in 0..trials {
        let token = strict_grant(a).await.assert_ok()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (w, x, y, z) = tokio::join!(
            refresh_strict(a, &token),
            refresh_strict(&b, &token),
            refresh_strict(a, &token),
            refresh_strict(&b, &token)
        );
        let answers = [w, x, y, z];
        let won = answers.iter().filter(|r| r.status.as_u16() == 200).count();
        assert_eq!(won, 1, "one winner");
        for answer in answers.iter().filter(|r| r.status.as_u16() != 200) {
            answer.assert_error(400, "invalid_grant");
            refused += 1;
        }
    }
    let query = latchkey_core::audit::AuditQuery {
        event_type: Some(latchkey_core::audit::kind::REFRESH_REUSE.into()),
        start_index: 1,
        count: 1000,
        ..Default::default()
    };
    // Each node writes its own events; read through both queues.
    b.audit_events(query.clone()).await;
    let events = a.audit_events(query).await;
    assert_eq!(events.len(), refused, "one event per replay");
    b.stop().await;
}

async fn two_nodes_share_everything_but_memory(a: &TestServer) {
    let b = a.start_sibling().await;

    // Issued at A, verified at B.
    let answer = alice_grant(a, &format!("{READ} offline_access")).await;
    let body = answer.assert_ok().clone();
    let (access, first) = (
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(introspect(&b, access).await["active"], true);
    verify_jwt(&b, access, "https://hr.example.com/").await;

    // Rotated at A twice, the first token replayed at B (outside any
    // reuse interval: two generations back): reuse detected, the family
    // revoked.
    let second = refresh(a, first).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = refresh(a, &second).await.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    refresh(&b, first).await.assert_error(400, "invalid_grant");
    refresh(a, &third).await.assert_error(400, "invalid_grant");

    // Revoked at A, honoured at B at once.
    let answer = alice_grant(&b, &format!("{READ} offline_access")).await;
    let body = answer.assert_ok().clone();
    let response = reqwest::Client::new()
        .post(a.url("/oauth2/v1/revoke"))
        .header("authorization", basic("hr-mobile", HR_SECRET))
        .header("content-type", FORM_CT)
        .body(form(&[("token", body["access_token"].as_str().unwrap())]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        introspect(&b, body["access_token"].as_str().unwrap()).await,
        json!({"active": false})
    );

    // A key rotated through A's database is served by B's JWKS.
    let ctx = a.context().await;
    let kid = KeyRing::new(ctx.store.repos.keys.clone(), ctx.master.clone())
        .rotate_now(KeyAlgorithm::EdDsa, 0)
        .await
        .unwrap();
    ctx.store.close().await;
    eventually(
        "B publishing the new key",
        Duration::from_secs(5),
        async || {
            let jwks = jwks(&b).await;
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid.as_str())
        },
    )
    .await;
    b.stop().await;
}

async fn old_keys_verify_until_retired_then_fail(server: &TestServer) {
    let answer = alice_grant(server, READ).await;
    let old_token = answer.assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctx = server.context().await;
    let ring = Arc::new(KeyRing::new(
        ctx.store.repos.keys.clone(),
        ctx.master.clone(),
    ));
    let now = latchkey_core::clock::Clock::now(&SystemClock);
    ring.rotate_now(KeyAlgorithm::Es256, now).await.unwrap();
    eventually(
        "the server signing with the new key",
        Duration::from_secs(5),
        async || {
            let token = alice_grant(server, READ).await.assert_ok()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            jsonwebtoken::decode_header(&token).unwrap().kid
                != jsonwebtoken::decode_header(&old_token).unwrap().kid
        },
    )
    .await;
    // The retiring key still verifies what it signed.
    assert_eq!(introspect(server, &old_token).await["active"], true);
    let keeper = Housekeeper {
        repos: ctx.store.repos.clone(),
        keys: ring.clone(),
        clock: Arc::new(SystemClock),
        config: HousekeepingConfig {
            batch: 100,
            rotate_every: None,
            key_algorithm: KeyAlgorithm::Es256,
            failure_window: 3600,
            audit_retention: 90 * 86_400,
        },
    };
    // An hour later its tokens may still live: it stays.
    assert_eq!(keeper.run_at(now + 3600).await.unwrap().keys_retired, 0);
    // A day and a bit later none can: retired, gone from the JWKS.
    assert_eq!(
        keeper
            .run_at(now + 86_400 + 301)
            .await
            .unwrap()
            .keys_retired,
        1
    );
    ctx.store.close().await;
    eventually(
        "the old key leaving the JWKS",
        Duration::from_secs(5),
        async || {
            let jwks = jwks(server).await;
            jwks["keys"].as_array().unwrap().len() == 1
        },
    )
    .await;
    assert_eq!(
        introspect(server, &old_token).await,
        json!({"active": false})
    );
    // Scheduled rotation, and its audit event by the server itself.
    let ctx = server.context().await;
    let scheduled = Housekeeper {
        repos: ctx.store.repos.clone(),
        keys: Arc::new(KeyRing::new(
            ctx.store.repos.keys.clone(),
            ctx.master.clone(),
        )),
        clock: Arc::new(SystemClock),
        config: HousekeepingConfig {
            rotate_every: Some(3600),
            ..keeper.config
        },
    };
    scheduled.keys.reload().await.unwrap();
    let kid = scheduled
        .run_at(now + 2 * 86_400)
        .await
        .unwrap()
        .rotated
        .expect("a key over an hour old is rotated");
    let events = ctx
        .store
        .repos
        .audit
        .query(&latchkey_core::audit::AuditQuery {
            event_type: Some("key.rotated".into()),
            start_index: 1,
            count: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.subject.as_deref() == Some(kid.as_str())
                && e.actor.as_deref() == Some("system")),
        "{events:?}"
    );
    ctx.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cap_ends_the_oldest_session() {
    let options = latchkey_testkit::Options {
        max_sessions_per_user: Some(2),
        ..Default::default()
    };
    let server = TestServer::start_on(latchkey_testkit::Engine::Sqlite, options)
        .await
        .unwrap();
    server.apply(latchkey_testkit::DOMAIN).await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(
            alice_grant(&server, READ).await.assert_ok()["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        introspect(&server, &tokens[0]).await,
        json!({"active": false}),
        "the oldest session ended"
    );
    assert_eq!(introspect(&server, &tokens[1]).await["active"], true);
    assert_eq!(introspect(&server, &tokens[2]).await["active"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_stops_at_the_absolute_session_lifetime() {
    let server = domain_server(latchkey_testkit::Engine::Sqlite)
        .await
        .unwrap();
    server
        .apply(
            r#"[[apps]]
name = "Short"
type = "confidential"
client_secret = "short-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
session_lifetime = "2s"
"#,
        )
        .await
        .unwrap();
    let grant = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        (
            "scope",
            "https://hr.example.com/employees.read offline_access",
        ),
    ];
    let answer = token_basic(&server, "short", "short-secret-0123456789", &grant).await;
    let token = answer.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = token_basic(
        &server,
        "short",
        "short-secret-0123456789",
        &[("grant_type", "refresh_token"), ("refresh_token", &token)],
    )
    .await;
    let next = next.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    token_basic(
        &server,
        "short",
        "short-secret-0123456789",
        &[("grant_type", "refresh_token"), ("refresh_token", &next)],
    )
    .await
    .assert_error(400, "invalid_grant");
    server.stop().await;
}
