//! What SQLite leaves on disk: a write-ahead log that stays bounded under
//! sustained writes, and files only their owner can read.

use std::path::Path;
use std::time::Duration;

use latchkey_core::audit::AuditEvent;
use latchkey_store::PoolSettings;
use latchkey_store::testing::TestDatabase;

fn settings(wal_limit_bytes: u64) -> PoolSettings {
    PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
        sqlite_wal_limit_bytes: wal_limit_bytes,
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Back-to-back write transactions leave the background checkpoint no
/// gap to restart the log in; the writer's own restart keeps it near the
/// limit anyway.
#[tokio::test]
async fn the_wal_stays_near_its_limit_under_back_to_back_writes() {
    let db = TestDatabase::sqlite();
    let limit = 4 << 20;
    let store = latchkey_store::open_with(&db.url, settings(limit))
        .await
        .unwrap();
    let file = latchkey_store::sqlite_file_of(&db.url).unwrap();
    let wal = file.with_file_name("latchkey.db-wal");
    let mut largest = 0;
    // About 190 MiB of WAL frames without a restart (each insert writes
    // the table's and its indexes' changed pages).
    for i in 0..8000 {
        store
            .repos
            .audit
            .record(
                &AuditEvent::new("user.signin", false, i)
                    .subject(format!("user-{i}"))
                    .detail("x".repeat(200)),
            )
            .await
            .unwrap();
        largest = largest.max(file_size(&wal));
    }
    store.close().await;
    // The limit plus what one transaction wrote before the checkpoint.
    assert!(
        largest <= limit + (256 << 10),
        "the WAL reached {largest} bytes with a limit of {limit}"
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The folder and every file of the database, WAL and shared memory
/// included, are private to their owner; a file an older version left
/// readable by everyone is narrowed when the store opens.
#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDatabase::sqlite();
    let file = latchkey_store::sqlite_file_of(&db.url).unwrap().to_owned();
    let dir = file.parent().unwrap().to_owned();
    let store = latchkey_store::open_with(&db.url, settings(16 << 20))
        .await
        .unwrap();
    // A write, so the WAL and its index exist.
    store
        .repos
        .audit
        .record(&AuditEvent::new("user.signin", false, 1))
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700, "the folder");
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("latchkey.db{suffix}"));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    store.close().await;

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = latchkey_store::open_with(&db.url, settings(16 << 20))
        .await
        .unwrap();
    assert_eq!(mode(&file), 0o600, "narrowed at open");
    store.close().await;
}
