//! The `latchkey` binary, run as a user would run it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// A scratch folder with a database URL inside it.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("latchkey-cli-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }
    fn db(&self) -> String {
        format!("sqlite://{}/data/latchkey.db", self.dir.display())
    }
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("LATCHKEY_DATABASE_URL", self.db())
            .env_remove("LATCHKEY_MASTER_KEY")
            .env("LATCHKEY_LOG", "warn")
            .output()
            .expect("run latchkey")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
"#;

#[test]
fn apply_is_idempotent_and_prints_a_generated_secret_once() {
    let s = Scratch::new();
    let file = s.file("domain.toml", DOMAIN);
    let first = s.run(&["apply", file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    assert!(out.contains("3 created, 0 updated, 0 unchanged"), "{out}");
    assert!(
        out.contains("generated client secret for hr-mobile: "),
        "{out}"
    );
    let show = |s: &Scratch| stdout(&s.run(&["user", "show", "alice", "--output", "json"]));
    let before = show(&s);

    let second = s.run(&["apply", file.to_str().unwrap()]);
    assert!(second.status.success());
    let out = stdout(&second);
    assert!(out.contains("nothing changed (3 unchanged)"), "{out}");
    assert!(
        !out.contains("generated client secret"),
        "a secret is generated once: {out}"
    );
    assert_eq!(show(&s), before, "ids and timestamps are kept");
    let json: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert!(
        json.get("password_hash").is_none(),
        "hashes are never printed"
    );
}

#[test]
fn a_bad_domain_file_names_line_and_field_and_changes_nothing() {
    let s = Scratch::new();
    let bad = DOMAIN.replace(
        "scopes = [\"https://hr.example.com/employees.read\"]",
        "scopes = [\"https://hr.example.com/employees.delete\"]",
    );
    let file = s.file("bad.toml", &bad);
    let out = s.run(&["apply", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("line 14: apps[0].scopes: unknown scope"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(
        stdout(&s.run(&["user", "list"])).trim().is_empty(),
        "no user was written"
    );

    let broken = s.file(
        "broken.toml",
        "[[users]]\nusername = \"bob\"\npassword = \"secret-in-a-broken-line\n",
    );
    let out = s.run(&["apply", broken.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("line 3"), "{err}");
    assert!(
        !err.contains("secret-in-a-broken-line"),
        "the offending line is not echoed: {err}"
    );
}

#[test]
fn user_app_and_key_commands() {
    let s = Scratch::new();
    let file = s.file("domain.toml", DOMAIN);
    assert!(s.run(&["apply", file.to_str().unwrap()]).status.success());

    let added = s.run(&[
        "user",
        "add",
        "bob",
        "--email",
        "bob@example.com",
        "--role",
        "User Administrator",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stdout(&added).contains("password: "),
        "a generated password is shown once"
    );
    let dup = s.run(&["user", "add", "BOB"]);
    assert!(!dup.status.success(), "usernames are unique ignoring case");
    let mut short = Command::new(BIN)
        .args(["user", "add", "dave", "--password-stdin"])
        .env("LATCHKEY_DATABASE_URL", s.db())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut short.stdin.take().unwrap(), b"short\n").unwrap();
    let short = short.wait_with_output().unwrap();
    assert!(!short.status.success());
    assert!(
        stderr(&short).contains("password: must be at least 8 characters"),
        "{}",
        stderr(&short)
    );
    let breached = s.file(
        "breached.toml",
        "[[users]]\nusername = \"erin\"\npassword = \"letmein123\"\n",
    );
    let refused = s.run(&["apply", breached.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused)
            .contains("line 3: users[0].password: is one of the most common breached passwords"),
        "{}",
        stderr(&refused)
    );
    let bad_role = s.run(&["user", "add", "carol", "--role", "Boss"]);
    assert!(
        stderr(&bad_role).contains("--role"),
        "{}",
        stderr(&bad_role)
    );

    let list: serde_json::Value =
        serde_json::from_str(&stdout(&s.run(&["user", "list", "--output", "json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(s.run(&["user", "deactivate", "bob"]).status.success());
    let bob: serde_json::Value = serde_json::from_str(&stdout(
        &s.run(&["user", "show", "bob", "--output", "json"]),
    ))
    .unwrap();
    assert_eq!(bob["active"], false);
    assert_eq!(bob["app_roles"], serde_json::json!(["User Administrator"]));
    let sessions: serde_json::Value = serde_json::from_str(&stdout(
        &s.run(&["user", "sessions", "bob", "--output", "json"]),
    ))
    .unwrap();
    assert_eq!(sessions, serde_json::json!([]));
    assert!(stdout(&s.run(&["user", "logout", "bob"])).contains("ended 0 session(s) of bob"));
    assert!(s.run(&["user", "activate", "bob"]).status.success());
    assert!(stdout(&s.run(&["user", "lock", "bob"])).contains("bob is locked"));
    let bob: serde_json::Value = serde_json::from_str(&stdout(
        &s.run(&["user", "show", "bob", "--output", "json"]),
    ))
    .unwrap();
    assert_eq!(bob["locked"], true);
    assert!(stdout(&s.run(&["user", "unlock", "bob"])).contains("bob is unlocked"));
    let bob: serde_json::Value = serde_json::from_str(&stdout(
        &s.run(&["user", "show", "bob", "--output", "json"]),
    ))
    .unwrap();
    assert_eq!(bob["locked"], false);
    assert!(
        stdout(&s.run(&["user", "grant-role", "bob", "Audit Administrator"]))
            .contains("bob now holds Audit Administrator")
    );
    let bob: serde_json::Value = serde_json::from_str(&stdout(
        &s.run(&["user", "show", "bob", "--output", "json"]),
    ))
    .unwrap();
    assert_eq!(
        bob["app_roles"],
        serde_json::json!(["User Administrator", "Audit Administrator"])
    );
    assert!(
        s.run(&["user", "revoke-role", "bob", "Audit Administrator"])
            .status
            .success()
    );
    assert!(
        !s.run(&["user", "revoke-role", "bob", "Audit Administrator"])
            .status
            .success()
    );
    assert!(stderr(&s.run(&["user", "grant-role", "bob", "Boss"])).contains("role:"));
    // Through the core service: audited once each, by the command line.
    let events: serde_json::Value =
        serde_json::from_str(&stdout(&s.run(&["audit", "--output", "json"]))).unwrap();
    for kind in ["user.role_granted", "user.role_revoked"] {
        let matching: Vec<&serde_json::Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["eventType"] == kind)
            .collect();
        assert_eq!(matching.len(), 1, "{kind}: {events}");
        assert_eq!(matching[0]["detail"], "Audit Administrator", "{events}");
    }
    assert!(s.run(&["user", "delete", "bob"]).status.success());
    assert!(!s.run(&["user", "show", "bob"]).status.success());

    let rotated = s.run(&["app", "rotate-secret", "hr-mobile"]);
    assert!(
        stdout(&rotated).contains("new client secret for hr-mobile: "),
        "{}",
        stderr(&rotated)
    );
    let apps: serde_json::Value =
        serde_json::from_str(&stdout(&s.run(&["app", "list", "--output", "json"]))).unwrap();
    assert_eq!(apps[0]["has_secret"], true);
    assert!(apps[0].get("secret_hash").is_none());

    // No key yet: the first signs at once.
    let first = s.run(&["keys", "rotate", "--algorithm", "EdDSA"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("signing at once"),
        "{}",
        stdout(&first)
    );
    // Then a rotation publishes the next key, which signs later.
    let staged = s.run(&["keys", "rotate"]);
    assert!(staged.status.success(), "{}", stderr(&staged));
    assert!(
        stdout(&staged).contains("published; it signs from") && stdout(&staged).contains("(in 5m)"),
        "{}",
        stdout(&staged)
    );
    let keys_now = || -> serde_json::Value {
        serde_json::from_str(&stdout(&s.run(&["keys", "list", "--output", "json"]))).unwrap()
    };
    let states = |keys: &serde_json::Value| -> Vec<(String, String)> {
        keys.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["state"].as_str().unwrap().to_owned(),
                    k["alg"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let keys = keys_now();
    assert_eq!(
        states(&keys),
        [
            ("active".into(), "EdDSA".into()),
            ("next".into(), "EdDSA".into())
        ],
        "a rotation keeps the active key's algorithm: {keys}"
    );
    assert_eq!(
        keys[1]["activates_at"].as_i64().unwrap() - keys[1]["created_at"].as_i64().unwrap(),
        300
    );
    // One waits at a time; the refusal names the emergency path.
    let again = s.run(&["keys", "rotate"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already published") && stderr(&again).contains("--now"),
        "{}",
        stderr(&again)
    );
    // The emergency path: signing at once, the waiting key dropped.
    let now = s.run(&["keys", "rotate", "--now"]);
    assert!(now.status.success(), "{}", stderr(&now));
    assert!(stdout(&now).contains("signing at once"), "{}", stdout(&now));
    let keys = keys_now();
    assert_eq!(
        states(&keys),
        [
            ("active".into(), "EdDSA".into()),
            ("retiring".into(), "EdDSA".into()),
            ("retired".into(), "EdDSA".into()),
        ],
        "{keys}"
    );
}

/// Groups by name, through the typed directory: members hold the group's
/// roles, and every change is audited by the command line.
#[test]
fn group_commands() {
    let s = Scratch::new();
    let file = s.file("domain.toml", DOMAIN);
    assert!(s.run(&["apply", file.to_str().unwrap()]).status.success());
    let json = |args: &[&str]| -> serde_json::Value {
        let out = s.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    assert!(s.run(&["group", "add", "auditors"]).status.success());
    let again = s.run(&["group", "add", "auditors"]);
    assert!(!again.status.success(), "group names are unique");
    let added = s.run(&["group", "add-member", "auditors", "alice"]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stdout(&s.run(&["group", "grant-role", "auditors", "Audit Administrator"]))
            .contains("auditors now holds Audit Administrator")
    );
    let shown = json(&["group", "show", "auditors", "--output", "json"]);
    assert_eq!(shown["members"], serde_json::json!(["alice"]));
    assert_eq!(
        shown["app_roles"],
        serde_json::json!(["Audit Administrator"])
    );
    let alice = json(&["user", "show", "alice", "--output", "json"]);
    assert_eq!(
        alice["app_roles"],
        serde_json::json!(["Audit Administrator"])
    );
    let listed = json(&["group", "list", "--output", "json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "auditors" && g["members"] == 1),
        "{listed}"
    );
    assert!(
        s.run(&["group", "remove-member", "auditors", "alice"])
            .status
            .success()
    );
    let alice = json(&["user", "show", "alice", "--output", "json"]);
    assert_eq!(alice["app_roles"], serde_json::json!([]));
    let not_member = s.run(&["group", "remove-member", "auditors", "alice"]);
    assert!(stderr(&not_member).contains("alice is not a member of auditors"));
    assert!(
        s.run(&["group", "revoke-role", "auditors", "Audit Administrator"])
            .status
            .success()
    );
    assert!(s.run(&["group", "delete", "auditors"]).status.success());
    let gone = s.run(&["group", "show", "auditors"]);
    assert!(
        stderr(&gone).contains("no group named \"auditors\""),
        "{}",
        stderr(&gone)
    );
    let events = json(&["audit", "--output", "json"]);
    for kind in [
        "group.created",
        "group.updated",
        "group.role_granted",
        "group.deleted",
    ] {
        assert!(
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["eventType"] == kind && e["actor"] == "cli"),
            "{kind}: {events}"
        );
    }
}

#[test]
fn the_whole_life_of_an_app() {
    let s = Scratch::new();
    let file = s.file("domain.toml", DOMAIN);
    assert!(s.run(&["apply", file.to_str().unwrap()]).status.success());
    let certificate = s.file(
        "reports.pem",
        include_str!("../../core/testdata/client-keys/rsa.cert.pem"),
    );
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_str(&stdout(o)).unwrap()
    };

    let created = json(&s.run(&[
        "app",
        "create",
        "--name",
        "Reports Backend",
        "--type",
        "trusted",
        "--grant",
        "password",
        "--grant",
        "client_credentials",
        "--scope",
        "https://hr.example.com/employees.read",
        "--app-role",
        "User Administrator",
        "--redirect-uri",
        "https://reports.example.com/cb",
        "--certificate-file",
        certificate.to_str().unwrap(),
        "--client-secret-jwt",
        "true",
        "--access-token-ttl",
        "15m",
        "--output",
        "json",
    ]));
    assert_eq!(created["client_id"], "reports-backend");
    assert_eq!(created["keys"], "certificate");
    assert_eq!(created["client_secret_jwt"], true);
    assert_eq!(created["access_token_ttl"], 900);
    let secret = created["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "a generated secret: 256 bits");
    let shown = json(&s.run(&["app", "show", "reports-backend", "--output", "json"]));
    assert!(shown.get("client_secret").is_none(), "shown once only");
    assert!(!stdout(&s.run(&["app", "show", "reports-backend"])).contains(secret));

    // Flags are validated like the domain file, naming the flag.
    for (args, flag) in [
        (
            vec!["--redirect-uri", "http://reports.example.com/cb"],
            "--redirect-uri",
        ),
        (vec!["--scope", "https://nowhere.example.com/x"], "--scope"),
        (vec!["--type", "public"], "--"),
    ] {
        let mut full = vec!["app", "update", "reports-backend"];
        full.extend(args);
        let out = s.run(&full);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    let duplicate = s.run(&[
        "app",
        "create",
        "--name",
        "Reports Backend",
        "--type",
        "public",
    ]);
    assert!(
        stderr(&duplicate).contains("exists"),
        "{}",
        stderr(&duplicate)
    );
    let public_with_keys = s.run(&[
        "app",
        "create",
        "--name",
        "Kiosk",
        "--type",
        "public",
        "--certificate-file",
        certificate.to_str().unwrap(),
    ]);
    assert!(
        stderr(&public_with_keys).contains("--certificate-file: only trusted apps"),
        "{}",
        stderr(&public_with_keys)
    );

    let updated = json(&s.run(&[
        "app",
        "update",
        "reports-backend",
        "--remove-keys",
        "--client-secret-jwt",
        "false",
        "--output",
        "json",
    ]));
    assert_eq!(updated["keys"], "none");
    assert_eq!(updated["client_secret_jwt"], false);
    assert_eq!(
        updated["app_roles"],
        serde_json::json!(["User Administrator"])
    );
    assert_eq!(updated["id"], created["id"], "an update keeps the id");

    let rotated = s.run(&["app", "rotate-secret", "reports-backend", "--grace", "1h"]);
    assert!(
        stdout(&rotated).contains("the previous secret keeps working for 1h"),
        "{}{}",
        stdout(&rotated),
        stderr(&rotated)
    );
    let shown = json(&s.run(&["app", "show", "reports-backend", "--output", "json"]));
    assert!(shown["previous_secret_expires_at"].is_i64());
    assert!(
        !s.run(&["app", "rotate-secret", "reports-backend", "--grace", "90d"])
            .status
            .success()
    );

    assert!(
        s.run(&["app", "deactivate", "reports-backend"])
            .status
            .success()
    );
    let shown = json(&s.run(&["app", "show", "reports-backend", "--output", "json"]));
    assert_eq!(shown["active"], false);
    assert!(stdout(&s.run(&["app", "list"])).contains("(deactivated)"));
    // Re-applying the domain file leaves apps it does not name alone.
    assert!(s.run(&["apply", file.to_str().unwrap()]).status.success());
    assert!(
        s.run(&["app", "activate", "reports-backend"])
            .status
            .success()
    );
    assert_eq!(
        json(&s.run(&["app", "show", "reports-backend", "--output", "json"]))["active"],
        true
    );
    assert!(
        s.run(&["app", "delete", "reports-backend"])
            .status
            .success()
    );
    assert!(!s.run(&["app", "show", "reports-backend"]).status.success());

    // Every change made here is in the audit trail, by the command line.
    let events: serde_json::Value =
        serde_json::from_str(&stdout(&s.run(&["audit", "--output", "json"]))).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    for kind in [
        "app.created",
        "app.updated",
        "app.secret_rotated",
        "app.deactivated",
        "app.activated",
        "app.deleted",
        "domain.applied",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "cli")
    );
    assert!(
        !events.to_string().contains("batch-secret-from-stdin"),
        "never a secret"
    );
}

#[test]
fn config_example_is_valid_and_config_check_names_the_option() {
    let s = Scratch::new();
    let example = s.run(&["config", "example"]);
    assert!(example.status.success());
    let file = s.file("latchkey.toml", &stdout(&example));
    let checked = s.run(&["config", "check", "--config", file.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(stdout(&checked).contains("configuration is valid"));
    let bad = s.file("bad.toml", "[lockout]\npair_threshold = 0\n");
    let refused = s.run(&["config", "check", "--config", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("lockout"), "{}", stderr(&refused));
    let off_loopback = s.run(&["config", "check", "--listen", "0.0.0.0:8080"]);
    assert!(stderr(&off_loopback).contains("--behind-tls-proxy"));
    let http_issuer = s.run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--behind-tls-proxy",
        "--issuer",
        "http://login.example.com",
    ]);
    assert!(!http_issuer.status.success());
    assert!(
        stderr(&http_issuer)
            .contains("issuer: \"http://login.example.com\" must be an https:// URL"),
        "{}",
        stderr(&http_issuer)
    );
}

#[test]
fn serve_refuses_plain_http_off_loopback_and_postgres_without_a_master_key() {
    let s = Scratch::new();
    let out = s.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--behind-tls-proxy"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(BIN)
        .args([
            "serve",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ])
        .env_remove("LATCHKEY_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("LATCHKEY_MASTER_KEY"),
        "{}",
        stderr(&out)
    );

    let out = s.run(&["serve", "--listen", "not-an-address"]);
    assert!(stderr(&out).contains("listen:"), "{}", stderr(&out));
}

/// The README's first command: `serve --demo` prints curl commands that
/// work as printed; SIGTERM shuts the server down cleanly.
#[test]
fn serve_demo_prints_working_curl_commands_and_stops_on_sigterm() {
    let s = Scratch::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("LATCHKEY_DATABASE_URL", s.db())
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut printed = Vec::new();
    let command = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no curl command printed"
        );
        let line = lines.next().expect("output").unwrap();
        if line.starts_with("curl -i") && line.contains("grant_type=password") {
            break line;
        }
        printed.push(line);
    };
    // A newcomer learns where the console is and whom to sign in as.
    let console_url = format!("http://127.0.0.1:{port}/console");
    assert!(printed.contains(&console_url), "{printed:#?}");
    assert!(
        printed.iter().any(|l| l.contains("sign in as admin")),
        "{printed:#?}"
    );
    // Oracle's exact form.
    assert!(
        command.contains("-H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8'"),
        "{command}"
    );
    assert!(command.contains("--request POST "), "{command}");
    let between = |start: &str, end: &str| {
        let from = command.find(start).unwrap() + start.len();
        command[from..from + command[from..].find(end).unwrap()].to_owned()
    };
    let authorization = between("-H 'Authorization: ", "'");
    assert!(authorization.starts_with("Basic "));
    let url = between("--request POST ", " ");
    let body = between("-d '", "'");
    assert!(
        body.starts_with("grant_type=password&username=") && body.contains("&scope="),
        "{body}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let json: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .header("Authorization", &authorization)
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    });
    assert!(
        json["access_token"].is_string() && json["refresh_token"].is_string(),
        "{json}"
    );
    // The bare address leads to the console, and the printed URL serves
    // its sign-in page.
    runtime.block_on(async {
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let root = no_redirects
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(root.status().as_u16(), 303);
        assert_eq!(root.headers()["location"], "/console");
        let console = reqwest::get(&console_url).await.unwrap();
        assert_eq!(console.status().as_u16(), 200);
        assert!(console.url().path().starts_with("/console/signin"));
    });

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The README's private_key_jwt example, run verbatim against a real
/// server: openssl signs the assertion, curl spends it.
#[test]
fn the_documented_private_key_jwt_example_works() {
    let s = Scratch::new();
    let key = s.file(
        "reports.key.pem",
        include_str!("../../core/testdata/client-keys/rsa.key.pem"),
    );
    let domain = format!(
        r#"{DOMAIN}
[[apps]]
name = "Reports"
type = "trusted"
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
certificate = """
{}"""
"#,
        include_str!("../../core/testdata/client-keys/rsa.cert.pem")
    );
    let file = s.file("domain.toml", &domain);
    let applied = s.run(&["apply", file.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LATCHKEY_DATABASE_URL", s.db())
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/private-key-jwt.sh"
    );
    let run = || {
        Command::new("bash")
            .args([
                script,
                &issuer,
                "reports",
                key.to_str().unwrap(),
                "alice",
                "correct horse battery staple",
                "https://hr.example.com/employees.read",
            ])
            .output()
            .expect("run the example")
    };
    let out = run();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    assert!(json["access_token"].is_string(), "{json}");
    assert_eq!(json["scope"], "https://hr.example.com/employees.read");

    // The sign-in is in the audit trail, once the running server's audit
    // writer has stored it (it writes off the request's path).
    let signins = || -> serde_json::Value {
        serde_json::from_str(&stdout(&s.run(&[
            "audit",
            "--type",
            "user.signin",
            "--since",
            "1h",
            "--output",
            "json",
        ])))
        .unwrap()
    };
    let mut events = signins();
    for _ in 0..50 {
        if events[0]["outcome"] == "success" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        events = signins();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(events[0]["outcome"], "success", "{events}");
    assert_eq!(events[0]["clientId"], "reports");
    assert!(stdout(&s.run(&["audit"])).contains("user.signin"));
}

/// A generated admin password is printed once; every later start, while
/// nobody has changed it, says so and how to set one; a chosen password
/// (set with that command, or from LATCHKEY_ADMIN_PASSWORD) never is.
#[test]
fn every_start_tells_how_to_replace_a_generated_admin_password_until_it_is() {
    let notice = "latchkey user set-password admin";
    let says = |demo: &DemoServer| demo.printed.iter().any(|l| l.contains(notice));
    let s = Scratch::new();
    let mut first = DemoServer::start(&s, &[], &[("LATCHKEY_LOG", "warn")]);
    let created = first
        .printed
        .iter()
        .find(|l| l.starts_with("Created user admin with password "))
        .expect("the generated password, once")
        .clone();
    first.stop();
    let password = created["Created user admin with password ".len()..].to_owned();
    for _ in 0..2 {
        let mut again = DemoServer::start(&s, &[], &[("LATCHKEY_LOG", "warn")]);
        assert!(says(&again), "{:#?}", again.printed);
        assert!(
            !again.printed.iter().any(|l| l.contains(&password)),
            "the password is not shown again"
        );
        again.stop();
    }
    // The command it names works, and then the notice stops.
    let out = s.run(&["user", "set-password", "admin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut after = DemoServer::start(&s, &[], &[("LATCHKEY_LOG", "warn")]);
    assert!(!says(&after), "{:#?}", after.printed);
    after.stop();

    // A password chosen from the start is never announced.
    let chosen = Scratch::new();
    for _ in 0..2 {
        let mut demo = DemoServer::start(
            &chosen,
            &[],
            &[
                ("LATCHKEY_LOG", "warn"),
                ("LATCHKEY_ADMIN_PASSWORD", "a chosen admin password"),
            ],
        );
        assert!(!says(&demo), "{:#?}", demo.printed);
        demo.stop();
    }
}

/// `latchkey serve --demo` on a free port, its log in a file, and the
/// password-grant `curl` command it printed.
struct DemoServer {
    child: std::process::Child,
    command: String,
    /// What it printed before that command.
    printed: Vec<String>,
    log_path: PathBuf,
    /// Kept open: a closed pipe makes the server's next line to stdout
    /// fail ("Broken pipe") and panic, a race with the reader's drop.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl DemoServer {
    fn start(s: &Scratch, global_args: &[&str], env: &[(&str, &str)]) -> DemoServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_path = s.dir.join("server.log");
        let mut command = Command::new(BIN);
        command
            .args(global_args)
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("LATCHKEY_DATABASE_URL", s.db())
            .env_remove("LATCHKEY_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let command = loop {
            let line = lines.next().expect("output").unwrap();
            if line.starts_with("curl -i") && line.contains("grant_type=password") {
                break line;
            }
            printed.push(line);
        };
        DemoServer {
            child,
            command,
            printed,
            log_path,
            _stdout: lines,
        }
    }

    /// The part of the curl command between `start` and the next `end`.
    fn part(&self, start: &str, end: &str) -> String {
        let from = self.command.find(start).unwrap() + start.len();
        self.command[from..from + self.command[from..].find(end).unwrap()].to_owned()
    }

    /// Stops the server with SIGTERM and returns its log.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log_path).unwrap()
    }
}

/// `--log-format json`: one JSON line per request, with method, route,
/// status, latency, client_id and the request id (the caller's
/// `X-Request-Id`, returned in the response).
#[test]
fn json_logs_have_one_line_per_request() {
    let s = Scratch::new();
    let mut demo = DemoServer::start(&s, &["--log-format", "json"], &[("LATCHKEY_LOG", "info")]);
    let authorization = demo.part("-H 'Authorization: ", "'");
    let url = demo.part("--request POST ", " ");
    let body = demo.part("-d '", "'");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (echoed, generated) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let answer = client
            .post(&url)
            .header("Authorization", &authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Request-Id", "trace-me-42")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let echoed = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let live = client
            .get(url.replace("/oauth2/v1/token", "/health/live"))
            .send()
            .await
            .unwrap();
        let generated = live.headers()["x-request-id"].to_str().unwrap().to_owned();
        (echoed, generated)
    });
    assert_eq!(echoed, "trace-me-42");
    let log = demo.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["span"]["name"] == "request" && e["fields"]["status"].is_number())
        .collect();
    let token: Vec<_> = requests
        .iter()
        .filter(|e| e["span"]["request_id"] == "trace-me-42")
        .collect();
    assert_eq!(token.len(), 1, "one line for the token request: {log}");
    let line = token[0];
    assert_eq!(line["span"]["method"], "POST");
    assert_eq!(line["span"]["route"], "/oauth2/v1/token");
    assert_eq!(line["span"]["client_id"], "demo-app");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["latency"].is_string(), "{line}");
    let live: Vec<_> = requests
        .iter()
        .filter(|e| e["span"]["route"] == "/health/live")
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["span"]["request_id"], generated.as_str());
    assert!(live[0]["span"].get("client_id").is_none());
}

/// Nothing secret reaches the log, even at debug level: not a password
/// (right or wrong), not a client secret, not a token.
#[test]
fn no_secret_is_ever_logged() {
    let s = Scratch::new();
    let mut demo = DemoServer::start(
        &s,
        &[],
        &[
            ("LATCHKEY_LOG", "debug"),
            ("LATCHKEY_ADMIN_PASSWORD", "admin-password-never-logged"),
        ],
    );
    let authorization = demo.part("-H 'Authorization: ", "'");
    let url = demo.part("--request POST ", " ");
    let body = demo.part("-d '", "'");
    let password = demo.part("&password=", "&");
    let secret_b64 = authorization.trim_start_matches("Basic ").to_owned();
    let decoded = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret_b64).unwrap(),
    )
    .unwrap();
    let client_secret = decoded.split_once(':').unwrap().1.to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut secrets = vec![
        password.clone(),
        secret_b64.clone(),
        client_secret,
        "admin-password-never-logged".to_owned(),
        "wrong-password-never-logged".to_owned(),
    ];
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |path: &str, body: String| {
            client
                .post(url.replace("/oauth2/v1/token", path))
                .header("Authorization", &authorization)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let ok: serde_json::Value = post("/oauth2/v1/token", body.clone())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (access, refresh) = (
            ok["access_token"].as_str().unwrap().to_owned(),
            ok["refresh_token"].as_str().unwrap().to_owned(),
        );
        post(
            "/oauth2/v1/token",
            body.replace(&password, "wrong-password-never-logged"),
        )
        .await
        .unwrap();
        post(
            "/oauth2/v1/token",
            format!("{body}&client_secret=duplicate-method"),
        )
        .await
        .unwrap();
        let next: serde_json::Value = post(
            "/oauth2/v1/token",
            format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        post(
            "/oauth2/v1/token",
            format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await
        .unwrap(); // reuse
        post("/oauth2/v1/introspect", format!("token={access}"))
            .await
            .unwrap();
        post(
            "/oauth2/v1/revoke",
            format!("token={}", next["refresh_token"].as_str().unwrap()),
        )
        .await
        .unwrap();
        // A careless client putting credentials in the query string.
        client
            .post(format!("{url}?password={password}"))
            .body("x")
            .send()
            .await
            .unwrap();
        secrets.extend([
            access,
            refresh,
            next["access_token"].as_str().unwrap().to_owned(),
        ]);
    });
    let log = demo.stop();
    assert!(
        log.lines().count() > 10,
        "the server logged its requests:\n{log}"
    );
    assert!(
        log.contains("password grant refused"),
        "failures are logged (without secrets)"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret leaked into the log: {}…",
            &secret[..8]
        );
    }
}

/// `--tls-cert/--tls-key`: the server speaks HTTPS itself (and may then
/// listen off loopback without a proxy).
#[test]
fn serve_speaks_https_with_a_certificate() {
    let s = Scratch::new();
    let (cert, key) = (s.dir.join("cert.pem"), s.dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .output()
        .expect("openssl makes a test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let half = s.run(&["serve", "--tls-cert", cert.to_str().unwrap()]);
    assert!(
        stderr(&half).contains("tls_key: required"),
        "{}",
        stderr(&half)
    );
    let missing = s.run(&[
        "serve",
        "--tls-cert",
        "/no/such.pem",
        "--tls-key",
        "/no/such.key",
    ]);
    assert!(
        stderr(&missing).contains("tls_cert / tls_key"),
        "{}",
        stderr(&missing)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .env("LATCHKEY_DATABASE_URL", s.db())
        .env("LATCHKEY_LOG", "warn")
        .env("LATCHKEY_ADMIN_PASSWORD", "admin-password-for-tls")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let metadata = loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "--cacert",
                cert.to_str().unwrap(),
                &format!("https://127.0.0.1:{port}/.well-known/oauth-authorization-server"),
            ])
            .output()
            .unwrap();
        if out.status.success() && !out.stdout.is_empty() {
            break String::from_utf8(out.stdout).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no HTTPS answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["issuer"], format!("https://127.0.0.1:{port}"));
    // Plain HTTP on the TLS port gets no answer.
    let plain = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/health/live"),
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("ok"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown under TLS: {status}");
}

/// Two `latchkey serve` processes on one PostgreSQL database, as behind a
/// load balancer, sharing nothing but the database: a token issued at A
/// verifies at B; a refresh token rotated at A is redeemed at B within the
/// reuse interval, twenty refreshes of one token across both all succeed,
/// and an older token replayed at B is caught;
/// a revocation at B holds at A at once; a throttle earned at A holds at B;
/// a key rotated against the database is served by both JWKS within the
/// reload interval.
#[test]
fn two_server_processes_on_one_postgres_database_act_as_one() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = runtime.block_on(latchkey_store::testing::TestDatabase::postgres()) else {
        return;
    };
    let s = Scratch::new();
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let domain = s.file(
        "domain.toml",
        r#"[[resource_servers]]
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
"#,
    );
    let with_db = |command: &mut Command| {
        command
            .env("LATCHKEY_DATABASE_URL", &db.url)
            .env("LATCHKEY_MASTER_KEY", master)
            .env("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "2")
            // A new key waits 20 s before it signs (the shortest allowed
            // with a 0 s JWKS lifetime is 5 s, the key reload interval).
            .env("LATCHKEY_KEYS__JWKS_MAX_AGE", "0")
            .env("LATCHKEY_KEYS__PUBLISH_AHEAD", "20s")
            .env("LATCHKEY_LOG", "warn");
    };
    let mut apply = Command::new(BIN);
    apply.args(["apply", domain.to_str().unwrap()]);
    with_db(&mut apply);
    let applied = apply.output().unwrap();
    assert!(applied.status.success(), "{}", stderr(&applied));

    // Both listeners are held until both ports are known, so the two
    // nodes never get the same one.
    let listeners: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(listeners);
    // Every node of a deployment advertises the one public issuer.
    let issuer = "https://login.example.com";
    let mut nodes: Vec<std::process::Child> = ports
        .iter()
        .map(|port| {
            let mut serve = Command::new(BIN);
            serve
                .args([
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--issuer",
                    issuer,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            with_db(&mut serve);
            serve.spawn().unwrap()
        })
        .collect();
    for port in &ports {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "a node did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let node = |i: usize, path: &str| format!("http://127.0.0.1:{}{path}", ports[i]);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "hr-mobile:hr-mobile-secret-0123456789"
        )
    );
    let rotate_keys = || {
        let mut rotate = Command::new(BIN);
        rotate.args(["keys", "rotate"]);
        with_db(&mut rotate);
        let rotated = rotate.output().unwrap();
        assert!(rotated.status.success(), "{}", stderr(&rotated));
    };
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |url: String, body: String| {
            client
                .post(url)
                .header("authorization", &basic)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let sign_in = |i: usize, password: &str| {
            let response = post(
                node(i, "/oauth2/v1/token"),
                format!("grant_type=password&username=alice&password={password}&scope=offline_access+https%3A%2F%2Fhr.example.com%2Femployees.read"),
            );
            async move {
                let response = response.await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            }
        };
        let refresh_at = |i: usize, token: &str| {
            let response = post(
                node(i, "/oauth2/v1/token"),
                format!("grant_type=refresh_token&refresh_token={token}"),
            );
            async move {
                let response = response.await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            }
        };
        let introspect = |i: usize, token: &str| {
            let response = post(node(i, "/oauth2/v1/introspect"), format!("token={token}"));
            async move { response.await.unwrap().json::<serde_json::Value>().await.unwrap()["active"].clone() }
        };
        let kids = |i: usize| {
            let response = client.get(node(i, "/oauth2/v1/keys")).send();
            async move {
                let jwks: serde_json::Value = response.await.unwrap().json().await.unwrap();
                jwks["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kid"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };

        // Issued at A, verified at B.
        let (status, tokens) = sign_in(0, "correct+horse+battery+staple").await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(introspect(1, &access).await, true, "node B accepts node A's token");

        // Rotated at A, presented again at B within the reuse interval (a
        // retry after a lost answer): redeemed with a token of its own.
        let (status, rotated) = refresh_at(0, &refresh).await;
        assert_eq!(status, 200, "{rotated}");
        let newest = rotated["refresh_token"].as_str().unwrap().to_owned();
        let (status, retried) = refresh_at(1, &refresh).await;
        assert_eq!(status, 200, "{retried}");
        let retried = retried["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(retried, newest);

        // Twenty refreshes of one token at once, half at each node: every
        // one answered, each with a refresh token of its own.
        let mut racing = tokio::task::JoinSet::new();
        for i in 0..20 {
            let url = node(i % 2, "/oauth2/v1/token");
            let (client, basic, token) = (client.clone(), basic.clone(), retried.clone());
            racing.spawn(async move {
                let response = client
                    .post(url)
                    .header("authorization", basic)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("grant_type=refresh_token&refresh_token={token}"))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            });
        }
        let mut answered = std::collections::BTreeSet::new();
        while let Some(joined) = racing.join_next().await {
            let (status, body) = joined.unwrap();
            assert_eq!(status, 200, "{body}");
            answered.insert(body["refresh_token"].as_str().unwrap().to_owned());
        }
        assert_eq!(answered.len(), 20, "no two refreshes return the same token");
        // The client goes on with any one of them, at either node.
        let kept = answered.iter().nth(13).unwrap().clone();
        let (status, next) = refresh_at(0, &kept).await;
        assert_eq!(status, 200, "{next}");
        let (status, later) = refresh_at(1, next["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{later}");
        let later = later["refresh_token"].as_str().unwrap().to_owned();
        // The first token, generations back, comes back at B: a replay;
        // the whole family dies, A's newest token included.
        let (status, replay) = refresh_at(1, &refresh).await;
        assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")));
        let (status, _) = refresh_at(0, &later).await;
        assert_eq!(status, 400, "the replay at B revoked the family at A");

        // Revoked at B, dead at A at once.
        let (_, second) = sign_in(0, "correct+horse+battery+staple").await;
        let second_access = second["access_token"].as_str().unwrap().to_owned();
        let revoked = post(
            node(1, "/oauth2/v1/revoke"),
            format!("token={}", second["refresh_token"].as_str().unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(revoked.status().as_u16(), 200);
        assert_eq!(introspect(0, &second_access).await, false, "node A honours node B's revocation at once");

        // A key rotated against the shared database reaches both JWKS
        // within the reload interval (5 s) while the old key still signs;
        // once due, one of the nodes promotes it and both sign with it,
        // without a restart, and tokens A signs with it verify at B.
        let kid_of = |token: &str| -> String {
            let header: serde_json::Value = serde_json::from_slice(
                &base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    token.split('.').next().unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
            header["kid"].as_str().unwrap().to_owned()
        };
        let signing_kid = |i: usize| {
            let token = sign_in(i, "correct+horse+battery+staple");
            async move { kid_of(token.await.1["access_token"].as_str().unwrap()) }
        };
        let before = kids(1).await;
        let old_kid = signing_kid(0).await;
        rotate_keys();
        let started = Instant::now();
        let new_kid = loop {
            let (a, b) = (kids(0).await, kids(1).await);
            if a.len() > before.len() && b.len() > before.len() {
                assert_eq!(a, b, "both nodes publish the same keys");
                break a.into_iter().find(|k| !before.contains(k)).unwrap();
            }
            assert!(started.elapsed() < Duration::from_secs(15), "the new key never reached both nodes");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(signing_kid(0).await, old_kid, "published, not signing yet");
        assert_eq!(signing_kid(1).await, old_kid);
        let started = Instant::now();
        while signing_kid(0).await != new_kid || signing_kid(1).await != new_kid {
            assert!(started.elapsed() < Duration::from_secs(40), "the nodes never signed with the new key");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (_, third) = sign_in(0, "correct+horse+battery+staple").await;
        let third_access = third["access_token"].as_str().unwrap();
        assert_eq!(kid_of(third_access), new_kid, "node A signs with the new key");
        assert_eq!(introspect(1, third_access).await, true);

        // Two failures at A (the threshold is 2): B refuses even the right
        // password from that address.
        for _ in 0..2 {
            let (status, _) = sign_in(0, "wrong").await;
            assert_eq!(status, 400);
        }
        let (status, throttled) = sign_in(1, "correct+horse+battery+staple").await;
        assert_eq!((status, throttled["error"].as_str()), (400, Some("invalid_grant")), "the throttle earned at A holds at B");
    });
    for node in &mut nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
    drop(db);
}

/// `*_FILE` variables (Docker/systemd credentials) and `LATCHKEY_<SECTION>__<OPTION>`
/// overrides reach the command line as they reach the server.
#[test]
fn secrets_from_files_and_options_from_the_environment() {
    let s = Scratch::new();
    let url_file = s.file("database-url", &format!("{}\n", s.db()));
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let key_file = s.file("master-key", &format!("{key}\n"));
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("LATCHKEY_DATABASE_URL")
            .env_remove("LATCHKEY_MASTER_KEY")
            .env("LATCHKEY_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let files = [
        ("LATCHKEY_DATABASE_URL_FILE", url_file.to_str().unwrap()),
        ("LATCHKEY_MASTER_KEY_FILE", key_file.to_str().unwrap()),
    ];
    let added = run(&["user", "add", "frank"], &files);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        !s.dir.join("data/master.key").exists(),
        "the master key came from the file, none was generated"
    );
    // The same database, named directly this time.
    let listed = s.run(&["user", "list"]);
    assert!(stdout(&listed).contains("frank"), "{}", stdout(&listed));

    let both = run(
        &["user", "list"],
        &[files[0], ("LATCHKEY_DATABASE_URL", &s.db())],
    );
    assert!(!both.status.success());
    assert!(
        stderr(&both).contains("LATCHKEY_DATABASE_URL and LATCHKEY_DATABASE_URL_FILE are both set"),
        "{}",
        stderr(&both)
    );
    let bad = run(
        &["config", "check"],
        &[files[0], ("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "lots")],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("LATCHKEY_LOCKOUT__PAIR_THRESHOLD: "),
        "{}",
        stderr(&bad)
    );
    let good = run(
        &["config", "check"],
        &[files[0], ("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "9")],
    );
    assert!(good.status.success(), "{}", stderr(&good));

    // [tokens] defaults reach an app that names no lifetimes of its own.
    let domain = s.file(
        "tokens.toml",
        "[[apps]]\nname = \"Short\"\ntype = \"public\"\ngrant_types = [\"password\"]\n",
    );
    let applied = run(
        &["apply", domain.to_str().unwrap()],
        &[
            files[0],
            files[1],
            ("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL", "10m"),
        ],
    );
    assert!(applied.status.success(), "{}", stderr(&applied));
    let shown = run(&["app", "show", "short", "--output", "json"], &files);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["access_token_ttl"], 600);
    assert_eq!(shown["refresh_token_ttl"], 7 * 86_400);

    // --set sets any option too, above the environment.
    let domain = s.file(
        "tokens2.toml",
        "[[apps]]\nname = \"Shorter\"\ntype = \"public\"\ngrant_types = [\"password\"]\n",
    );
    let applied = run(
        &[
            "apply",
            domain.to_str().unwrap(),
            "--set",
            "tokens.access_token_ttl=20m",
        ],
        &[
            files[0],
            files[1],
            ("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL", "10m"),
        ],
    );
    assert!(applied.status.success(), "{}", stderr(&applied));
    let shown = run(&["app", "show", "shorter", "--output", "json"], &files);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["access_token_ttl"], 1200);
    let bad = run(
        &["config", "check", "--set", "lockout.pair_threshold=lots"],
        &[files[0]],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--set lockout.pair_threshold: "),
        "{}",
        stderr(&bad)
    );
}
