//! The SQLite files hold every password hash, sealed secret and signing
//! key: only their owner may read them. The data folder is created 0700,
//! the database file 0600 before SQLite first opens it (SQLite gives its
//! `-wal` and `-shm` files the database file's mode), and files an older
//! version left readable by others are narrowed to 0600.

use std::path::Path;

use crate::OpenError;

/// Creates `dir` (and missing parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

pub(super) fn prepare(database: &Path) -> Result<(), OpenError> {
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        create_private_dir(parent).map_err(|e| {
            OpenError::new(format!(
                "cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    let cannot = |e: std::io::Error| {
        OpenError::new(format!(
            "cannot prepare the database file {}: {e}",
            database.display()
        ))
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // An empty file is an empty SQLite database.
    match options.open(database) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => narrow_existing(database),
        Err(e) => Err(cannot(e)),
    }
}

/// Takes group and other access away from the database and its companion
/// files when others may read them.
fn narrow_existing(database: &Path) -> Result<(), OpenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            let path = Path::new(&name);
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if meta.permissions().mode() & 0o004 == 0 {
                continue;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| OpenError::new(format!("cannot make {} private: {e}", path.display())),
            )?;
            tracing::warn!(path = %path.display(), "the database file was readable by every user; its mode is now 0600");
        }
    }
    #[cfg(not(unix))]
    let _ = database;
    Ok(())
}
