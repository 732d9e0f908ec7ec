//! Transactions that begin as the store needs them: `BEGIN IMMEDIATE` on
//! SQLite, so a write transaction takes the write lock up front instead of
//! failing to upgrade a read lock later.

use diesel::connection::{AnsiTransactionManager, TransactionManager};

use crate::db::connection::DbConnection;
use crate::error::StoreError;

/// `TransactionManager::transaction`, but opening the transaction with
/// `BEGIN IMMEDIATE` on SQLite. The derived multi-connection transaction
/// manager delegates to the inner connection's `AnsiTransactionManager`, so
/// beginning on the inner connection and committing through the outer one
/// keeps Diesel's transaction state consistent.
pub(crate) fn transaction<T, F>(conn: &mut DbConnection, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    transaction_begun_by(conn, "BEGIN", f)
}

/// [`transaction`], beginning it on PostgreSQL with `pg_begin` (which
/// must start with `BEGIN`; it may add statements, such as `SET LOCAL`,
/// that run in the same round trip).
pub(crate) fn transaction_begun_by<T, F>(
    conn: &mut DbConnection,
    pg_begin: &str,
    f: F,
) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        }
        DbConnection::Postgres(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, pg_begin)?;
        }
    }
    match f(conn) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) =
                <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn)
            {
                // The connection is now marked broken and r2d2 drops it;
                // the caller's error is the one worth reporting.
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}
