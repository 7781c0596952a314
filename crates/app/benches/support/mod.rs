//! What the benchmarks share: a real `latchkey serve` process on a fresh
//! SQLite database, a minimal keep-alive HTTP client, and latency
//! statistics.

#![allow(dead_code)] // each benchmark uses its own part

pub mod load;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// The binary to measure: `LATCHKEY_BENCH_BIN` (e.g. another checkout's
/// build, for a before/after figure), else the one built with the bench.
pub fn bin() -> String {
    std::env::var("LATCHKEY_BENCH_BIN").unwrap_or_else(|_| BIN.to_owned())
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `latchkey serve` process on a fresh SQLite database.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    dir: std::path::PathBuf,
}

impl Server {
    /// Applies `domain` to a fresh database, then starts the server
    /// with `alg` signing keys and the rate limits lifted.
    pub fn start(alg: &str, domain: &str) -> Server {
        Self::start_full(alg, domain, "", &[])
    }

    /// `start`, with `extra` appended to the server's config file (TOML
    /// sections other than `[database]` and `[rate_limit]`; `[database]`
    /// options go through `LATCHKEY_DATABASE__*` in `env`) and `env` added
    /// to its environment.
    pub fn start_full(alg: &str, domain: &str, extra: &str, env: &[(&str, &str)]) -> Server {
        let dir = std::env::temp_dir().join(format!("latchkey-bench-{}-{alg}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}/latchkey.db", dir.display());
        let file = dir.join("domain.toml");
        std::fs::write(&file, domain).unwrap();
        let master = STANDARD.encode([7u8; 32]);
        let status = Command::new(bin())
            .args(["apply", file.to_str().unwrap()])
            .env("LATCHKEY_DATABASE_URL", &db)
            .env("LATCHKEY_MASTER_KEY", &master)
            .stdout(Stdio::null())
            .status()
            .expect("run latchkey apply");
        assert!(status.success(), "latchkey apply failed");
        let config = dir.join("latchkey.toml");
        let db_connections = env_number("LATCHKEY_BENCH_DB_CONNECTIONS", 4);
        std::fs::write(
            &config,
            format!(
                "[database]\nmax_connections = {db_connections}\n\n\
                 # The load comes from one address: lift the per-IP and per-client limits.\n\
                 [rate_limit]\nper_ip = {{ per_second = 1000000, burst = 1000000 }}\n\
                 per_client = {{ per_second = 1000000, burst = 1000000 }}\n\n{extra}\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                &addr.to_string(),
                "--config",
                config.to_str().unwrap(),
            ])
            .env("LATCHKEY_DATABASE_URL", &db)
            .env("LATCHKEY_MASTER_KEY", &master)
            .env("LATCHKEY_KEY_ALGORITHM", alg)
            .env("LATCHKEY_ADMIN_PASSWORD", "bench-admin-password")
            .env("LATCHKEY_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("start latchkey serve");
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, addr, dir }
    }

    /// The SQLite write-ahead log beside the server's database.
    pub fn wal_path(&self) -> std::path::PathBuf {
        self.dir.join("latchkey.db-wal")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the server process, in milliseconds.
    pub fn cpu_ms(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        ticks * 1000.0 / clock_ticks_per_second()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Results {
    /// Sorted.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    pub cpu_ms: f64,
    pub errors: usize,
}

impl Results {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    pub fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
    pub fn p50(&self) -> Duration {
        self.percentile(0.50)
    }
    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }
    pub fn p999(&self) -> Duration {
        self.percentile(0.999)
    }
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label}: {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, server CPU {:.3} ms/req ({} requests, {} errors)",
            self.rate(),
            self.p50().as_secs_f64() * 1000.0,
            self.p99().as_secs_f64() * 1000.0,
            self.cpu_ms / self.latencies.len().max(1) as f64,
            self.latencies.len(),
            self.errors,
        )
    }
}

/// A minimal HTTP/1.1 keep-alive client: the load generator must cost far
/// less than the server it measures.
pub struct HttpConnection {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl HttpConnection {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        HttpConnection {
            stream,
            addr,
            buf: Vec::with_capacity(4096),
        }
    }

    /// POSTs a token request; the body of an answer with the `expected`
    /// status, `None` otherwise.
    pub fn post_token(&mut self, authorization: &str, body: &str, expected: u16) -> Option<String> {
        let request = format!(
            "POST /oauth2/v1/token HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n\
             Content-Type: application/x-www-form-urlencoded;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        if self.stream.write_all(request.as_bytes()).is_err() {
            *self = HttpConnection::open(self.addr);
            return None;
        }
        let (status, body) = self.read_response()?;
        (status == expected).then_some(body)
    }

    /// POSTs a token request with `headers` added; the status and body.
    pub fn post_token_with(
        &mut self,
        authorization: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Option<(u16, String)> {
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let request = format!(
            "POST /oauth2/v1/token HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n{extra}\
             Content-Type: application/x-www-form-urlencoded;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        if self.stream.write_all(request.as_bytes()).is_err() {
            *self = HttpConnection::open(self.addr);
            return None;
        }
        self.read_response()
    }

    /// GETs `path` with `authorization`; the status and body.
    pub fn get(&mut self, path: &str, authorization: &str) -> Option<(u16, String)> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n\r\n",
            self.addr
        );
        if self.stream.write_all(request.as_bytes()).is_err() {
            *self = HttpConnection::open(self.addr);
            return None;
        }
        self.read_response()
    }

    pub fn read_response(&mut self) -> Option<(u16, String)> {
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..header_end])
            .ok()?
            .to_owned();
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().ok())
        })??;
        while self.buf.len() < header_end + length {
            let n = self.stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8(self.buf[header_end..header_end + length].to_vec()).ok()?;
        Some((status, body))
    }
}
