//! SCIM directory benchmark: seeds 100,000 users (SQLite), then drives the
//! real server's `/admin/v1/Users` over one keep-alive connection and
//! prints p50/p99 latency per query shape.
//!
//!     cargo bench -p latchkey --bench directory
//!
//! Environment: LATCHKEY_BENCH_USERS (default 100000),
//! LATCHKEY_BENCH_REQUESTS per figure (default 2000).
//! Target: p50 under 5 ms for `userName eq` and for a page of 100.

mod support;

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use support::{HttpConnection, Results, Server, env_number};

const SECRET: &str = "bench-client-secret-0123456789";
const ADMIN_PASSWORD: &str = "bench-admin-password";

/// The admin app, and `users` users without passwords (they only need
/// to exist; hashing 100,000 passwords would measure argon2).
fn directory_domain(users: usize) -> String {
    let mut domain = format!(
        "[[apps]]\nname = \"Bench Console\"\nclient_id = \"console\"\ntype = \"trusted\"\n\
         client_secret = \"{SECRET}\"\ngrant_types = [\"password\"]\n\
         scopes = [\"urn:opc:idm:__myscopes__\"]\napp_roles = [\"Identity Domain Administrator\"]\n\n"
    );
    for i in 0..users {
        domain.push_str(&format!(
            "[[users]]\nusername = \"user{i:06}\"\ngiven_name = \"Given{}\"\nfamily_name = \"Family{}\"\n\
             email = \"user{i:06}@example.com\"\n\n",
            i % 997,
            i % 1000
        ));
    }
    domain
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let users = env_number("LATCHKEY_BENCH_USERS", 100_000) as usize;
    let requests = env_number("LATCHKEY_BENCH_REQUESTS", 2000) as usize;
    println!(
        "latchkey directory benchmark: {users} users, {requests} requests per figure, SQLite\n"
    );
    let seeding = Instant::now();
    let server = Server::start("ES256", &directory_domain(users));
    println!(
        "seeded in {:.1} s (latchkey apply)\n",
        seeding.elapsed().as_secs_f64()
    );

    let mut conn = HttpConnection::open(server.addr);
    let basic = format!("Basic {}", STANDARD.encode(format!("console:{SECRET}")));
    let body = format!(
        "grant_type=password&username=admin&password={ADMIN_PASSWORD}&scope=urn%3Aopc%3Aidm%3A__myscopes__"
    );
    let json = conn.post_token(&basic, &body, 200).expect("an admin token");
    let token: serde_json::Value = serde_json::from_str(&json).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let figures: [(&str, PathOf); 5] = [
        ("userName eq (one user by name)", |r, n| {
            format!(
                "/admin/v1/Users?filter=userName%20eq%20%22user{:06}%22",
                r.below(n)
            )
        }),
        ("the first page of 100 (startIndex=1)", |_, _| {
            "/admin/v1/Users?startIndex=1&count=100".to_owned()
        }),
        (
            "a page of 100 at a random depth (OFFSET up to 100,000)",
            |r, n| {
                format!(
                    "/admin/v1/Users?startIndex={}&count=100",
                    1 + r.below(n.saturating_sub(100).max(1))
                )
            },
        ),
        ("emails eq (one user by email, case-insensitive)", |r, n| {
            format!(
                "/admin/v1/Users?filter=emails%20eq%20%22USER{:06}@EXAMPLE.COM%22",
                r.below(n)
            )
        }),
        (
            "name.familyName eq, sorted by userName, page of 100",
            |r, _| {
                format!(
                    "/admin/v1/Users?filter=name.familyName%20eq%20%22Family{}%22&sortBy=userName&count=100",
                    r.below(1000)
                )
            },
        ),
    ];
    for (label, path) in figures {
        measure(&server, &mut conn, &bearer, requests, label, || {
            path(&mut rng, users)
        });
    }
    // Deep pages by cursor (RFC 9865): the page after a random user, an
    // index seek instead of an OFFSET walk.
    let cursors: Vec<String> = (0..100)
        .filter_map(|_| {
            let path = format!(
                "/admin/v1/Users?startIndex={}&count=1&attributes=id",
                1 + rng.below(users)
            );
            let (_, body) = conn.get(&path, &bearer)?;
            let json: serde_json::Value = serde_json::from_str(&body).ok()?;
            let id = json["Resources"][0]["id"].as_str()?.to_owned();
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
        })
        .collect();
    let mut next = 0;
    measure(
        &server,
        &mut conn,
        &bearer,
        requests,
        "a page of 100 at a random depth by cursor (RFC 9865)",
        || {
            next += 1;
            format!(
                "/admin/v1/Users?cursor={}&count=100",
                cursors[next % cursors.len()]
            )
        },
    );
    println!("\n  target: p50 < 5 ms for userName eq and for a page of 100");
    drop(conn);
}

/// Sends `requests` GETs one at a time (latency, not throughput) after a
/// warm-up, and prints the figure.
fn measure(
    server: &Server,
    conn: &mut HttpConnection,
    bearer: &str,
    requests: usize,
    label: &str,
    mut path: impl FnMut() -> String,
) {
    for _ in 0..50 {
        conn.get(&path(), bearer);
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    let cpu_before = server.cpu_ms();
    let started = Instant::now();
    for _ in 0..requests {
        let p = path();
        let t = Instant::now();
        match conn.get(&p, bearer) {
            Some((200, _)) => latencies.push(t.elapsed()),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let results = Results {
        latencies,
        elapsed,
        cpu_ms: server.cpu_ms() - cpu_before,
        errors,
    };
    println!("{}", results.line(label));
}

/// Builds a request path from a random source and the user count.
type PathOf = fn(&mut XorShift, usize) -> String;

/// Spreads the lookups without a dependency.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}
