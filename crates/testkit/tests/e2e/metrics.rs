//! `GET /metrics`: scraped after real traffic, parsed as Prometheus text,
//! and checked figure by figure.

use std::collections::HashMap;

use latchkey_core::throttle::ThrottlePolicy;
use latchkey_testkit::{ALICE_PASSWORD, DOMAIN, Engine, HR_SECRET, Options, READ, TestServer};

use crate::support::*;

/// One sample: the metric name and its labels, sorted, as `name{a="1",b="2"}`.
type Samples = HashMap<String, f64>;

/// Parses the Prometheus text exposition format (the subset an exporter
/// writes: `# HELP`/`# TYPE` comments and `name{labels} value` lines).
fn parse(text: &str) -> Samples {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line:?}"));
        let key = match series.split_once('{') {
            None => series.to_owned(),
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("closed labels");
                let mut parts: Vec<&str> = labels.split(',').filter(|p| !p.is_empty()).collect();
                parts.sort_unstable();
                format!("{name}{{{}}}", parts.join(","))
            }
        };
        samples.insert(key, value);
    }
    samples
}

async fn scrape(base: &str) -> Samples {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse(&response.text().await.unwrap())
}

fn get(samples: &Samples, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        panic!("no sample {key}; have {:#?}", {
            let mut keys: Vec<_> = samples.keys().collect();
            keys.sort();
            keys
        })
    })
}

async fn grant(server: &TestServer, ip: &str, password: &str, scope: &str) -> Answer {
    let response = reqwest::Client::new()
        .post(server.token_url())
        .header("authorization", basic("hr-mobile", HR_SECRET))
        .header("content-type", FORM_CT)
        .header("x-forwarded-for", ip)
        .body(form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
            ("scope", scope),
        ]))
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_traffic() {
    let options = Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        throttle: ThrottlePolicy {
            pair_threshold: 2,
            ..ThrottlePolicy::default()
        },
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    server.apply(DOMAIN).await.unwrap();

    // 3 issued password grants, 2 wrong passwords, then 1 throttled attempt
    // (with the right password, from the IP that failed twice).
    let mut refresh = String::new();
    for _ in 0..3 {
        let answer = grant(
            &server,
            "10.0.0.1",
            ALICE_PASSWORD,
            &format!("{READ} offline_access"),
        )
        .await;
        refresh = answer.assert_ok()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    for _ in 0..2 {
        grant(&server, "10.0.0.2", "wrong password", READ)
            .await
            .assert_error(400, "invalid_grant");
    }
    grant(&server, "10.0.0.2", ALICE_PASSWORD, READ)
        .await
        .assert_error(400, "invalid_grant");
    // 1 refresh, and 1 unknown grant type.
    token_basic(
        &server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .assert_ok();
    token_basic(
        &server,
        "hr-mobile",
        HR_SECRET,
        &[("grant_type", "made_up")],
    )
    .await
    .assert_error(400, "unsupported_grant_type");
    // A request for an unknown path and one for a SCIM user by id.
    assert_eq!(
        reqwest::get(server.url("/nowhere"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let by_id = reqwest::get(server.url("/admin/v1/Users/some-id"))
        .await
        .unwrap();
    assert_eq!(by_id.status().as_u16(), 401);

    let m = scrape(&server.base).await;
    let tokens = |grant_type: &str, outcome: &str| {
        get(
            &m,
            &format!(
                "latchkey_token_requests_total{{grant_type=\"{grant_type}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(tokens("password", "issued"), 3.0);
    assert_eq!(tokens("password", "invalid_grant"), 2.0);
    assert_eq!(tokens("password", "throttled"), 1.0);
    assert_eq!(tokens("refresh_token", "issued"), 1.0);
    assert_eq!(tokens("other", "unsupported_grant_type"), 1.0);

    let requests = |route: &str, status: u16| {
        get(
            &m,
            &format!(
                "latchkey_http_requests_total{{method=\"POST\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("/oauth2/v1/token", 200), 4.0);
    assert_eq!(requests("/oauth2/v1/token", 400), 4.0);
    // Routes are templates, never raw paths with ids in them.
    assert_eq!(
        get(
            &m,
            "latchkey_http_requests_total{method=\"GET\",route=\"/admin/v1/Users/{id}\",status=\"401\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "latchkey_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "latchkey_http_request_duration_seconds_count{method=\"POST\",route=\"/oauth2/v1/token\",status=\"200\"}"
        ),
        4.0
    );
    assert!(
        get(
            &m,
            "latchkey_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"POST\",route=\"/oauth2/v1/token\",status=\"200\"}"
        ) == 4.0
    );
    // 5 hashes ran (the throttled attempt ran none), each waited a little.
    assert_eq!(get(&m, "latchkey_password_hash_wait_seconds_count"), 5.0);
    assert_eq!(get(&m, "latchkey_password_hash_queue_depth"), 0.0);
    assert_eq!(get(&m, "latchkey_password_hash_workers"), 2.0);
    // The pool: SQLite's 4 readers and 1 writer; the scrape's own probe ran.
    assert_eq!(get(&m, "latchkey_db_pool_max_connections"), 5.0);
    assert!(get(&m, "latchkey_db_pool_connections{state=\"idle\"}") >= 1.0);
    assert_eq!(get(&m, "latchkey_db_pool_acquire_seconds_count"), 1.0);
    let key_age = get(&m, "latchkey_signing_key_age_seconds");
    assert!((0.0..120.0).contains(&key_age), "{key_age}");
    assert_eq!(
        get(
            &m,
            &format!(
                "latchkey_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );

    // A second scrape sees the first.
    let again = scrape(&server.base).await;
    assert_eq!(
        get(
            &again,
            "latchkey_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let options = Options {
        metrics_listener: true,
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    let metrics_base = server.metrics_base().expect("a metrics listener");
    assert_ne!(metrics_base, server.base);
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status().as_u16(), 404, "not on the public listener");
    reqwest::get(server.url("/health/live")).await.unwrap();
    let m = scrape(&metrics_base).await;
    assert_eq!(
        get(
            &m,
            "latchkey_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"}"
        ),
        1.0
    );
    server.stop().await;
}

/// Invented methods, paths and grant types do not become labels: 2,000 of
/// each leave `/metrics` with the same series and (but for the counts'
/// digits) the same size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_paths_and_grant_types_do_not_grow_the_metrics() {
    let server = TestServer::start_on(Engine::Sqlite, Options::default())
        .await
        .unwrap();
    server.apply(DOMAIN).await.unwrap();
    let client = reqwest::Client::new();
    let traffic = |from: usize, to: usize| {
        let (client, server) = (&client, &server);
        async move {
            for i in from..to {
                let method =
                    reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
                let answer = client
                    .request(method, server.url("/health/live"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status().as_u16(), 405);
                let answer = client
                    .get(server.url(&format!("/no/such/path/{i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status().as_u16(), 404);
                let answer = token_basic(
                    server,
                    "hr-mobile",
                    HR_SECRET,
                    &[("grant_type", &format!("urn:invented:{i}"))],
                )
                .await;
                assert_eq!(answer.status.as_u16(), 400);
            }
        }
    };
    let size = |text: &str| (text.len(), parse(text).len());
    let text = |base: String| async move {
        reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    traffic(0, 20).await;
    // A first scrape makes the series of scraping itself.
    text(server.base.clone()).await;
    let before = text(server.base.clone()).await;
    traffic(20, 2_020).await;
    let after = text(server.base.clone()).await;
    let ((bytes_before, series_before), (bytes_after, series_after)) =
        (size(&before), size(&after));
    assert_eq!(series_after, series_before, "{after}");
    assert!(
        bytes_after < bytes_before + 1024,
        "{bytes_before} → {bytes_after} bytes"
    );
    let samples = parse(&after);
    assert_eq!(
        get(
            &samples,
            r#"latchkey_http_requests_total{method="other",route="/health/live",status="405"}"#
        ),
        2_020.0
    );
    assert!(!after.contains("INVENTED"));
    assert!(!after.contains("urn:invented"));
    assert!(!after.contains("/no/such/path"));
    server.stop().await;
}

/// On a public (non-loopback) listener, `/metrics` and the OpenAPI document
/// are served only on the metrics listener, unless configured otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_stay_off_a_public_listener() {
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    let public = TestServer::start_on(
        Engine::Sqlite,
        Options {
            public_listener: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(status(public.url("/health/live")).await, 200);
    assert_eq!(status(public.url("/metrics")).await, 404);
    assert_eq!(status(public.url("/admin/v1/openapi.json")).await, 404);
    public.stop().await;

    let with_listener = TestServer::start_on(
        Engine::Sqlite,
        Options {
            public_listener: true,
            metrics_listener: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let internal = with_listener.metrics_base().unwrap();
    assert_eq!(status(with_listener.url("/metrics")).await, 404);
    assert_eq!(
        status(with_listener.url("/admin/v1/openapi.json")).await,
        404
    );
    assert_eq!(status(format!("{internal}/metrics")).await, 200);
    assert_eq!(
        status(format!("{internal}/admin/v1/openapi.json")).await,
        200
    );
    with_listener.stop().await;

    let switched_on = TestServer::start_on(
        Engine::Sqlite,
        Options {
            public_listener: true,
            internal_endpoints_on_listen: Some(true),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(status(switched_on.url("/metrics")).await, 200);
    assert_eq!(status(switched_on.url("/admin/v1/openapi.json")).await, 200);
    switched_on.stop().await;
}
