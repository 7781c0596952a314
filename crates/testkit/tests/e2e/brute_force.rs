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
