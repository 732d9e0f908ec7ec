//! The User Synchronization gate, as the SQL that reads it and the check
//! that turns what it read into [`StoreError::SyncDisabled`].
//!
//! Every SCIM request passes the gate: `sync_state.enabled` of its
//! organization's row (`sync_state.id` is the organization's id), read
//! with the organization's row of `runtime_settings` (the settings the
//! SCIM API applies). The store reads it inside the statement
//! that does the request's work wherever it can, so the fragments below
//! are the only places that name those rows in SQL text. The organization's id
//! is a bound parameter, so every statement that embeds a fragment keeps
//! one text (one cached prepared statement) for every organization.

use crate::db::org::OrgId;
use crate::db::sql::{Bind, SqlBuilder};
use crate::error::StoreError;

/// The gate's columns: `enabled`, then the run-time settings
/// (`deprovisioning`, `default_page_size`, `max_page_size`; NULL when
/// their row is missing), read from [`FROM`].
pub(crate) const COLUMNS: &str = "s.enabled AS enabled, r.deprovisioning AS deprovisioning, \
     r.default_page_size AS default_page_size, r.max_page_size AS max_page_size";

/// The gate's rows as a FROM item: `sync_state` as `s`, joined to
/// `runtime_settings` as `r` (both keyed by the organization's id). A
/// statement that reads the gate this way ends with [`push_where`] (after
/// any further joins).
pub(crate) const FROM: &str = "sync_state s LEFT JOIN runtime_settings r ON r.id = s.id";

/// The condition that picks the organization's row out of [`FROM`].
pub(crate) fn push_where(b: &mut SqlBuilder, org: OrgId) {
    b.push("s.id = ").bind(Bind::Integer(org.0));
}

/// A condition true while the organization's gate is open, for a write
/// that must change nothing while it is closed (`… WHERE <key> AND `
/// [`push_open`]).
pub(crate) fn push_open(b: &mut SqlBuilder, org: OrgId) {
    b.push("EXISTS (SELECT 1 FROM sync_state s WHERE s.id = ")
        .bind(Bind::Integer(org.0))
        .push(" AND s.enabled)");
}

/// The gate as a common table expression `g(enabled)`, for PostgreSQL
/// statements that join it to the rows they write: its one placeholder
/// takes the organization's id, bound first.
pub(crate) const CTE: &str = "g AS (SELECT s.enabled FROM sync_state s WHERE s.id = ?)";

/// The row that read the gate, while it reads open; else
/// [`StoreError::SyncDisabled`] (also when no row came back: a missing
/// `sync_state` row means disabled).
pub(crate) fn passed<R>(row: Option<R>, enabled: impl FnOnce(&R) -> bool) -> Result<R, StoreError> {
    match row {
        Some(row) if enabled(&row) => Ok(row),
        _ => Err(StoreError::SyncDisabled),
    }
}
