//! Online backup of a SQLite database (`scimd backup FILE`).
//!
//! `VACUUM INTO 'file'` writes a consistent copy of the database as of the
//! start of its read transaction, while the server keeps reading and
//! writing (in WAL mode the writer never waits for a reader). SQLite's
//! page-by-page backup API (`sqlite3_backup_*`) would do the same, but it
//! is reachable only through raw FFI (the workspace forbids `unsafe`) or a
//! second SQLite binding (`rusqlite`) pinned to Diesel's `libsqlite3-sys`;
//! `VACUUM INTO` is SQLite's own online copy, through the connection the
//! store already has, and its output is compacted as a bonus.
//!
//! PostgreSQL has its own tools (`pg_dump`), see docs/DEPLOY.md.

use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use diesel::RunQueryDsl;

use crate::{db::connection::DbConnection, engine::Store, error::StoreError};

/// What went wrong with a backup, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store is on PostgreSQL.
    #[error(
        "scimd backup copies a SQLite database; back up PostgreSQL with its own tools, e.g. \
         `pg_dump --format=custom --file=scimd.dump DBNAME` (restore with pg_restore), \
         see docs/DEPLOY.md"
    )]
    NotSqlite,
    /// The destination cannot be created (it exists, or its directory does
    /// not, or it is not writable).
    #[error("{0}")]
    Destination(String),
    /// The copy failed.
    #[error("backup failed: {0}")]
    Store(#[from] StoreError),
}

/// Writes a consistent copy of the store's SQLite database to `dest`, a
/// new file created with mode 0600 (it holds token and password hashes).
/// Never overwrites: an existing `dest` is refused. On failure nothing is
/// left at `dest`.
pub fn backup_sqlite(store: &Store, dest: &Path) -> Result<(), BackupError> {
    if store.backend() != crate::db::connection::Backend::Sqlite {
        return Err(BackupError::NotSqlite);
    }
    let name = dest.to_str().ok_or_else(|| {
        BackupError::Destination(format!(
            "{}: the backup file name must be valid UTF-8",
            dest.display()
        ))
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| {
            BackupError::Destination(match e.kind() {
                ErrorKind::AlreadyExists => format!(
                    "{} already exists; a backup never overwrites a file, choose a new name",
                    dest.display()
                ),
                _ => format!("cannot create {}: {e}", dest.display()),
            })
        })?;
    let copied = file
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::internal("setting the backup file's mode failed", &e))
        .and_then(|()| {
            store.read(|conn| match conn {
                DbConnection::Sqlite(c) => diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(name)
                    .execute(c)
                    .map(drop)
                    .map_err(|e| StoreError::internal("VACUUM INTO failed", &e)),
                DbConnection::Postgres(_) => Err(StoreError::Internal(
                    "a SQLite store handed out a PostgreSQL connection".into(),
                )),
            })
        })
        // SQLite leaves the copy to the OS cache; make it durable before
        // saying it is done.
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| StoreError::internal("syncing the backup file failed", &e))
        });
    if let Err(e) = copied {
        // Only the file this call created, never anything else.
        let _ = std::fs::remove_file(dest);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;
    use crate::testing::backends;
    use crate::{db::connection::Backend, engine::StoreConfig, scim::list::ListQuery};

    fn user_names(store: &Store) -> Vec<String> {
        let page = store
            .read(|c| {
                crate::scim::users::list_users(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &ListQuery {
                        filter: None,
                        sort_by: None,
                        descending: false,
                        start_index: 1,
                        count: 1000,
                    },
                )
            })
            .unwrap();
        let mut names: Vec<String> = page
            .items
            .iter()
            .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_live_sqlite_database_is_copied_whole_to_a_private_new_file() {
        for db in backends() {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("backup.db");
            if db.backend() == Backend::Postgres {
                let err = backup_sqlite(db.store(), &dest).unwrap_err().to_string();
                assert!(err.contains("pg_dump"), "{err}");
                assert!(!dest.exists());
                continue;
            }
            for i in 0..50 {
                let attrs = json!({"userName": format!("user{i}@example.com")});
                db.store()
                    .write(|c| {
                        crate::scim::users::insert_user(
                            c,
                            crate::db::org::OrgId::DEFAULT,
                            attrs.as_object().unwrap(),
                            None,
                        )
                    })
                    .unwrap();
            }
            // The store stays open and serving: this is the online case.
            backup_sqlite(db.store(), &dest).unwrap();
            assert_eq!(
                std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let copy = Store::connect(&StoreConfig {
                url: format!("sqlite://{}", dest.display()),
                pool_size: 1,
                connect_timeout: std::time::Duration::from_secs(5),
            })
            .unwrap();
            assert!(copy.migrate().unwrap().is_empty(), "fully migrated");
            assert_eq!(user_names(&copy).len(), 50);
            assert_eq!(user_names(&copy), user_names(db.store()));

            // Never over an existing file, and the existing file is untouched.
            let before = std::fs::read(&dest).unwrap();
            let err = backup_sqlite(db.store(), &dest).unwrap_err().to_string();
            assert!(err.contains("already exists"), "{err}");
            assert_eq!(std::fs::read(&dest).unwrap(), before);
            // A missing directory is named.
            let err = backup_sqlite(db.store(), &dir.path().join("no/such/dir.db"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("cannot create"), "{err}");
        }
    }
}
