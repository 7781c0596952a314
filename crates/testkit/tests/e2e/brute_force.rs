//! The brute-force defence, attacked: per (user, IP) delays, a user-wide
//! throttle that spares the real user's known addresses, no hash for a
//! throttled attempt, and admin unlock.

use latchkey_core::throttle::ThrottlePolicy;
use latchkey_testkit::{ALICE_PASSWORD, DOMAIN, Engine, HR_SECRET, Options, TestServer};

use crate::support::*;

async fn attempt(server: &TestServer, ip: &str, username: &str, password: &str) -> (Answer, u64) {
    let before = server.hasher().verifications();
    let response = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", basic("hr-mobile", HR_SECRET))
        .header("content-type", FORM_CT)
        .header("x-forwarded-for", ip)
        .body(form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    (answer, server.hasher().verifications() - before)
}

async fn server_behind_proxy(engine: Engine) -> Option<TestServer> {
    let options = Options {
        // The test client plays the proxy and names the client address.
        trusted_proxies: vec!["127.0.0.1/32"],
        throttle: ThrottlePolicy {
            pair_threshold: 3,
            user_threshold: 8,
            base_delay_secs: 60,
            max_delay_secs: 900,
            window_secs: 3600,
        },
        ..Options::default()
    };
    let server = TestServer::start_on(engine, options).await?;
    server.apply(DOMAIN).await.unwrap();
    Some(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_on_sqlite() {
    run(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_on_postgres() {
    run(Engine::Postgres).await;
}

async fn run(engine: Engine) {
    let Some(server) = server_behind_proxy(engine).await else {
        return;
    };
    // The real user signs in from home: a known address from now on.
    attempt(&server, "1.1.1.1", "alice", ALICE_PASSWORD)
        .await
        .0
        .assert_ok();

    // One attacker address: three failures, then it must wait — even the
    // right password is refused, with the same answer, and costs no hash.
    for _ in 0..3 {
        let (answer, hashes) = attempt(&server, "6.6.6.6", "alice", "guess").await;
        answer.assert_error(400, "invalid_grant");
        assert_eq!(hashes, 1);
    }
    let (refused, hashes) = attempt(&server, "6.6.6.6", "alice", ALICE_PASSWORD).await;
    refused.assert_error(400, "invalid_grant");
    assert_eq!(hashes, 0, "a throttled attempt runs no hash");
    let (wrong, _) = attempt(&server, "6.6.6.7", "alice", "guess").await;
    assert_eq!(
        refused.json, wrong.json,
        "throttled looks like a wrong password"
    );

    // A spray from many addresses passes the user-wide threshold (8):
    // unknown addresses are now refused for alice, even with her password…
    for i in 0..5 {
        attempt(&server, &format!("7.7.7.{i}"), "alice", "guess")
            .await
            .0
            .assert_error(400, "invalid_grant");
    }
    let (refused, hashes) = attempt(&server, "8.8.8.8", "alice", ALICE_PASSWORD).await;
    refused.assert_error(400, "invalid_grant");
    assert_eq!(hashes, 0);
    // …but the real user, from her known address, signs in.
    attempt(&server, "1.1.1.1", "alice", ALICE_PASSWORD)
        .await
        .0
        .assert_ok();
    // The success reset the user-wide count: a new address works again.
    attempt(&server, "8.8.8.8", "alice", ALICE_PASSWORD)
        .await
        .0
        .assert_ok();
    // The attacker's own pair is still waiting.
    assert_eq!(
        attempt(&server, "6.6.6.6", "alice", ALICE_PASSWORD).await.1,
        0
    );

    // An unknown username is throttled exactly like a known one.
    for _ in 0..3 {
        assert_eq!(attempt(&server, "6.6.6.6", "nobody", "guess").await.1, 1);
    }
    let (answer, hashes) = attempt(&server, "6.6.6.6", "nobody", "guess").await;
    answer.assert_error(400, "invalid_grant");
    assert_eq!(hashes, 0);

    // An administrator's unlock lifts it.
    let ctx = server.context().await;
    ctx.store
        .repos
        .throttle
        .clear_username("alice")
        .await
        .unwrap();
    ctx.store.close().await;
    attempt(&server, "6.6.6.6", "alice", ALICE_PASSWORD)
        .await
        .0
        .assert_ok();
    server.stop().await;
}

/// One attempt through a backend at 10.0.0.5 that names its end user's
/// address in `Latchkey-Forwarded-For`.
async fn via_backend(
    server: &TestServer,
    client: (&str, &str),
    user_ip: &str,
    password: &str,
) -> Answer {
    let response = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", basic(client.0, client.1))
        .header("content-type", FORM_CT)
        .header("x-forwarded-for", "10.0.0.5")
        .header("latchkey-forwarded-for", user_ip)
        .body(form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

/// A trusted app's backend collects passwords on its own server: allowed to
/// name its users' addresses, one attacking user is throttled without
/// locking out every user of the backend; not allowed, the header is
/// ignored and the backend's own address is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_may_name_its_end_users_addresses_when_allowed() {
    let options = Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        end_user_ip_clients: vec!["hr-mobile"],
        throttle: ThrottlePolicy {
            pair_threshold: 3,
            user_threshold: 50,
            base_delay_secs: 60,
            max_delay_secs: 900,
            window_secs: 3600,
        },
        rate_limit: latchkey_http::RateLimitConfig {
            per_ip: latchkey_http::Rate {
                per_second: 1,
                burst: 6,
            },
            per_client: latchkey_http::Rate {
                per_second: 10_000,
                burst: 10_000,
            },
        },
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    server.apply(DOMAIN).await.unwrap();
    let hr = ("hr-mobile", HR_SECRET);
    for _ in 0..3 {
        via_backend(&server, hr, "6.6.6.6", "guess")
            .await
            .assert_error(400, "invalid_grant");
    }
    via_backend(&server, hr, "6.6.6.6", ALICE_PASSWORD)
        .await
        .assert_error(400, "invalid_grant");
    // The same backend, another end user's address: not throttled, and
    // charged to that address's rate-limit bucket, not the backend's.
    via_backend(&server, hr, "1.2.3.4", ALICE_PASSWORD)
        .await
        .assert_ok();
    via_backend(&server, hr, "1.2.3.5", ALICE_PASSWORD)
        .await
        .assert_ok();
    // The audit trail names the end user's address.
    let events = server
        .audit_events(latchkey_core::audit::AuditQuery {
            event_type: Some("user.signin".into()),
            start_index: 1,
            count: 100,
            ..Default::default()
        })
        .await;
    let ips: Vec<String> = events.iter().filter_map(|e| e.ip.clone()).collect();
    assert!(
        ips.iter().any(|ip| ip == "6.6.6.6") && ips.iter().any(|ip| ip == "1.2.3.4"),
        "{ips:?}"
    );
    assert!(!ips.iter().any(|ip| ip == "10.0.0.5"), "{ips:?}");

    // Not one address: refused as a malformed request.
    via_backend(&server, hr, "6.6.6.6, 7.7.7.7", ALICE_PASSWORD)
        .await
        .assert_error(400, "invalid_request");

    // An app that is not allowed: the header is ignored, the backend's own
    // address is counted (and throttled for everyone behind it).
    let reports = (
        latchkey_testkit::REPORTS_ID,
        latchkey_testkit::REPORTS_SECRET,
    );
    for user_ip in ["6.6.6.1", "6.6.6.2", "6.6.6.3"] {
        via_backend(&server, reports, user_ip, "guess")
            .await
            .assert_error(400, "invalid_grant");
    }
    via_backend(&server, reports, "1.2.3.4", ALICE_PASSWORD)
        .await
        .assert_error(400, "invalid_grant");
    server.stop().await;
}
