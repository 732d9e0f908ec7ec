//! The embedded migrations (`migrations/sqlite`, `migrations/postgres`,
//! with identical folder names) and the functions that apply them.

use diesel::migration::MigrationSource;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::db::connection::{Backend, DbConnection};
use crate::error::StoreError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Applies the embedded migrations of the connection's backend that are
/// pending; returns the names of those applied (for tools that work on a
/// plain connection, such as `tools/copy.rs`).
pub(crate) fn migrate_connection(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    match conn {
        DbConnection::Sqlite(c) => run_pending(c, SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => run_pending(c, POSTGRES_MIGRATIONS),
    }
}

/// The versions of the migrations embedded for `backend`, oldest first.
pub(crate) fn embedded_migration_versions(backend: Backend) -> Result<Vec<String>, StoreError> {
    fn versions<DB: diesel::backend::Backend>(
        source: &EmbeddedMigrations,
    ) -> Result<Vec<String>, StoreError>
    where
        EmbeddedMigrations: MigrationSource<DB>,
    {
        let migrations = MigrationSource::<DB>::migrations(source)
            .map_err(|e| StoreError::internal("listing the embedded migrations failed", &e))?;
        Ok(migrations
            .iter()
            .map(|m| m.name().version().to_string())
            .collect())
    }
    match backend {
        Backend::Sqlite => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
        Backend::Postgres => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
    }
}

fn run_pending<DB, C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, StoreError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let pending = conn
        .pending_migrations(source)
        .map_err(|e| StoreError::internal("listing pending migrations failed", &e))?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in pending {
        conn.run_migration(&*migration)
            .map_err(|e| StoreError::internal("applying a migration failed", &e))?;
        applied.push(migration.name().to_string());
    }
    Ok(applied)
}

/// Reverts every applied migration, newest first; returns the names of
/// those reverted.
pub(crate) fn revert_all(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StoreError::internal("reverting migrations failed", &e))?;
    Ok(reverted.iter().map(ToString::to_string).collect())
}

/// Reverts the newest applied migration; returns its name.
pub(crate) fn revert_last(conn: &mut DbConnection) -> Result<String, StoreError> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StoreError::internal("reverting a migration failed", &e))?;
    Ok(reverted.to_string())
}
