//! The load the benchmarks share: a bench domain, and connections that
//! each send one kind of token request as fast as they are answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{HttpConnection, Results, Server};

pub const SECRET: &str = "bench-client-secret-0123456789";
pub const PASSWORD: &str = "bench password 0123";
pub const AUDIENCE: &str = "https://api.bench.example/";

/// A resource server, the bench app, and `users` users.
pub fn grant_domain(users: usize) -> String {
    let mut domain = format!(
        "[[resource_servers]]\nname = \"Bench API\"\naudience = \"{AUDIENCE}\"\nscopes = [\"read\"]\n\n\
         [[apps]]\nname = \"Bench\"\nclient_id = \"bench\"\ntype = \"trusted\"\nclient_secret = \"{SECRET}\"\n\
         grant_types = [\"password\", \"refresh_token\"]\nscopes = [\"{AUDIENCE}read\", \"offline_access\"]\n\n"
    );
    for i in 0..users {
        domain.push_str(&format!(
            "[[users]]\nusername = \"user{i}\"\npassword = \"{PASSWORD}\"\n\n"
        ));
    }
    domain
}

/// What a connection sends next.
pub enum Step {
    /// An unsupported grant type from an authenticated client: the HTTP
    /// stack, form parsing and client authentication, nothing else.
    Baseline,
    Password,
    FirstLogin,
    Refresh(String),
}

/// Runs `connections` client threads for `seconds`, each with one
/// keep-alive connection, and measures.
pub fn run_load(
    server: &Server,
    connections: usize,
    seconds: u64,
    first: impl Fn(usize) -> Step,
) -> Results {
    let stop = Arc::new(AtomicBool::new(false));
    let basic = format!("Basic {}", STANDARD.encode(format!("bench:{SECRET}")));
    // Warm-up: each connection's first login happens before the clock runs.
    let mut clients: Vec<(HttpConnection, Step)> = (0..connections)
        .map(|i| {
            let mut conn = HttpConnection::open(server.addr);
            let step = match first(i) {
                Step::FirstLogin => {
                    let body = password_body(i, true);
                    let json = conn.post_token(&basic, &body, 200).expect("first login");
                    Step::Refresh(json_field(&json, "refresh_token").expect("a refresh token"))
                }
                other => other,
            };
            (conn, step)
        })
        .collect();
    let cpu_before = server.cpu_ms();
    let started = Instant::now();
    let handles: Vec<_> = clients
        .drain(..)
        .enumerate()
        .map(|(i, (mut conn, mut step))| {
            let stop = stop.clone();
            let basic = basic.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = match &step {
                        Step::Baseline => "grant_type=urn%3Abench%3Anone".to_owned(),
                        Step::Password | Step::FirstLogin => password_body(i, false),
                        Step::Refresh(token) => {
                            format!("grant_type=refresh_token&refresh_token={token}")
                        }
                    };
                    let t = Instant::now();
                    let expected = if matches!(step, Step::Baseline) {
                        400
                    } else {
                        200
                    };
                    match conn.post_token(&basic, &body, expected) {
                        Some(json) => {
                            latencies.push(t.elapsed());
                            if let Step::Refresh(token) = &mut step {
                                match json_field(&json, "refresh_token") {
                                    Some(next) => *token = next,
                                    None => errors += 1,
                                }
                            }
                        }
                        None => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu_ms = server.cpu_ms() - cpu_before;
    latencies.sort();
    Results {
        latencies,
        elapsed,
        cpu_ms,
        errors,
    }
}

pub fn password_body(i: usize, offline: bool) -> String {
    let scope = if offline {
        "https%3A%2F%2Fapi.bench.example%2Fread%20offline_access"
    } else {
        "https%3A%2F%2Fapi.bench.example%2Fread"
    };
    format!("grant_type=password&username=user{i}&password=bench+password+0123&scope={scope}")
}

/// The value of a top-level string member of a flat JSON object.
pub fn json_field(json: &str, name: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}
