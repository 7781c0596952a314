//! The server's log, read as an operator's log shipper reads it: from a
//! real `latchkey serve` process's standard error, in both formats.
//! Values from requests cannot forge log lines, and a failure is logged
//! once.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const OPS_SECRET: &str = "ops-secret-0123456789abcdef";

/// A trusted app holding an administrator role, for admin API tokens.
const DOMAIN: &str = r#"
[[apps]]
name = "Ops"
client_id = "ops"
type = "trusted"
client_secret = "ops-secret-0123456789abcdef"
grant_types = ["client_credentials"]
scopes = ["urn:opc:idm:__myscopes__"]
app_roles = ["Identity Domain Administrator"]

[[apps]]
name = "Mobile"
client_id = "mobile"
type = "confidential"
client_secret = "mobile-secret-0123456789abcdef"
grant_types = ["password"]
scopes = ["openid"]

[[users]]
username = "alice"
password = "correct horse battery staple"
"#;

struct LoggedServer {
    dir: PathBuf,
    child: Child,
    base: String,
    log: PathBuf,
}

impl LoggedServer {
    fn start(global_args: &[&str], extra: &[&str]) -> LoggedServer {
        Self::start_with(global_args, &[], extra)
    }

    /// `apply_args` go to `latchkey apply` (e.g. the hashing cost of the
    /// users it creates).
    fn start_with(global_args: &[&str], apply_args: &[&str], extra: &[&str]) -> LoggedServer {
        let dir = std::env::temp_dir().join(format!(
            "latchkey-logs-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}/data/latchkey.db", dir.display());
        let domain = dir.join("domain.toml");
        std::fs::write(&domain, DOMAIN).unwrap();
        let applied = Command::new(BIN)
            .args(["apply", domain.to_str().unwrap()])
            .args(apply_args)
            .env("LATCHKEY_DATABASE_URL", &db)
            .env("LATCHKEY_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("server.log");
        let child = Command::new(BIN)
            .args(global_args)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("LATCHKEY_DATABASE_URL", &db)
            .env("LATCHKEY_LOG", "info")
            .env("LATCHKEY_ADMIN_PASSWORD", "admin-password-for-logs")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = LoggedServer {
            dir,
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not start: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server with SIGTERM and returns its log.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn admin_token(client: &reqwest::Client, server: &LoggedServer) -> String {
    let answer: serde_json::Value = client
        .post(server.url("/oauth2/v1/token"))
        .basic_auth("ops", Some(OPS_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "urn:opc:idm:__myscopes__"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

/// What an attacker would put after the newline: a whole line of its own,
/// in the text format's shape.
const FORGED: &str = "2030-01-01T00:00:00.000000Z ERROR latchkey: forged";

/// Sends the request-derived values that reach the log: a SCIM schema id
/// (in the error detail) and a client_id (in the request's span).
fn send_injections(server: &LoggedServer) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let token = admin_token(&client, server).await;
        let schema = server.url(&format!(
            "/admin/v1/Schemas/urn:x%0A{}-schema",
            FORGED.replace(' ', "%20")
        ));
        let answer = client.get(schema).bearer_auth(&token).send().await.unwrap();
        // The path guard refuses a control character before any handler
        // (400); what it logs of the path must stay one line all the same.
        assert_eq!(answer.status().as_u16(), 400);
        let answer = client
            .post(server.url("/oauth2/v1/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &format!("evil\n{FORGED}-client")),
                ("client_secret", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 401);
    });
}

#[test]
fn request_values_cannot_forge_text_log_lines() {
    let mut server = LoggedServer::start(&[], &[]);
    send_injections(&server);
    let log = server.stop();
    assert!(!log.contains('\u{1b}'), "no terminal colours in a file");
    for line in log.lines() {
        assert!(
            !line.starts_with("2030-"),
            "a request forged a log line:\n{line}"
        );
    }
    // The schema id never reaches a handler (the path guard refuses the
    // control character first): it is logged as the request's path, still
    // percent-encoded, inside a real line.
    assert!(
        log.lines()
            .any(|l| l.contains("urn:x%0A") && l.contains("forged-schema")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&format!(r"\n{FORGED}")) && l.contains("forged-client")),
        "forged-client was logged, its newline escaped inside a real line:\n{log}"
    );
}

#[test]
fn request_values_stay_inside_their_json_fields() {
    let mut server = LoggedServer::start(&["--log-format", "json"], &[]);
    send_injections(&server);
    let log = server.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a line that is no JSON ({e}): {line}"))
        })
        .collect();
    let decoded = |event: &serde_json::Value, marker: &str| {
        [&event["fields"]["detail"], &event["span"]["client_id"]]
            .iter()
            .filter_map(|v| v.as_str())
            .any(|v| v.contains(&format!("\n{FORGED}")) && v.contains(marker))
    };
    assert!(
        events.iter().any(|e| decoded(e, "forged-client")),
        "forged-client was logged as one JSON string, newline and all:\n{log}"
    );
    assert!(
        events.iter().any(|e| e["span"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("urn:x%0A") && p.contains("forged-schema"))),
        "forged-schema was logged as the request's encoded path:\n{log}"
    );
}

/// A 503 (here: the password-hash queue full) is one ERROR line, with its
/// cause, beside the request's own line; not a second ERROR from the
/// HTTP tracing layer.
#[test]
fn a_503_is_logged_once() {
    // A costly stored hash, one worker and no queue: of requests sent
    // together, all but the first are refused at once.
    let mut server = LoggedServer::start_with(
        &["--log-format", "json"],
        &[
            "--set",
            "hashing.memory_kib=65536",
            "--set",
            "hashing.iterations=12",
        ],
        &["--set", "hashing.workers=1", "--set", "hashing.max_queue=0"],
    );
    let statuses: Vec<(String, u16)> = runtime().block_on(async {
        let client = reqwest::Client::new();
        let requests = (0..8).map(|i| {
            let (client, url) = (client.clone(), server.url("/oauth2/v1/token"));
            async move {
                let id = format!("flood-{i}");
                let answer = client
                    .post(url)
                    .basic_auth("mobile", Some("mobile-secret-0123456789abcdef"))
                    .header("x-request-id", &id)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", "correct horse battery staple"),
                    ])
                    .send()
                    .await
                    .unwrap();
                (id, answer.status().as_u16())
            }
        });
        futures_join(requests.collect()).await
    });
    let log = server.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("({e}) {l}")))
        .collect();
    let busy: Vec<&String> = statuses
        .iter()
        .filter(|(_, status)| *status == 503)
        .map(|(id, _)| id)
        .collect();
    assert!(busy.len() >= 5, "{statuses:?}");
    for id in busy {
        let errors: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["level"] == "ERROR" && e["span"]["request_id"] == id.as_str())
            .collect();
        assert_eq!(errors.len(), 1, "{id}: {errors:#?}");
        assert_eq!(errors[0]["fields"]["error"], "temporarily_unavailable");
    }
}

/// Runs the futures together on the current thread.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    tokio::task::LocalSet::new()
        .run_until(async move {
            let handles: Vec<_> = futures.into_iter().map(tokio::task::spawn_local).collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        })
        .await
}
