//! Throwaway databases for tests: every test gets its own, so tests run in
//! parallel and leave nothing behind.

use std::path::PathBuf;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite database in its own temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir =
            std::env::temp_dir().join(format!("latchkey-test-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}/latchkey.db", dir.display());
        TestDatabase {
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new PostgreSQL database on the server at
    /// `LATCHKEY_TEST_DATABASE_URL` (default: the local server). `None`, with
    /// a notice, when no server answers — unless `LATCHKEY_REQUIRE_POSTGRES=1`,
    /// where that is a failure.
    pub async fn postgres() -> Option<TestDatabase> {
        use sqlx::Connection as _;
        let admin_url = std::env::var("LATCHKEY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let required = std::env::var("LATCHKEY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if required => panic!(
                "LATCHKEY_REQUIRE_POSTGRES=1 but PostgreSQL at {admin_url} does not answer: {e}"
            ),
            Err(e) => {
                eprintln!(
                    "NOTICE: PostgreSQL at {admin_url} does not answer ({e}); skipping the PostgreSQL run of this test"
                );
                return None;
            }
        };
        let name = format!("latchkey_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop may run inside or outside a runtime, or while
                // unwinding: do the async cleanup on a thread of its own.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        use sqlx::Connection as _;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Stamps out each conformance case (`async fn case(&Store, &TestDatabase)`)
/// as two tests: on SQLite always, on PostgreSQL whenever one answers
/// (required with LATCHKEY_REQUIRE_POSTGRES=1). Each gets its own database.
#[macro_export]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = $crate::testing::TestDatabase::sqlite();
                    let store = $crate::open(&db.url, 4).await.expect("open SQLite");
                    super::$case(&store, &db).await;
                    store.close().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = $crate::testing::TestDatabase::postgres().await else { return };
                    let store = $crate::open(&db.url, 4).await.expect("open PostgreSQL");
                    super::$case(&store, &db).await;
                    store.close().await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
