//! What a refused sign-in costs and leaves behind: a 503 for lack of a
//! hash worker counts nothing against the user, every refusal waits for
//! the same target (so timing tells no refusal from another), and the
//! audit trail keeps unknown usernames only as keyed hashes, one event per
//! (username, address, reason) and window.

use latchkey_core::audit::{AuditNames, AuditQuery, UNKNOWN_USER_PREFIX, kind};
use latchkey_core::password::{HashParams, PoolConfig};
use latchkey_core::secrets::MasterKey;
use latchkey_core::throttle::{pair_key, user_key};
use latchkey_testkit::{ALICE_PASSWORD, DOMAIN, Engine, HR_SECRET, Options, TestServer};

use crate::support::*;

on_both_engines!(
    unknown_usernames_are_kept_as_keyed_hashes_and_repeated_refusals_fold,
    every_refusal_waits_for_the_refusal_target_and_a_success_does_not,
);

async fn sign_in(server: &TestServer, username: &str, password: &str) -> Answer {
    token_basic(
        server,
        "hr-mobile",
        HR_SECRET,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// A saturated hash pool answers 503; those requests were never checked
/// and must not count as failed logins (they once locked the real user
/// out after a flood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_a_full_hash_queue_is_never_counted_as_a_failed_login() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let options = Options {
            // One slow worker and a queue of one: easy to fill.
            hash_params: HashParams {
                memory_kib: 16 * 1024,
                iterations: 8,
                parallelism: 1,
            },
            hash_pool: PoolConfig {
                workers: 1,
                max_queue: 1,
                ..PoolConfig::default()
            },
            ..Options::default()
        };
        let Some(server) = TestServer::start_on(engine, options).await else {
            continue;
        };
        server.apply(DOMAIN).await.unwrap();
        let flood: Vec<_> = (0..16)
            .map(|_| {
                let url = server.token_url();
                tokio::spawn(async move {
                    reqwest::Client::new()
                        .post(url)
                        .header("authorization", basic("hr-mobile", HR_SECRET))
                        .header("content-type", FORM_CT)
                        .body(form(&[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", "a wrong password"),
                        ]))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in flood {
            statuses.push(task.await.unwrap());
        }
        let busy = statuses.iter().filter(|s| **s == 503).count();
        let checked = statuses.iter().filter(|s| **s == 400).count();
        assert_eq!(busy + checked, statuses.len(), "{statuses:?}");
        assert!(busy > 0, "the pool was saturated: {statuses:?}");

        // Exactly the checked attempts count, per pair and per user.
        let ctx = server.context().await;
        let keys = [
            pair_key("alice", Some("127.0.0.1".parse().unwrap())),
            user_key("alice"),
        ];
        let failures = ctx.store.repos.throttle.failures(&keys, 0).await.unwrap();
        ctx.store.close().await;
        for key in &keys {
            let counted = failures
                .iter()
                .find(|f| &f.key == key)
                .map_or(0, |f| f.failures);
            assert_eq!(counted, checked as i64, "{key} on {engine:?}: {statuses:?}");
        }
        server.stop().await;
    }
}

async fn every_refusal_waits_for_the_refusal_target_and_a_success_does_not(server: &TestServer) {
    let bcrypt_hash = bcrypt::hash("bcrypt password", 4).unwrap();
    server
        .apply(&format!(
            "[[users]]\nusername = \"imported\"\npassword_hash = '''{bcrypt_hash}'''\n"
        ))
        .await
        .unwrap();
    let hasher = server.hasher();
    let padded = || hasher.padded_refusals();
    for (username, password) in [
        ("nobody-at-all", "whatever"),
        ("alice", "a wrong password"),
        ("imported", "not the bcrypt password"),
    ] {
        let before = padded();
        sign_in(server, username, password)
            .await
            .assert_error(400, "invalid_grant");
        assert_eq!(padded(), before + 1, "{username}: the refusal waited");
    }
    // Throttled: refused before any hash, and still made to wait.
    for _ in 0..5 {
        sign_in(server, "bob-the-target", "guess").await;
    }
    let (before, hashes) = (padded(), hasher.verifications());
    sign_in(server, "bob-the-target", "guess")
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(hasher.verifications(), hashes, "throttled: no hash");
    assert_eq!(padded(), before + 1, "throttled: the refusal waited");
    // A success never waits.
    let before = padded();
    sign_in(server, "alice", ALICE_PASSWORD).await.assert_ok();
    sign_in(server, "imported", "bcrypt password")
        .await
        .assert_ok();
    assert_eq!(padded(), before);
    // The imported hash's class was measured: the target covers it.
    assert!(!hasher.refusal_target().is_zero());
}

async fn unknown_usernames_are_kept_as_keyed_hashes_and_repeated_refusals_fold(
    server: &TestServer,
) {
    // A password typed in the username field, twelve times from one
    // address: five refusals as an unknown user, then throttled.
    let typed = "MySecret-Password-2026";
    for _ in 0..12 {
        sign_in(server, typed, "x")
            .await
            .assert_error(400, "invalid_grant");
    }
    for _ in 0..3 {
        sign_in(server, "alice", "a wrong password").await;
    }
    let events = server
        .audit_events(AuditQuery {
            event_type: Some(kind::SIGN_IN.into()),
            start_index: 1,
            count: 100,
            ..AuditQuery::default()
        })
        .await;
    let dump = format!("{events:?}");
    assert!(
        !dump.contains(typed),
        "the typed name is not readable: {dump}"
    );
    assert!(
        !dump.to_lowercase().contains(&typed.to_lowercase()),
        "{dump}"
    );
    let master = MasterKey::from_base64(server.settings().master_key.as_deref().unwrap()).unwrap();
    let hashed = AuditNames::new(&master).unknown(typed);
    assert!(hashed.starts_with(UNKNOWN_USER_PREFIX));
    let of = |subject: &str| -> Vec<(String, u32)> {
        let mut rows: Vec<(String, u32)> = events
            .iter()
            .filter(|e| e.subject.as_deref() == Some(subject))
            .map(|e| (e.detail.clone().unwrap_or_default(), e.occurrences))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        of(&hashed),
        [
            ("throttled (this IP)".to_owned(), 7),
            ("unknown user".to_owned(), 5)
        ],
        "one event per reason, with its count: {dump}"
    );
    // A known user is named, as the operator knows them.
    assert_eq!(of("alice"), [("wrong password".to_owned(), 3)]);
}
