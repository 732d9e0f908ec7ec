//! User Synchronization state: whether the SCIM API accepts the identity
//! provider's requests, and the log of who switched it, when and with what.
//!
//! The state is one row read on every SCIM request. [`require_sync_enabled`]
//! is a statically typed Diesel query, so both backends keep it as a cached
//! prepared statement; callers run it on the connection they already hold
//! (no second pool checkout), which is what makes a switch take effect on
//! the next request of every replica without a cache to invalidate.

use diesel::prelude::*;

use crate::admin::settings::ScimRuntime;
use crate::db::connection::DbConnection;
use crate::db::gate;
use crate::db::org::OrgId;
use crate::db::schema::admin::{sync_events, sync_state};
use crate::db::sql::{load, SqlBuilder};
use crate::error::StoreError;

pub use crate::error::SYNC_DISABLED_DETAIL;

/// The current User Synchronization state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// Whether the SCIM API accepts requests.
    pub enabled: bool,
    /// When it was last enabled.
    pub enabled_at: Option<String>,
    /// Who last enabled it.
    pub enabled_by: Option<String>,
    /// The caution ids accepted when it was enabled (empty while disabled).
    pub accepted_cautions: Vec<String>,
    /// When it was last enabled or disabled.
    pub changed_at: Option<String>,
    /// Who last enabled or disabled it.
    pub changed_by: Option<String>,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sync_events)]
pub struct SyncEvent {
    /// UUID text.
    pub id: String,
    /// When.
    pub at: String,
    /// Who (`admin:NAME`, `token:NAME`, `cli:USER`).
    pub actor: String,
    /// `enabled` or `disabled`.
    pub action: String,
    /// What was accepted, or why.
    pub detail: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sync_state)]
struct SyncStateRow {
    enabled: bool,
    enabled_at: Option<String>,
    enabled_by: Option<String>,
    accepted_cautions: String,
    changed_at: Option<String>,
    changed_by: Option<String>,
}

/// The error returned while synchronization is disabled
/// ([`StoreError::SyncDisabled`]); it flows through repository closures
/// unchanged and the HTTP layer answers it with 403.
pub fn sync_disabled_error() -> StoreError {
    StoreError::SyncDisabled
}

/// Whether `err` is the error of [`require_sync_enabled`].
#[cfg(any(test, feature = "testing"))]
pub fn is_sync_disabled(err: &StoreError) -> bool {
    matches!(err, StoreError::SyncDisabled)
}

/// Whether User Synchronization is enabled (a missing row means disabled).
pub fn sync_enabled(conn: &mut DbConnection, org: OrgId) -> Result<bool, StoreError> {
    Ok(sync_state::table
        .filter(sync_state::id.eq(org.0))
        .select(sync_state::enabled)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// `Ok(())` while synchronization is enabled, else [`sync_disabled_error`].
#[cfg(any(test, feature = "testing"))]
pub fn require_sync_enabled(conn: &mut DbConnection, org: OrgId) -> Result<(), StoreError> {
    if sync_enabled(conn, org)? {
        Ok(())
    } else {
        Err(sync_disabled_error())
    }
}

/// `sync_state.enabled` and the settings the SCIM API applies (NULL when the
/// settings row is missing).
#[derive(QueryableByName)]
struct GateRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    enabled: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    deprovisioning: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    default_page_size: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    max_page_size: Option<i32>,
}

/// The per-request gate of the SCIM API: `Err(`[`sync_disabled_error`]`)`
/// while synchronization is disabled, else the run-time settings the API
/// applies. ONE query (a cached prepared statement) reads
/// both one-row tables, so applying the settings costs no round trip
/// beyond the sync check, and a change of either takes effect on the next
/// request of every replica.
pub fn scim_gate(conn: &mut DbConnection, org: OrgId) -> Result<ScimRuntime, StoreError> {
    // The store's own SQL text rather than the Diesel DSL: every SCIM
    // write runs this in the SQLite writer's critical section, and
    // building the DSL query (its AST walk, for the statement cache's
    // key) cost more than running it.
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("SELECT ")
        .push(gate::COLUMNS)
        .push(" FROM ")
        .push(gate::FROM)
        .push(" WHERE ");
    gate::push_where(&mut b, org);
    let rows: Vec<GateRow> = load(conn, &b)?;
    let row = gate::passed(rows.into_iter().next(), |row| row.enabled)?;
    ScimRuntime::from_stored(
        org,
        row.deprovisioning.as_deref(),
        row.default_page_size,
        row.max_page_size,
    )
}

/// The whole state.
pub fn get_sync_state(conn: &mut DbConnection, org: OrgId) -> Result<SyncState, StoreError> {
    let row: Option<SyncStateRow> = sync_state::table
        .filter(sync_state::id.eq(org.0))
        .select(SyncStateRow::as_select())
        .first(conn)
        .optional()?;
    Ok(match row {
        Some(r) => SyncState {
            enabled: r.enabled,
            enabled_at: r.enabled_at,
            enabled_by: r.enabled_by,
            accepted_cautions: split_ids(&r.accepted_cautions),
            changed_at: r.changed_at,
            changed_by: r.changed_by,
        },
        None => SyncState {
            enabled: false,
            enabled_at: None,
            enabled_by: None,
            accepted_cautions: Vec::new(),
            changed_at: None,
            changed_by: None,
        },
    })
}

fn split_ids(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Enables synchronization on behalf of `actor`, recording the accepted
/// caution ids, and logs the change. Run it inside `Store::write` so the
/// state and its log entry commit together.
pub fn enable_sync(
    conn: &mut DbConnection,
    org: OrgId,
    actor: &str,
    accepted_cautions: &[String],
) -> Result<SyncState, StoreError> {
    let now = scim_core::datetime::now();
    let accepted = accepted_cautions.join(",");
    ensure_row(conn, org)?;
    diesel::update(sync_state::table.filter(sync_state::id.eq(org.0)))
        .set((
            sync_state::enabled.eq(true),
            sync_state::enabled_at.eq(&now),
            sync_state::enabled_by.eq(actor),
            sync_state::accepted_cautions.eq(&accepted),
            sync_state::changed_at.eq(&now),
            sync_state::changed_by.eq(actor),
        ))
        .execute(conn)?;
    log_event(
        conn,
        org,
        &now,
        actor,
        "enabled",
        &format!("accepted cautions: {accepted}"),
    )?;
    get_sync_state(conn, org)
}

/// Disables synchronization on behalf of `actor` and logs the change. The
/// accepted cautions are cleared: enabling again means reading them again.
pub fn disable_sync(
    conn: &mut DbConnection,
    org: OrgId,
    actor: &str,
    reason: &str,
) -> Result<SyncState, StoreError> {
    let now = scim_core::datetime::now();
    ensure_row(conn, org)?;
    diesel::update(sync_state::table.filter(sync_state::id.eq(org.0)))
        .set((
            sync_state::enabled.eq(false),
            sync_state::accepted_cautions.eq(""),
            sync_state::changed_at.eq(&now),
            sync_state::changed_by.eq(actor),
        ))
        .execute(conn)?;
    log_event(conn, org, &now, actor, "disabled", reason)?;
    get_sync_state(conn, org)
}

/// The organization's most recent `limit` changes, newest first.
pub fn list_sync_events(
    conn: &mut DbConnection,
    org: OrgId,
    limit: i64,
) -> Result<Vec<SyncEvent>, StoreError> {
    Ok(sync_events::table
        .filter(sync_events::org_id.eq(org.0))
        .select(SyncEvent::as_select())
        .order((sync_events::at.desc(), sync_events::id.desc()))
        .limit(limit.max(0))
        .load(conn)?)
}

/// Re-creates the state row if an operator deleted it by hand.
fn ensure_row(conn: &mut DbConnection, org: OrgId) -> Result<(), StoreError> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        sync_state::table.filter(sync_state::id.eq(org.0)),
    ))
    .get_result(conn)?;
    if !exists {
        diesel::insert_into(sync_state::table)
            .values((
                sync_state::id.eq(org.0),
                sync_state::enabled.eq(false),
                sync_state::accepted_cautions.eq(""),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn log_event(
    conn: &mut DbConnection,
    org: OrgId,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(sync_events::table)
        .values((
            sync_events::id.eq(uuid::Uuid::new_v4().to_string()),
            sync_events::at.eq(at),
            sync_events::actor.eq(actor),
            sync_events::action.eq(action),
            sync_events::detail.eq(detail),
            sync_events::org_id.eq(org.0),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    #[test]
    fn starts_disabled_then_enables_and_disables_with_a_log() {
        for db in backends() {
            let store = db.store();
            assert!(!store
                .read(|c| sync_enabled(c, crate::db::org::OrgId::DEFAULT))
                .unwrap());
            let err = store
                .read(|c| require_sync_enabled(c, crate::db::org::OrgId::DEFAULT))
                .unwrap_err();
            assert!(is_sync_disabled(&err), "{err}");
            assert!(!is_sync_disabled(&StoreError::Unavailable("pool".into())));

            let accepted = vec!["a".to_string(), "b".to_string()];
            let state = store
                .write(|c| enable_sync(c, crate::db::org::OrgId::DEFAULT, "admin:alice", &accepted))
                .unwrap();
            assert!(state.enabled);
            assert_eq!(state.enabled_by.as_deref(), Some("admin:alice"));
            assert_eq!(state.accepted_cautions, accepted);
            assert!(state.enabled_at.is_some());
            store
                .read(|c| require_sync_enabled(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();

            let state = store
                .write(|c| {
                    disable_sync(c, crate::db::org::OrgId::DEFAULT, "cli:root", "maintenance")
                })
                .unwrap();
            assert!(!state.enabled);
            assert!(state.accepted_cautions.is_empty());
            // enabled_at/by keep the last enablement.
            assert_eq!(state.enabled_by.as_deref(), Some("admin:alice"));
            assert_eq!(state.changed_by.as_deref(), Some("cli:root"));

            let events = store
                .read(|c| list_sync_events(c, crate::db::org::OrgId::DEFAULT, 10))
                .unwrap();
            assert_eq!(events.len(), 2, "{:?}", db.backend());
            assert_eq!(events[0].action, "disabled");
            assert_eq!(events[0].actor, "cli:root");
            assert_eq!(events[0].detail, "maintenance");
            assert_eq!(events[1].action, "enabled");
            assert!(events[1].detail.contains("a,b"));
            assert_eq!(
                store
                    .read(|c| list_sync_events(c, crate::db::org::OrgId::DEFAULT, 1))
                    .unwrap()
                    .len(),
                1
            );
        }
    }

    /// The gate reads the sync state and the settings in one query, and
    /// sees a settings change at once.
    #[test]
    fn the_gate_returns_the_runtime_settings_while_enabled() {
        use crate::admin::settings::{
            get_runtime_settings, update_runtime_settings, Deprovisioning, SettingsValues,
        };
        for db in backends() {
            let store = db.store();
            let err = store
                .read(|c| scim_gate(c, crate::db::org::OrgId::DEFAULT))
                .unwrap_err();
            assert!(is_sync_disabled(&err), "{err}");
            store
                .write(|c| enable_sync(c, crate::db::org::OrgId::DEFAULT, "cli:x", &[]))
                .unwrap();
            let gate = store
                .read(|c| scim_gate(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            assert_eq!(
                gate,
                ScimRuntime {
                    org: crate::db::org::OrgId::DEFAULT,
                    deprovisioning: Deprovisioning::Hard,
                    default_page_size: 100,
                    max_page_size: 1000,
                }
            );
            let version = store
                .read(|c| get_runtime_settings(c, crate::db::org::OrgId::DEFAULT))
                .unwrap()
                .version;
            let values = SettingsValues {
                deprovisioning: Deprovisioning::Soft,
                soft_delete_retention_days: 3,
                default_page_size: 2,
                max_page_size: 5,
                change_log_retention_days: 90,
                ..crate::admin::settings::default_settings()
            };
            store
                .write(|c| {
                    update_runtime_settings(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &values,
                        version,
                        "cli:x",
                    )
                })
                .unwrap();
            let gate = store
                .read(|c| scim_gate(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            assert_eq!(gate.deprovisioning, Deprovisioning::Soft);
            assert_eq!((gate.default_page_size, gate.max_page_size), (2, 5));
            assert_eq!(gate.page_size(None), 2);
            assert_eq!(gate.page_size(Some(50)), 5);
            assert_eq!(gate.page_size(Some(-3)), 0);
            // A missing settings row means the defaults.
            store
                .write(|c| {
                    diesel::delete(crate::db::schema::admin::runtime_settings::table).execute(c)?;
                    Ok(())
                })
                .unwrap();
            assert_eq!(
                store
                    .read(|c| scim_gate(c, crate::db::org::OrgId::DEFAULT))
                    .unwrap()
                    .default_page_size,
                100
            );
            store
                .write(|c| disable_sync(c, crate::db::org::OrgId::DEFAULT, "cli:x", "done"))
                .unwrap();
            assert!(is_sync_disabled(
                &store
                    .read(|c| scim_gate(c, crate::db::org::OrgId::DEFAULT))
                    .unwrap_err()
            ));
        }
    }

    #[test]
    fn a_deleted_state_row_reads_as_disabled_and_is_recreated() {
        for db in backends() {
            let store = db.store();
            store
                .write(|c| {
                    diesel::delete(sync_state::table).execute(c)?;
                    Ok(())
                })
                .unwrap();
            assert!(!store
                .read(|c| sync_enabled(c, crate::db::org::OrgId::DEFAULT))
                .unwrap());
            assert!(
                !store
                    .read(|c| get_sync_state(c, crate::db::org::OrgId::DEFAULT))
                    .unwrap()
                    .enabled
            );
            let state = store
                .write(|c| enable_sync(c, crate::db::org::OrgId::DEFAULT, "cli:x", &[]))
                .unwrap();
            assert!(state.enabled);
            assert!(store
                .read(|c| sync_enabled(c, crate::db::org::OrgId::DEFAULT))
                .unwrap());
        }
    }
}
