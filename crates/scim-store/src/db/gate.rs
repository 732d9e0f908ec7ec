//! The User Synchronization gate, as the SQL that reads it and the check
//! that turns what it read into [`StoreError::SyncDisabled`].
//!
//! Every SCIM request passes the gate: `sync_state.enabled` of the one row
//! of `sync_state`, read with the one row of `runtime_settings` (the
//! settings the SCIM API applies). The store reads it inside the statement
//! that does the request's work wherever it can, so the fragments below
//! are the only places that name those rows in SQL text. The ids are
//! literals, so every statement that embeds a fragment keeps one text (one
//! cached prepared statement).

use crate::error::StoreError;

/// The only row of `sync_state`.
pub(crate) const STATE_ID: i32 = 1;

/// The only row of `runtime_settings`.
pub(crate) const SETTINGS_ID: i32 = 1;

/// The gate's columns: `enabled`, then the run-time settings
/// (`deprovisioning`, `default_page_size`, `max_page_size`; NULL when
/// their row is missing), read from [`FROM`].
pub(crate) const COLUMNS: &str = "s.enabled AS enabled, r.deprovisioning AS deprovisioning, \
     r.default_page_size AS default_page_size, r.max_page_size AS max_page_size";

/// The gate's rows as a FROM item: `sync_state` as `s`, joined to
/// `runtime_settings` as `r`. A statement that reads the gate this way
/// ends with [`WHERE`] (after any further joins).
pub(crate) const FROM: &str = "sync_state s LEFT JOIN runtime_settings r ON r.id = 1";

/// The condition that picks the gate's row out of [`FROM`].
pub(crate) const WHERE: &str = "s.id = 1";

/// A condition true while the gate is open, for a write that must change
/// nothing while it is closed (`… WHERE <key> AND ` [`OPEN`]).
pub(crate) const OPEN: &str = "EXISTS (SELECT 1 FROM sync_state s WHERE s.id = 1 AND s.enabled)";

/// The gate as a common table expression `g(enabled)`, for PostgreSQL
/// statements that join it to the rows they write.
pub(crate) const CTE: &str = "g AS (SELECT s.enabled FROM sync_state s WHERE s.id = 1)";

/// The row that read the gate, while it reads open; else
/// [`StoreError::SyncDisabled`] (also when no row came back: a missing
/// `sync_state` row means disabled).
pub(crate) fn passed<R>(row: Option<R>, enabled: impl FnOnce(&R) -> bool) -> Result<R, StoreError> {
    match row {
        Some(row) if enabled(&row) => Ok(row),
        _ => Err(StoreError::SyncDisabled),
    }
}
