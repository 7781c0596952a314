//! The console in a real headless Chromium: starts `latchkey serve --demo`
//! and runs tests/browser/console.test.mjs (playwright-core driving
//! Debian's chromium) against it. Skips with a notice when node, chromium
//! or tests/browser/node_modules is missing, unless
//! LATCHKEY_REQUIRE_BROWSER=1 (CI sets it; see .ci/run).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const ADMIN_PASSWORD: &str = "browser-test-admin-password";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What is missing to run the browser tests, if anything.
fn missing(browser_dir: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    let chromium =
        std::env::var("LATCHKEY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing"));
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is missing (run npm ci there)".into());
    }
    None
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_console_works_in_a_real_browser() {
    let browser_dir = workspace().join("tests/browser");
    if let Some(why) = missing(&browser_dir) {
        if std::env::var("LATCHKEY_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("LATCHKEY_REQUIRE_BROWSER=1 but {why}");
        }
        eprintln!("NOTICE: {why}; skipping the browser tests of the console");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("latchkey-browser-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(BIN)
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "LATCHKEY_DATABASE_URL",
                format!("sqlite://{}/latchkey.db", scratch.display()),
            )
            .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LATCHKEY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    // The listener opens once the database, keys and demo are ready.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let screenshots = workspace().join("target/console-screenshots");
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(&browser_dir)
        .env("LATCHKEY_CONSOLE_URL", &base)
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LATCHKEY_SCREENSHOTS", &screenshots)
        .output()
        .unwrap();
    let mut server = server;
    let _ = server.0.kill();
    let mut log = String::new();
    if let Some(mut stderr) = server.0.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser tests failed:\n{report}\nserver log:\n{log}"
    );
    println!("screenshots: {}", screenshots.display());
}
