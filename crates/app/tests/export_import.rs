//! `latchkey export` and `latchkey import keycloak`, run as a user would
//! run them, on both engines.

use std::path::PathBuf;
use std::process::{Command, Output};

use latchkey_store::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_MASTER: &str = "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

const REALM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/tests/fixtures/keycloak-realm-acme.json"
);

/// Every kind of entry and every field a domain file carries.
const RICH_DOMAIN: &str = r#"
[[resource_servers]]
name = "HR API"
audience = "https://hr.example.com/"
scopes = ["employees.read", "employees.write"]

[[resource_servers]]
name = "Payroll"
audience = "urn:payroll:"
scopes = ["runs.read"]

[[groups]]
name = "helpdesk"
app_roles = ["Help Desk Administrator"]

[[groups]]
name = "auditors"
app_roles = ["Audit Administrator", "Security Administrator"]

[[users]]
username = "alice"
password = "correct horse battery staple"
given_name = "Alice"
family_name = "Liddell"
display_name = "Alice L."
external_id = "hr-0001"
email = "alice@example.com"
groups = ["helpdesk", "auditors"]
app_roles = ["User Administrator"]

[[users]]
username = "Bob"
password_hash = "pbkdf2_sha256$10000$qLDpxFvgXrHh$WERlhAyD/63uHxUsQ5PRF3i1LWsKgr9+sPLVgf3c/nc="
active = false

[[users]]
username = "carol"
password = "carol's long password"
locked = true

[[users]]
username = "nopass"

[[apps]]
name = "HR Mobile"
type = "trusted"
client_secret = "hr-mobile-secret-0123456789"
client_secret_jwt = true
grant_types = ["password", "refresh_token"]
redirect_uris = ["https://hr.example.com/callback", "http://127.0.0.1:9000/cb"]
scopes = ["https://hr.example.com/employees.read", "offline_access", "openid", "urn:opc:idm:__myscopes__"]
app_roles = ["User Administrator"]
access_token_ttl = "15m"
refresh_token_ttl = "2d"
session_lifetime = "30d"

[[apps]]
name = "Reports"
client_id = "reports:app"
type = "trusted"
client_secret = "reports secret: with spaces & symbols"
grant_types = ["client_credentials"]
scopes = ["urn:payroll:runs.read"]
certificate = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEndgObaqPnE9B73DnOITTieA5tE4O
YaWw7gCg8LjZkr2rFewJ7wQAzpQAWcJYPnM99kuY5pdwam11kqwWWeYTPw==
-----END PUBLIC KEY-----
"""

[[apps]]
name = "Kiosk"
type = "public"
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
active = false
access_token_ttl = 90
"#;

fn run(url: &str, master: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("LATCHKEY_DATABASE_URL", url)
        .env("LATCHKEY_MASTER_KEY", master)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .expect("run latchkey")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "latchkey-export-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every row of every table a domain file describes, as text, sorted: two
/// databases hold the same domain exactly when their dumps are equal.
/// Left out: timestamps and versions of rows (when they were written, not
/// what they say) and resource servers' internal ids (nothing refers to
/// them from outside).
async fn dump(url: &str) -> Vec<String> {
    let postgres = url.starts_with("postgres");
    let text = |c: &str| format!("COALESCE(CAST({c} AS TEXT), '~')");
    let flag = |c: &str| format!("CASE WHEN {c} THEN 't' ELSE 'f' END");
    let blob = |c: &str| {
        if postgres {
            format!("UPPER(ENCODE({c}, 'hex'))")
        } else {
            format!("HEX({c})")
        }
    };
    let tables: Vec<(&str, Vec<String>)> = vec![
        (
            "resource_servers",
            ["name", "audience", "scopes"].map(text).to_vec(),
        ),
        ("groups", ["id", "name"].map(text).to_vec()),
        ("group_roles", ["group_id", "role"].map(text).to_vec()),
        (
            "users",
            [
                "id",
                "username",
                "username_key",
                "password_hash",
                "given_name",
                "family_name",
                "email",
                "email_key",
                "external_id",
                "display_name",
            ]
            .map(text)
            .into_iter()
            .chain([flag("active"), flag("locked")])
            .collect(),
        ),
        ("user_groups", ["user_id", "group_id"].map(text).to_vec()),
        ("user_roles", ["user_id", "role"].map(text).to_vec()),
        (
            "apps",
            [
                "id",
                "client_id",
                "name",
                "app_type",
                "secret_hash",
                "secret_sealed",
                "previous_secret_hash",
                "previous_secret_sealed",
                "previous_secret_expires_at",
                "grant_types",
                "redirect_uris",
                "scopes",
                "app_roles",
                "jwks",
                "certificate",
                "access_token_ttl",
                "refresh_token_ttl",
                "session_lifetime",
            ]
            .map(text)
            .into_iter()
            .chain([flag("active")])
            .collect(),
        ),
        (
            "signing_keys",
            [
                "kid",
                "alg",
                "public_jwk",
                "state",
                "created_at",
                "retiring_at",
                "retired_at",
            ]
            .map(text)
            .into_iter()
            .chain([blob("encrypted_private_key")])
            .collect(),
        ),
    ];
    let mut rows = Vec::new();
    for (table, columns) in tables {
        let sql = format!("SELECT {} FROM {table}", columns.join(" || '|' || "));
        let mut got: Vec<String> = if postgres {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let r: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            r.into_iter().map(|(s,)| s).collect()
        } else {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let r: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            r.into_iter().map(|(s,)| s).collect()
        };
        got.sort();
        rows.extend(got.into_iter().map(|r| format!("{table}: {r}")));
    }
    rows
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A SQLite domain exported, applied to an empty PostgreSQL database,
/// exported again and applied to an empty SQLite database: the three hold
/// the same domain, row for row, ids, hashes and keys included.
#[test]
fn export_round_trips_sqlite_postgres_sqlite_exactly() {
    let rt = runtime();
    let Some(pg) = rt.block_on(TestDatabase::postgres()) else {
        return;
    };
    let (first, last) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let dir = Dir::new();
    let domain = dir.write("domain.toml", RICH_DOMAIN);
    ok(run(&first.url, MASTER, &["apply", &domain]));
    // Two keys: the first active at once (none signed before), the
    // second published and signing later (next).
    ok(run(
        &first.url,
        MASTER,
        &["keys", "rotate", "--algorithm", "ES256"],
    ));
    ok(run(
        &first.url,
        MASTER,
        &["keys", "rotate", "--algorithm", "EdDSA"],
    ));
    ok(run(
        &first.url,
        MASTER,
        &["user", "grant-role", "Bob", "Application Administrator"],
    ));

    let exported = ok(run(&first.url, MASTER, &["export", "--include-keys"]));
    for secret in [
        "correct horse",
        "carol's long",
        "hr-mobile-secret",
        "reports secret",
    ] {
        assert!(
            !exported.contains(secret),
            "a plaintext secret in the export: {secret}"
        );
    }
    assert_eq!(
        exported.matches("[[signing_keys]]").count(),
        2,
        "{exported}"
    );
    let file = dir.write("first.toml", &exported);

    let applied = ok(run(&pg.url, MASTER, &["apply", &file]));
    assert!(
        applied.contains("13 created, 0 updated, 0 unchanged"),
        "{applied}"
    );
    let from_pg = ok(run(&pg.url, MASTER, &["export", "--include-keys"]));
    assert_eq!(
        from_pg, exported,
        "the export is the same from either engine"
    );
    let file = dir.write("second.toml", &from_pg);
    ok(run(&last.url, MASTER, &["apply", &file]));
    assert_eq!(
        ok(run(&last.url, MASTER, &["export", "--include-keys"])),
        exported
    );

    let (a, b, c) = rt.block_on(async {
        (
            dump(&first.url).await,
            dump(&pg.url).await,
            dump(&last.url).await,
        )
    });
    assert_eq!(a.len(), 20, "the dump covers the domain: {a:#?}");
    assert_eq!(a, b, "SQLite → PostgreSQL");
    assert_eq!(a, c, "PostgreSQL → SQLite");
}

#[test]
fn export_then_apply_changes_nothing_and_export_is_stable() {
    let db = TestDatabase::sqlite();
    let dir = Dir::new();
    ok(run(
        &db.url,
        MASTER,
        &["apply", &dir.write("domain.toml", RICH_DOMAIN)],
    ));
    ok(run(&db.url, MASTER, &["keys", "rotate"]));
    let exported = ok(run(&db.url, MASTER, &["export", "--include-keys"]));
    let again = ok(run(
        &db.url,
        MASTER,
        &["apply", &dir.write("export.toml", &exported)],
    ));
    assert!(again.contains("nothing changed (12 unchanged)"), "{again}");
    assert_eq!(
        ok(run(&db.url, MASTER, &["export", "--include-keys"])),
        exported
    );

    // Sorted by natural key, so a diff of two exports is meaningful.
    let users: Vec<&str> = exported
        .lines()
        .filter(|l| l.starts_with("username = "))
        .collect();
    assert_eq!(
        users,
        [
            "username = \"alice\"",
            "username = \"Bob\"",
            "username = \"carol\"",
            "username = \"nopass\""
        ]
    );
    let apps: Vec<&str> = exported
        .lines()
        .filter(|l| l.starts_with("client_id = "))
        .collect();
    assert_eq!(
        apps,
        [
            "client_id = \"hr-mobile\"",
            "client_id = \"kiosk\"",
            "client_id = \"reports:app\""
        ]
    );
    assert!(exported.contains("locked = true"), "{exported}");
    assert!(
        exported.contains("display_name = \"Alice L.\""),
        "{exported}"
    );
    assert!(
        exported.contains("session_lifetime = \"30d\""),
        "{exported}"
    );

    let without_keys = ok(run(&db.url, MASTER, &["export"]));
    assert!(
        !without_keys.contains("signing_keys"),
        "keys only with --include-keys"
    );
    assert!(!without_keys.contains("encrypted_private_key"));
}

#[test]
fn keys_and_sealed_secrets_import_only_under_the_same_master_key() {
    let (source, target) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let dir = Dir::new();
    ok(run(
        &source.url,
        MASTER,
        &["apply", &dir.write("domain.toml", RICH_DOMAIN)],
    ));
    ok(run(&source.url, MASTER, &["keys", "rotate"]));
    let exported = ok(run(&source.url, MASTER, &["export", "--include-keys"]));
    let file = dir.write("export.toml", &exported);

    let refused = run(&target.url, OTHER_MASTER, &["apply", &file]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("apps[hr-mobile].client_secret_sealed: does not open with this master key"),
        "{err}"
    );
    let only_keys: String = exported
        .split("[[")
        .filter(|part| part.starts_with("signing_keys]]"))
        .map(|part| format!("[[{part}"))
        .collect();
    let refused = run(
        &target.url,
        OTHER_MASTER,
        &["apply", &dir.write("keys.toml", &only_keys)],
    );
    let err = stderr(&refused);
    assert!(
        err.contains(".encrypted_private_key: does not open with this master key"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let kid = exported
        .lines()
        .find_map(|l| l.strip_prefix("kid = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        !ok(run(&target.url, OTHER_MASTER, &["keys", "list"])).contains(kid),
        "the key was not stored"
    );
    assert!(
        ok(run(&target.url, OTHER_MASTER, &["user", "list"]))
            .trim()
            .is_empty(),
        "nothing was written"
    );
}

#[test]
fn an_id_never_changes_and_never_moves() {
    let (source, target) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let dir = Dir::new();
    ok(run(
        &source.url,
        MASTER,
        &["apply", &dir.write("domain.toml", RICH_DOMAIN)],
    ));
    let exported = ok(run(&source.url, MASTER, &["export"]));
    // The target already has alice, under an id of its own.
    ok(run(
        &target.url,
        MASTER,
        &[
            "apply",
            &dir.write("alice.toml", "[[users]]\nusername = \"alice\"\n"),
        ],
    ));
    let refused = run(
        &target.url,
        MASTER,
        &["apply", &dir.write("export.toml", &exported)],
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("users[alice].id: \"alice\" exists with id "),
        "{err}"
    );
    assert!(err.contains("an id never changes"), "{err}");

    // An id already held by someone else.
    let alice_id = exported
        .lines()
        .skip_while(|l| *l != "[[users]]")
        .find_map(|l| l.strip_prefix("id = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let moved = format!("[[users]]\nid = \"{alice_id}\"\nusername = \"mallory\"\n");
    let refused = run(
        &source.url,
        MASTER,
        &["apply", &dir.write("moved.toml", &moved)],
    );
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "users[mallory].id: id {alice_id} already belongs to \"alice\""
        )),
        "{err}"
    );
}

fn import_keycloak(url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import", "keycloak", REALM];
    args.extend_from_slice(extra);
    run(url, MASTER, &args)
}

#[test]
fn keycloak_import_writes_a_domain_file_or_applies_it_and_reports_what_it_could_not_map() {
    let db = TestDatabase::sqlite();
    let dir = Dir::new();
    let out = dir.0.join("acme.toml");
    let written = import_keycloak(&db.url, &["--output", out.to_str().unwrap()]);
    let report = stderr(&written);
    let stdout = ok(written);
    assert!(
        stdout.contains("(4 users, 5 groups, 3 apps, 2 resource servers)"),
        "{stdout}"
    );
    assert!(
        report.contains(
            "not mapped: client \"hr-web\": only authorization code (standardFlowEnabled) flows"
        ),
        "{report}"
    );
    assert!(
        report.contains("not mapped: user \"alice\": otp credential not mapped"),
        "{report}"
    );
    assert!(
        report.contains("not mapped: identity provider \"google\""),
        "{report}"
    );
    assert!(
        report.contains("31 item(s) could not be mapped"),
        "{report}"
    );
    let domain = std::fs::read_to_string(&out).unwrap();
    assert!(
        !domain.contains("kc-secret"),
        "no plaintext client secret in the file"
    );
    assert!(
        ok(run(&db.url, MASTER, &["user", "list"]))
            .trim()
            .is_empty(),
        "--output writes, not applies"
    );

    let applied = ok(import_keycloak(&db.url, &[]));
    assert!(
        applied.contains("14 created, 0 updated, 0 unchanged"),
        "{applied}"
    );
    assert!(
        !applied.contains("generated client secret"),
        "the realm's secrets are kept"
    );
    let again = ok(import_keycloak(&db.url, &[]));
    assert!(again.contains("nothing changed (14 unchanged)"), "{again}");
    let same = ok(run(&db.url, MASTER, &["apply", out.to_str().unwrap()]));
    assert!(
        same.contains("nothing changed"),
        "the written file is what import applies: {same}"
    );

    let alice: serde_json::Value = serde_json::from_str(&ok(run(
        &db.url,
        MASTER,
        &["user", "show", "alice", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(
        alice["id"], "4c7e1a2b-9f3d-4e5a-8b6c-0d1e2f3a4b5c",
        "the Keycloak id is kept"
    );

    let broken = run(
        &db.url,
        MASTER,
        &[
            "import",
            "keycloak",
            &dir.write("x.json", "{\"users\": []}"),
        ],
    );
    assert!(!broken.status.success());
    assert!(
        stderr(&broken).contains("not a Keycloak realm export"),
        "{}",
        stderr(&broken)
    );
}
