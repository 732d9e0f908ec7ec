//! The store's error type and the explicit mapping from Diesel and r2d2
//! errors (house style: unique violation → conflict, not found → not found,
//! pool timeout → unavailable, anything else → internal, logged).

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scim_core::ScimError;

/// The `detail` of the error every SCIM request gets while User
/// Synchronization is disabled ([`StoreError::SyncDisabled`]).
pub const SYNC_DISABLED_DETAIL: &str = "user synchronization is disabled: an administrator must enable it (admin console, User Synchronization, or `scimd sync enable --accept-cautions`) before the identity provider can provision users";

/// What a storage operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique value is already taken; the message names it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row exists but its version is not the one expected
    /// (RFC 7644 §3.14, `If-Match`).
    #[error("precondition failed: the resource has been modified")]
    PreconditionFailed,
    /// The request is invalid in SCIM terms (e.g. a filter on an attribute
    /// that is not filterable → `invalidFilter`).
    #[error("{0}")]
    Invalid(ScimError),
    /// User Synchronization is disabled: the SCIM API refuses the request
    /// until an administrator enables it (the message says how).
    #[error("{}", SYNC_DISABLED_DETAIL)]
    SyncDisabled,
    /// The database cannot be reached or the pool is exhausted; retrying
    /// later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The source has been logged; the message carries no SQL
    /// and no secrets.
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Logs `source` and returns an [`StoreError::Internal`] whose message is
    /// only `what` (the source may contain SQL or values).
    pub(crate) fn internal(what: &str, source: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %source, "{what}");
        StoreError::Internal(what.to_owned())
    }
}

impl From<ScimError> for StoreError {
    fn from(e: ScimError) -> Self {
        StoreError::Invalid(e)
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                // Repository functions that know which value was taken map
                // this themselves; this is the generic fallback.
                tracing::debug!(error = %info.message(), "unique violation");
                StoreError::Conflict("a value that must be unique is already taken".to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                tracing::error!(error = %info.message(), "database connection closed");
                StoreError::Unavailable("the database connection was closed".to_owned())
            }
            // A connection lost earlier (the database went away mid-use):
            // libpq no longer sends on it, and a transaction whose
            // ROLLBACK could not be sent leaves the transaction manager
            // broken. Either way the connection is dropped (`has_broken`,
            // or on its next checkout's failure) and a retry opens a new
            // one: unavailable, not internal.
            DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info)
                if info.message().contains("connection") =>
            {
                tracing::error!(error = %info.message(), "database connection lost");
                StoreError::Unavailable("the database connection was lost".to_owned())
            }
            DieselError::BrokenTransactionManager => {
                tracing::error!("database connection lost inside a transaction");
                StoreError::Unavailable("the database connection was lost".to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                tracing::warn!(error = %info.message(), "serialization failure");
                StoreError::Unavailable("the database is busy; retry the request".to_owned())
            }
            // PostgreSQL aborts one of two transactions waiting on each
            // other's row locks (e.g. a group update racing the deletion of
            // one of its members); the request can simply be retried.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("deadlock detected") =>
            {
                tracing::warn!(error = %info.message(), "deadlock");
                StoreError::Unavailable("the database is busy; retry the request".to_owned())
            }
            // SQLite reports lock contention beyond busy_timeout as an
            // unclassified error; it is transient, not a bug.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                tracing::warn!(error = %info.message(), "database busy");
                StoreError::Unavailable("the database is busy; retry the request".to_owned())
            }
            // PostgreSQL refuses NUL in text and index entries over about
            // 2.7 KB, where SQLite takes both. The SCIM API refuses NUL and
            // indexes long values through a hash before they get here; this
            // answers the client (400, nothing written) wherever another
            // caller's value still reaches such a column.
            DieselError::DatabaseError(_, info)
                if info.message().contains("0x00") || info.message().contains("index row size") =>
            {
                tracing::warn!(error = %info.message(), "a value the database refuses");
                StoreError::Invalid(ScimError::invalid_value(
                    "a value contains the NUL character (U+0000) or is too long for an indexed \
                     field; remove the NUL character or shorten the value",
                ))
            }
            other => StoreError::internal("database query failed", &other),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        // r2d2 only fails `get` when the checkout times out; its message
        // carries the last connection error, which names no secret.
        tracing::warn!(error = %e, "database pool checkout timed out");
        StoreError::Unavailable(format!("no database connection available: {e}"))
    }
}

/// `NotFound` for an id holding NUL: no stored id does, and PostgreSQL
/// refuses NUL in any text parameter, so such an id must not reach SQL.
pub(crate) fn known_id(id: &str) -> Result<(), StoreError> {
    if id.contains('\0') {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Whether `e` is a unique violation (used where the caller knows which
/// value it concerns and can say so).
pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_lost_connection_is_unavailable_and_other_send_failures_internal() {
        for e in [
            db_error(
                DatabaseErrorKind::ClosedConnection,
                "SSL SYSCALL error: EOF detected",
            ),
            db_error(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            DieselError::BrokenTransactionManager,
        ] {
            assert!(
                matches!(StoreError::from(e), StoreError::Unavailable(_)),
                "should be unavailable"
            );
        }
        let e = db_error(
            DatabaseErrorKind::UnableToSendCommand,
            "number of parameters must be between 0 and 65535",
        );
        assert!(matches!(StoreError::from(e), StoreError::Internal(_)));
    }
}
