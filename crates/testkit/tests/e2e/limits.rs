//! Request budgets: rate limits (429), and the bounded password-hash pool
//! (503 at once when full, while everything else keeps flowing).

use std::time::Instant;

use latchkey_core::password::{HashParams, PoolConfig};
use latchkey_http::{Rate, RateLimitConfig};
use latchkey_testkit::{ALICE_PASSWORD, DOMAIN, Engine, HR_SECRET, Options, READ, TestServer};

use crate::support::*;

async fn grant_from(server: &TestServer, ip: &str, client: (&str, &str)) -> Answer {
    let response = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", basic(client.0, client.1))
        .header("content-type", FORM_CT)
        .header("x-forwarded-for", ip)
        .body(form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let options = Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        rate_limit: RateLimitConfig {
            per_ip: Rate {
                per_second: 1,
                burst: 3,
            },
            per_client: Rate {
                per_second: 1,
                burst: 5,
            },
        },
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    server.apply(DOMAIN).await.unwrap();
    let hr = ("hr-mobile", HR_SECRET);
    // Requests that fail authentication do not spend the client's budget:
    // knowing a client_id is not enough to lock its app out.
    for i in 0..8 {
        let answer = grant_from(
            &server,
            &format!("9.9.9.{i}"),
            ("hr-mobile", "not-the-secret"),
        )
        .await;
        assert_eq!(answer.status.as_u16(), 401);
    }
    for _ in 0..3 {
        grant_from(&server, "1.1.1.1", hr).await.assert_ok();
    }
    let limited = grant_from(&server, "1.1.1.1", hr).await;
    assert_eq!(limited.status.as_u16(), 429, "{}", limited.json);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    assert_eq!(limited.headers["cache-control"], "no-store");
    // Another address has its own bucket…
    grant_from(&server, "2.2.2.2", hr).await.assert_ok();
    grant_from(&server, "2.2.2.2", hr).await.assert_ok();
    // …but the client's own bucket (5) is now spent, from any address.
    let limited = grant_from(&server, "3.3.3.3", hr).await;
    assert_eq!(limited.status.as_u16(), 429);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_flood_gets_503_while_refresh_keeps_flowing() {
    let options = Options {
        // One slow worker and a short queue: easy to saturate.
        hash_params: HashParams {
            memory_kib: 16 * 1024,
            iterations: 8,
            parallelism: 1,
        },
        hash_pool: PoolConfig {
            workers: 1,
            max_queue: 2,
            ..PoolConfig::default()
        },
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    server.apply(DOMAIN).await.unwrap();
    let first = alice_grant(&server, &format!("{READ} offline_access")).await;
    let mut refresh_token = first.assert_ok()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let started = Instant::now();
    let flood: Vec<_> = (0..12)
        .map(|_| {
            let url = server.token_url();
            tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .header("authorization", basic("hr-mobile", HR_SECRET))
                    .header("content-type", FORM_CT)
                    .body(form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", ALICE_PASSWORD),
                    ]))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after, started.elapsed())
            })
        })
        .collect();
    // While the pool is saturated, refresh grants (no hash) go through.
    let mut refreshes_done = Vec::new();
    for _ in 0..3 {
        let answer = token_basic(
            &server,
            "hr-mobile",
            HR_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
        .await;
        refresh_token = answer.assert_ok()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        refreshes_done.push(started.elapsed());
    }
    let mut outcomes = Vec::new();
    for task in flood {
        outcomes.push(task.await.unwrap());
    }
    let busy: Vec<_> = outcomes
        .iter()
        .filter(|(status, _, _)| *status == 503)
        .collect();
    let served = outcomes
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .count();
    assert!(!busy.is_empty(), "a full queue answers 503: {outcomes:?}");
    assert!(
        busy.iter().all(|(_, retry, _)| retry.is_some()),
        "503 carries Retry-After"
    );
    assert!(
        (1..=5).contains(&served),
        "at most one running and two queued at a time (plus those that came later): {outcomes:?}"
    );
    // The refreshes did not wait for the hashes: all of them finished
    // before the last password grant that was served.
    let last_served = outcomes
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, _, at)| *at)
        .max()
        .unwrap();
    assert!(
        refreshes_done.iter().all(|at| *at < last_served),
        "refresh {refreshes_done:?} vs last hash {last_served:?}"
    );
    server.stop().await;
}
