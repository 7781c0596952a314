//! Connection limits below HTTP: sockets that send nothing, only the
//! HTTP/2 preface, or go quiet after a request are closed after their
//! timeouts (also after TLS), the handshake itself is bounded, and the
//! connection cap holds while ordinary requests are still served.

use std::time::{Duration, Instant};

use latchkey::connections::CloseReason;
use latchkey_testkit::{Engine, Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const LIVE: &[u8] = b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n";

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.addr()).await.unwrap()
}

/// Reads until the server closes the connection; panics if it has not
/// within `within`. Returns what it sent.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open for {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1 response head (the endpoints used here answer with a
/// small body in the same packet).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn live(server: &TestServer) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .get(server.url("/health/live"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_while_requests_still_succeed() {
    let options = Options {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 4,
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    let started = Instant::now();
    let mut silent = Vec::new();
    let mut prefaces = Vec::new();
    for _ in 0..40 {
        silent.push(connect(&server).await);
        let mut h2 = connect(&server).await;
        h2.write_all(PREFACE).await.unwrap();
        prefaces.push(h2);
    }
    // Keep-alive connections that made one request and then go quiet.
    let mut quiet = Vec::new();
    for _ in 0..10 {
        let mut stream = connect(&server).await;
        stream.write_all(LIVE).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        quiet.push(stream);
    }
    // Meanwhile, everyone else is served.
    assert_eq!(live(&server).await, 200);

    // Past the header timeout but within the idle timeout, a keep-alive
    // connection still takes a second request.
    let mut kept = connect(&server).await;
    kept.write_all(LIVE).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    kept.write_all(LIVE).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));

    for stream in silent.iter_mut().chain(prefaces.iter_mut()) {
        let said = closed_by_server(stream, Duration::from_secs(10)).await;
        assert!(
            !String::from_utf8_lossy(&said).contains("HTTP/1.1 200"),
            "no request, no answer"
        );
    }
    let first_request_cut = started.elapsed();
    for stream in quiet.iter_mut().chain([&mut kept]) {
        closed_by_server(stream, Duration::from_secs(15)).await;
    }
    let stats = server.connections();
    assert!(
        stats.closed(CloseReason::NoRequest) >= 80,
        "{}",
        stats.closed(CloseReason::NoRequest)
    );
    assert!(stats.closed(CloseReason::Idle) >= 11);
    assert!(
        first_request_cut < Duration::from_secs(10),
        "cut by the 1 s header timeout, not the 4 s idle one ({first_request_cut:?})"
    );
    assert_eq!(live(&server).await, 200);
    server.stop().await;
}

/// A trickle of headers on a kept-alive HTTP/1 connection is cut off by
/// the header timeout (counted from the request's first byte), not the
/// longer idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_trickling_its_headers_is_cut_off() {
    let options = Options {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 60,
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    let mut stream = connect(&server).await;
    stream.write_all(LIVE).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nho")
        .await
        .unwrap();
    closed_by_server(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(server.connections().closed(CloseReason::SlowHeaders), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_idle_connections_make_room() {
    let options = Options {
        max_connections: 8,
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    let stats = server.connections();

    // 30 silent sockets against a cap of 8: each new one takes the place
    // of the one idle the longest, and a request still gets through.
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(connect(&server).await);
    }
    assert_eq!(live(&server).await, 200);
    assert!(stats.open() <= 8, "{} open", stats.open());
    assert!(
        stats.closed(CloseReason::Evicted) >= 23,
        "{}",
        stats.closed(CloseReason::Evicted)
    );
    // The oldest were the ones closed.
    for stream in silent.iter_mut().take(20) {
        closed_by_server(stream, Duration::from_secs(5)).await;
    }
    drop(silent);
    let waited_from = Instant::now();
    while stats.open() > 0 {
        assert!(
            waited_from.elapsed() < Duration::from_secs(10),
            "closed sockets stay open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Eight requests in flight (the handler reads a body that does not
    // come; its `100 Continue` proves it runs): nothing is idle, so a ninth
    // connection waits instead of cutting one of them.
    let mut busy = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(&server).await;
        stream
            .write_all(
                b"POST /oauth2/v1/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 29\r\nexpect: 100-continue\r\n\r\n",
            )
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 100"), "{answer}");
        busy.push(stream);
    }
    let url = server.url("/health/live");
    let ninth = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!ninth.is_finished(), "the cap let a ninth connection in");
    assert!(stats.open() <= 8);
    // One request completes; its connection goes idle and makes room.
    busy[0]
        .write_all(b"grant_type=client_credentials")
        .await
        .unwrap();
    let answer = read_response(&mut busy[0]).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    let status = tokio::time::timeout(Duration::from_secs(10), ninth)
        .await
        .expect("the ninth connection got in once one went idle")
        .unwrap();
    assert_eq!(status, 200);
    // The requests in flight were not cut.
    for stream in busy.iter_mut().skip(1) {
        stream
            .write_all(b"grant_type=client_credentials")
            .await
            .unwrap();
        let answer = read_response(stream).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    server.stop().await;
}

/// Over TLS: a socket that never starts the handshake is closed after the
/// handshake timeout, one that completes it and then sends nothing after
/// the header timeout; HTTPS requests keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_connections_are_closed_before_and_after_the_handshake() {
    let dir = std::env::temp_dir().join(format!("latchkey-tls-idle-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes a test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let options = Options {
        header_read_timeout_secs: 1,
        tls_handshake_timeout_secs: 2,
        tls: Some((cert.clone(), key)),
        ..Options::default()
    };
    let server = TestServer::start_on(Engine::Sqlite, options).await.unwrap();
    assert!(server.base.starts_with("https://"));

    let mut no_handshake = Vec::new();
    for _ in 0..10 {
        no_handshake.push(connect(&server).await);
    }
    // `openssl s_client` completes the handshake, then waits on its stdin
    // (never written): it exits when the server closes the connection.
    let mut handshaken: Vec<_> = (0..5)
        .map(|_| {
            std::process::Command::new("openssl")
                .args(["s_client", "-quiet", "-connect"])
                .arg(server.addr().to_string())
                .arg("-CAfile")
                .arg(&cert)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let curl = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .arg(server.url("/health/live"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");

    for stream in no_handshake.iter_mut() {
        closed_by_server(stream, Duration::from_secs(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for child in handshaken.iter_mut() {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a handshaken idle connection stayed open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let stats = server.connections();
    assert_eq!(stats.closed(CloseReason::TlsHandshake), 10);
    assert!(stats.closed(CloseReason::NoRequest) >= 5);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
