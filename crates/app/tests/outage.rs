//! A PostgreSQL outage, end to end: a `latchkey serve` process on a
//! throwaway PostgreSQL server that the test starts, stops and starts
//! again. While the database is down, requests that need it get 503
//! within a bounded time (never a 500, never a hang) and readiness fails;
//! what needs no database (liveness, the JWKS) keeps answering; when the
//! database returns, the node recovers by itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// A PostgreSQL server of the test's own: `initdb` into a scratch folder,
/// `pg_ctl` to start and stop it, on a free port.
struct ThrowawayPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl ThrowawayPostgres {
    /// `None` when no PostgreSQL binaries are installed (and not required).
    fn create() -> Option<ThrowawayPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max();
        let Some(bin) = bin else {
            assert!(
                std::env::var("LATCHKEY_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "LATCHKEY_REQUIRE_POSTGRES=1 but no initdb under /usr/lib/postgresql"
            );
            eprintln!("NOTICE: no PostgreSQL binaries; skipping the outage test");
            return None;
        };
        let data = std::env::temp_dir().join(format!(
            "latchkey-outage-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&data).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = ThrowawayPostgres { bin, data, port };
        pg.own(&pg.data);
        let out = pg
            .command("initdb")
            .args([
                "-D",
                pg.data_dir(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(pg)
    }

    fn data_dir(&self) -> &str {
        self.data.to_str().unwrap()
    }

    fn as_root() -> bool {
        // PostgreSQL refuses to run as root: then run it as `postgres`.
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn own(&self, path: &Path) {
        if Self::as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", path.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data_dir()
        );
        let out = self
            .command("pg_ctl")
            .args(["-D", self.data_dir(), "-o", &options, "-l"])
            .arg(self.data.join("server.log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .args(["-D", self.data_dir(), "-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", self.data_dir(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const DOMAIN: &str = r#"[[resource_servers]]
name = "HR API"
audience = "https://hr.example.com/"
scopes = ["employees.read"]

[[users]]
username = "alice"
password = "correct horse battery staple"

[[apps]]
name = "HR Mobile"
type = "confidential"
client_secret = "hr-mobile-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
"#;

const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn a_postgres_outage_is_503_and_the_node_recovers_by_itself() {
    let Some(pg) = ThrowawayPostgres::create() else {
        return;
    };
    pg.start();
    let domain = pg.data.join("domain.toml");
    std::fs::write(&domain, DOMAIN).unwrap();
    let env = |c: &mut Command| {
        c.env("LATCHKEY_DATABASE_URL", pg.url())
            .env("LATCHKEY_MASTER_KEY", MASTER)
            // Queries give up on an unreachable database after 2 s.
            .env("LATCHKEY_DATABASE__ACQUIRE_TIMEOUT_SECS", "2")
            .env("LATCHKEY_LOG", "warn");
    };
    let mut apply = Command::new(BIN);
    apply.args(["apply", domain.to_str().unwrap()]);
    env(&mut apply);
    let applied = apply.output().unwrap();
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
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    env(&mut serve);
    let _node = Node(serve.spawn().unwrap());
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the node did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Bounded: a request that hangs fails the test instead of the run.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "hr-mobile:hr-mobile-secret-0123456789"
            )
        );
        let token = |body: String| {
            let request = client
                .post(url("/oauth2/v1/token"))
                .header("authorization", &basic)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send();
            async move {
                let response = request.await.expect("an answer, not a hang");
                let status = response.status().as_u16();
                let retry_after = response.headers().get("retry-after").is_some();
                let body: serde_json::Value = response.json().await.unwrap();
                (status, retry_after, body)
            }
        };
        let sign_in =
            || token("grant_type=password&username=alice&password=correct+horse+battery+staple&scope=offline_access".into());
        let status_of = |path: &'static str| {
            let request = client.get(url(path)).send();
            async move { request.await.expect("an answer").status().as_u16() }
        };

        let (status, _, tokens) = sign_in().await;
        assert_eq!(status, 200, "{tokens}");
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(status_of("/health/ready").await, 200);

        pg.stop();
        let down = Instant::now();

        let asked = Instant::now();
        let (status, retry_after, body) = sign_in().await;
        assert_eq!((status, body["error"].as_str()), (503, Some("temporarily_unavailable")), "{body}");
        assert!(retry_after, "503 says when to retry");
        // One wait for the database, not two: the refusal's audit event
        // is queued, not waited for (it once took 2 × the acquire timeout).
        assert!(
            asked.elapsed() < Duration::from_millis(3500),
            "the 503 took {:?} with a 2 s acquire timeout",
            asked.elapsed()
        );
        let (status, _, body) = token(format!("grant_type=refresh_token&refresh_token={refresh}")).await;
        assert_eq!(status, 503, "{body}");
        let asked = Instant::now();
        assert_eq!(status_of("/health/ready").await, 503);
        assert!(asked.elapsed() < Duration::from_secs(5), "readiness answers within its bound");
        assert_eq!(status_of("/health/live").await, 200, "the process itself is fine");
        assert_eq!(status_of("/oauth2/v1/keys").await, 200, "keys are served from memory");
        let metrics = status_of("/metrics").await;
        assert_eq!(metrics, 200, "metrics answer while the database does not");

        assert!(down.elapsed() < Duration::from_secs(20), "every answer was bounded by the acquire timeout");
        pg.start();

        // The pool reconnects by itself: no restart, no manual step.
        let started = Instant::now();
        while status_of("/health/ready").await != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "the node did not recover");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, _, body) = sign_in().await;
        assert_eq!(status, 200, "{body}");
        // The sign-in refused during the outage reaches the audit trail
        // once the database is back: queued, retried, not lost.
        let store = latchkey_store::open(&pg.url(), 1).await.unwrap();
        let started = Instant::now();
        loop {
            let events = store
                .repos
                .audit
                .query(&latchkey_core::audit::AuditQuery {
                    event_type: Some("user.signin".into()),
                    start_index: 1,
                    count: 100,
                    ..Default::default()
                })
                .await
                .unwrap();
            if events.items.iter().any(|e| {
                e.outcome == "failure"
                    && e.detail.as_deref() == Some("not checked (temporarily_unavailable)")
            }) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the event recorded during the outage was lost: {:?}",
                events.items
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        store.close().await;
        // The session from before the outage lives on.
        let (status, _, body) = token(format!("grant_type=refresh_token&refresh_token={refresh}")).await;
        assert_eq!(status, 200, "{body}");
    });
}
