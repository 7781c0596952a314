//! Grant throughput benchmark: drives a real `latchkey serve` process over
//! loopback and prints, per figure, requests/s, p50/p99 latency and the
//! server's CPU-milliseconds per request (from /proc, since the load
//! generator shares the machine).
//!
//!     cargo bench -p latchkey --bench grants
//!
//! Environment: LATCHKEY_BENCH_SECONDS (default 10) per figure,
//! LATCHKEY_BENCH_CONNECTIONS (default 16), LATCHKEY_BENCH_ONLY
//! (`password`, `refresh` or `client_timing`, to run one part, e.g. under
//! a profiler), LATCHKEY_BENCH_BIN (measure another build of latchkey).
//!
//! Figures:
//! 1. concurrent password grants, against the raw argon2id verify rate with
//!    the same parameters on as many threads as the server's hash pool
//!    (the grant should cost little beyond its hash);
//! 2. refresh grants with rotation, each connection following its own
//!    token chain, persisted in SQLite, with ES256 keys (also at four
//!    times the connections, and, for comparison, with EdDSA and RS256).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use support::load::{PASSWORD, Step, grant_domain, password_body, run_load};
use support::{HttpConnection, Server, env_number};

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not run us.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds = env_number("LATCHKEY_BENCH_SECONDS", 10);
    let connections = env_number("LATCHKEY_BENCH_CONNECTIONS", 16) as usize;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    println!(
        "latchkey grant benchmark: {cores} cores, {connections} connections, {seconds} s per figure\n"
    );

    let only = std::env::var("LATCHKEY_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "refresh" {
        let server = Server::start("ES256", &grant_domain(connections));
        let floor = run_load(&server, connections, seconds, |_| Step::Baseline);
        println!(
            "{}",
            floor.line(
                "baseline: authenticated request refused before any grant (HTTP + client auth)"
            )
        );
        println!();
    }
    if only.is_empty() || only == "client_timing" {
        client_id_timing(seconds);
    }
    if only.is_empty() || only == "password" {
        password_figure(connections, seconds, cores);
    }
    if !(only.is_empty() || only == "refresh") {
        return;
    }

    for alg in ["ES256", "EdDSA", "RS256"] {
        let server = Server::start(alg, &grant_domain(connections));
        let refresh = run_load(&server, connections, seconds, |_| Step::FirstLogin);
        let label = format!("refresh grant with rotation, {alg}, SQLite");
        println!("{}", refresh.line(&label));
        if alg == "ES256" {
            println!("  target: >= 10000 req/s, <= 0.15 server CPU-ms per refresh");
            // More clients at once: SQLite's refresh batches grow, and the
            // rate is no longer bound by one batch's round trip.
            let many = connections * 4;
            let server = Server::start(alg, &grant_domain(many));
            let refresh = run_load(&server, many, seconds, |_| Step::FirstLogin);
            let label = format!("refresh grant with rotation, {alg}, SQLite, {many} connections");
            println!("{}\n", refresh.line(&label));
        }
    }
}

/// Whether a client_id exists must not show in timing: an unknown
/// client_id against a known one with a wrong secret, requests interleaved
/// on one connection (so both see the same machine), medians compared.
fn client_id_timing(seconds: u64) {
    let server = Server::start("ES256", &grant_domain(1));
    let unknown = format!("Basic {}", STANDARD.encode("nobody:not-the-secret"));
    let wrong = format!("Basic {}", STANDARD.encode("bench:not-the-secret"));
    let body = password_body(0, false);
    let mut conn = HttpConnection::open(server.addr);
    let (mut unknown_times, mut wrong_times) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        for (authorization, times) in [(&unknown, &mut unknown_times), (&wrong, &mut wrong_times)] {
            let t = Instant::now();
            conn.post_token(authorization, &body, 401)
                .expect("invalid_client");
            times.push(t.elapsed());
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };
    let (u, w) = (median(&mut unknown_times), median(&mut wrong_times));
    println!(
        "client_id timing: median unknown client_id {:.1} µs, known client_id with a wrong secret {:.1} µs, over {} each\n  ratio unknown/known = {:.3} (target within 1.00 ± 0.05)\n",
        u * 1e6,
        w * 1e6,
        unknown_times.len(),
        u / w
    );
}

/// Password grants against the raw argon2id rate, measured before and
/// after the load and averaged (the machine's speed drifts).
fn password_figure(connections: usize, seconds: u64, cores: usize) {
    let half = seconds / 2 + 1;
    let (raw_before, floor_before) = (
        raw_argon2_rate(cores, half, false),
        raw_argon2_rate(cores, half, true),
    );
    let server = Server::start("ES256", &grant_domain(connections));
    let password = run_load(&server, connections, seconds, |_| Step::Password);
    drop(server);
    let (raw_after, floor_after) = (
        raw_argon2_rate(cores, half, false),
        raw_argon2_rate(cores, half, true),
    );
    let raw = (raw_before + raw_after) / 2.0;
    let floor = (floor_before + floor_after) / 2.0;
    println!(
        "{}",
        password.line("password grant (argon2id m=19456 t=2 p=1)")
    );
    println!(
        "raw argon2id verify (the argon2 crate's verify_password), {cores} threads: {raw:.1}/s (before {raw_before:.1}, after {raw_after:.1})"
    );
    println!(
        "argon2id floor (memory reused, as Latchkey's workers do), {cores} threads: {floor:.1}/s (before {floor_before:.1}, after {floor_after:.1})"
    );
    let spread = password.p99().as_secs_f64() / password.p50().as_secs_f64();
    println!(
        "  ratio grant/raw = {:.3} (target >= 0.95); grant/floor = {:.3}; p99/p50 = {spread:.2} (target <= 1.3)\n",
        password.rate() / raw,
        password.rate() / floor
    );
}

/// argon2id verifications per second with the server's default
/// parameters, on `threads` threads, with nothing else running.
fn raw_argon2_rate(threads: usize, seconds: u64, reuse_memory: bool) -> f64 {
    let params = Params::new(19_456, 2, 1, None).unwrap();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = argon2
        .hash_password(PASSWORD.as_bytes())
        .unwrap()
        .to_string();
    let salt = [7u8; 16];
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (argon2, hash, stop) = (argon2.clone(), hash.clone(), stop.clone());
            let blocks = params.block_count();
            std::thread::spawn(move || {
                let mut memory = vec![Block::default(); if reuse_memory { blocks } else { 0 }];
                let mut out = [0u8; 32];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if reuse_memory {
                        // The argon2 computation alone, memory allocated
                        // once per thread, as Latchkey's hash workers do.
                        argon2
                            .hash_password_into_with_memory(
                                PASSWORD.as_bytes(),
                                &salt,
                                &mut out,
                                &mut memory[..],
                            )
                            .unwrap();
                    } else {
                        // The crate's own verify: parses, allocates 19 MiB.
                        argon2
                            .verify_password(PASSWORD.as_bytes(), hash.as_str())
                            .unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}
