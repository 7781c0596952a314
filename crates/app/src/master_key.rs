//! Finding the master key: `LATCHKEY_MASTER_KEY`, else (SQLite only) a key
//! file beside the database, created with mode 0600 on first start.

use std::io::Write;
use std::path::{Path, PathBuf};

use latchkey_core::secrets::MasterKey;

pub const KEY_FILE_NAME: &str = "master.key";

pub fn key_file_for(database_url: &str) -> Option<PathBuf> {
    let db = latchkey_store::sqlite_file_of(database_url)?;
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(dir.join(KEY_FILE_NAME))
}

pub fn load(configured: Option<&str>, database_url: &str) -> Result<MasterKey, String> {
    if let Some(encoded) = configured {
        return MasterKey::from_base64(encoded).map_err(|e| format!("LATCHKEY_MASTER_KEY: {e}"));
    }
    let Some(path) = key_file_for(database_url) else {
        return Err("LATCHKEY_MASTER_KEY: required with PostgreSQL (32 random bytes, base64; e.g. `openssl rand -base64 32`)".to_owned());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_base64(&text)
            .map_err(|e| format!("master key file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private(&path, &key.to_base64())
                .map_err(|e| format!("master key file {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new master key");
            Ok(key)
        }
        Err(e) => Err(format!("master key file {}: {e}", path.display())),
    }
}

/// Creates `path` readable by its owner only; never overwrites.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    // The data folder, when this is the first file in it: owner only.
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        latchkey_store::create_private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("latchkey-mk-{}", uuid_like()));
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let first = load(None, &url).unwrap();
        let again = load(None, &url).unwrap();
        assert_eq!(first.to_base64(), again.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn postgres_requires_the_env_var() {
        assert!(
            load(None, "postgres://x@y/z")
                .unwrap_err()
                .starts_with("LATCHKEY_MASTER_KEY")
        );
        assert!(
            load(Some("short"), "postgres://x@y/z")
                .unwrap_err()
                .starts_with("LATCHKEY_MASTER_KEY")
        );
    }

    fn uuid_like() -> String {
        format!(
            "{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        )
    }
}
