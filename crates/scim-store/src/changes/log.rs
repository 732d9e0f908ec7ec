//! Writing, reading and purging the change log.

use diesel::prelude::*;

use crate::changes::{Actor, Event};
use crate::db::connection::{Backend, DbConnection};
use crate::db::schema::changes::change_log;
use crate::db::sql::{execute, load, Bind, SqlBuilder};
use crate::error::StoreError;

/// The key of the change log's advisory lock on PostgreSQL ("scimd_lg"):
/// held from the first position a transaction draws to its commit.
const LOCK_KEY: i64 = 0x7363_696d_645f_6c67;

/// A change to record: what, to which resource, with what detail.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    /// What happened.
    pub event: Event,
    /// `User`, `Group`, or the admin resource changed (`Sync`,
    /// `ScimToken`…).
    pub resource_type: String,
    /// The resource's id, when it has one.
    pub resource_id: Option<String>,
    /// The resource's version after the change.
    pub resource_version: Option<i64>,
    /// A JSON object: what changed (`paths`, `members`, `name`…).
    pub detail: serde_json::Value,
    /// The resource after the change, as the SCIM API returns it (JSON
    /// text), for full events; `None` for a notice-only change.
    pub data: Option<String>,
}

impl NewChange {
    /// A change of `event` to the resource `resource_type`/`resource_id`,
    /// with an empty detail and no data.
    pub fn new(event: Event, resource_type: &str, resource_id: Option<&str>) -> NewChange {
        NewChange {
            event,
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.map(str::to_owned),
            resource_version: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
            data: None,
        }
    }

    /// With the resource's version after the change.
    pub fn version(mut self, version: i64) -> NewChange {
        self.resource_version = Some(version);
        self
    }

    /// With `detail` (a JSON object).
    pub fn detail(mut self, detail: serde_json::Value) -> NewChange {
        self.detail = detail;
        self
    }

    /// With the resource after the change (JSON text).
    pub fn data(mut self, data: String) -> NewChange {
        self.data = Some(data);
        self
    }
}

/// Records `changes`, made by `actor` at `at`, in the open transaction on
/// `conn`. Call it as the **last** write of the transaction (see the
/// module documentation of [`crate::changes`]): on PostgreSQL it takes
/// the change log's lock, held until the transaction ends.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    at: &str,
    changes: &[NewChange],
) -> Result<(), StoreError> {
    let each: Vec<(&Actor, &NewChange)> = changes.iter().map(|c| (actor, c)).collect();
    record_each(conn, at, &each)
}

/// [`record`] for changes made by different actors in one transaction
/// (a PostgreSQL batch of User writes from several requests), in one
/// multi-row `INSERT` per [`INSERT_CHUNK`] rows. The same rule applies: the
/// last write of the transaction.
pub fn record_each(
    conn: &mut DbConnection,
    at: &str,
    changes: &[(&Actor, &NewChange)],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let backend = conn.backend();
    for chunk in changes.chunks(INSERT_CHUNK) {
        // The store's own SQL text (one per chunk length), as diesel's
        // multi-row insert is not available on the two-backend connection.
        let mut b = SqlBuilder::fixed(backend);
        b.push("INSERT INTO change_log (").push(COLUMNS).push(") ");
        if backend == Backend::Postgres {
            // The lock in the same statement, saving a round trip: every
            // row's position is drawn by the INSERT from a row the join
            // emits, so only once the one-row lock side has run.
            b.push("SELECT v.* FROM (SELECT pg_advisory_xact_lock(")
                .bind(Bind::BigInt(LOCK_KEY))
                .push(")) AS l, (");
        }
        b.push("VALUES ");
        for (i, (actor, c)) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            for (j, bind) in [
                Bind::Text(at.to_owned()),
                Bind::Text(c.event.as_str().to_owned()),
                Bind::Text(c.resource_type.clone()),
                Bind::NullableText(c.resource_id.clone()),
                Bind::NullableBigInt(c.resource_version),
                Bind::Text(actor.kind.as_str().to_owned()),
                Bind::NullableText(actor.id.clone()),
                Bind::NullableText(actor.name.clone()),
                Bind::NullableText(actor.request_id.clone()),
                Bind::NullableText(actor.address.clone()),
                Bind::Text(c.detail.to_string()),
                Bind::NullableText(c.data.clone()),
            ]
            .into_iter()
            .enumerate()
            {
                if j > 0 {
                    b.push(", ");
                }
                b.bind(bind);
            }
            b.push(")");
        }
        if backend == Backend::Postgres {
            b.push(") AS v(").push(COLUMNS).push(")");
        }
        execute(conn, &b)?;
    }
    Ok(())
}

/// The columns [`record_each`] writes, in its order.
const COLUMNS: &str = "at, event, resource_type, resource_id, resource_version, actor_kind, \
     actor_id, actor_name, request_id, client_address, detail, data";

/// Rows per multi-row `INSERT` of [`record_each`]: at 12 binds a row, far
/// below SQLite's 32766 and PostgreSQL's 65535 binds per statement.
const INSERT_CHUNK: usize = 500;

/// A row of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = change_log)]
pub struct Change {
    /// The cursor: increasing in commit order.
    pub position: i64,
    /// When.
    pub at: String,
    /// What happened ([`Event::as_str`]).
    pub event: String,
    /// `User`, `Group`, or the admin resource changed.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// The resource's version after the change.
    pub resource_version: Option<i64>,
    /// Who ([`crate::changes::ActorKind::as_str`]).
    pub actor_kind: String,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// The actor's name at the time.
    pub actor_name: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
    /// A JSON object: what changed.
    pub detail: String,
    /// JSON: the resource after the change.
    pub data: Option<String>,
}

/// Up to `limit` rows after `position` (exclusive), oldest first: how a
/// reader follows the log. Rows appear in position order (see
/// [`record`]), so a reader that resumes after the last position it saw
/// never misses a row.
pub fn read_after(
    conn: &mut DbConnection,
    position: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(change_log::table
        .filter(change_log::position.gt(position))
        .order(change_log::position.asc())
        .limit(limit.max(0))
        .select(Change::as_select())
        .load(conn)?)
}

/// The position of the newest row (0 when the log is empty).
pub fn last_position(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(change_log::table
        .select(diesel::dsl::max(change_log::position))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Which rows [`list_changes`] returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// Only this resource type (`User`, `Group`, `Sync`…).
    pub resource_type: Option<String>,
    /// Only this resource.
    pub resource_id: Option<String>,
    /// Only this kind of actor.
    pub actor_kind: Option<String>,
    /// Only this actor (by id).
    pub actor_id: Option<String>,
    /// Only these events (stored forms); empty: all.
    pub events: Vec<String>,
    /// Only rows at or after this time.
    pub since: Option<String>,
    /// Only rows before this time.
    pub until: Option<String>,
    /// Only rows before this position (the next page of a previous answer).
    pub before: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// The rows `query` selects, newest first, paged by position (keyset:
/// `before` is the last position of the previous page).
pub fn list_changes(
    conn: &mut DbConnection,
    query: &ChangeQuery,
) -> Result<Vec<Change>, StoreError> {
    let mut b = SqlBuilder::new(conn.backend());
    b.push(
        "SELECT position, at, event, resource_type, resource_id, resource_version, \
         actor_kind, actor_id, actor_name, request_id, client_address, detail, data \
         FROM change_log WHERE 1 = 1",
    );
    let eq = |b: &mut SqlBuilder, column: &str, value: &Option<String>| {
        if let Some(value) = value {
            b.push(" AND ")
                .push(column)
                .push(" = ")
                .bind_text(value.clone());
        }
    };
    eq(&mut b, "resource_type", &query.resource_type);
    eq(&mut b, "resource_id", &query.resource_id);
    eq(&mut b, "actor_kind", &query.actor_kind);
    eq(&mut b, "actor_id", &query.actor_id);
    if !query.events.is_empty() {
        b.push(" AND event IN (");
        for (i, event) in query.events.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind_text(event.clone());
        }
        b.push(")");
    }
    if let Some(since) = &query.since {
        b.push(" AND at >= ").bind_text(since.clone());
    }
    if let Some(until) = &query.until {
        b.push(" AND at < ").bind_text(until.clone());
    }
    if let Some(before) = query.before {
        b.push(" AND position < ").bind(Bind::BigInt(before));
    }
    b.push(" ORDER BY position DESC LIMIT ")
        .bind(Bind::BigInt(query.limit.max(0)));
    Ok(load(conn, &b)?)
}

/// Deletes up to `batch` rows older than `cutoff`, oldest first; returns
/// how many. The retention purge runs it until a batch comes back short.
pub fn purge_changes(
    conn: &mut DbConnection,
    cutoff: &str,
    batch: i64,
) -> Result<usize, StoreError> {
    let oldest: Vec<i64> = change_log::table
        .filter(change_log::at.lt(cutoff))
        .order(change_log::position.asc())
        .limit(batch.max(0))
        .select(change_log::position)
        .load(conn)?;
    match oldest.last() {
        Some(&last) => Ok(diesel::delete(
            change_log::table
                .filter(change_log::position.le(last))
                .filter(change_log::at.lt(cutoff)),
        )
        .execute(conn)?),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::changes::ActorKind;
    use crate::testing::backends;

    fn token() -> Actor {
        Actor::new(
            ActorKind::ScimToken,
            Some("t1".to_owned()),
            Some("Entra ID".to_owned()),
        )
        .with_request(Some("req-1".to_owned()), Some("192.0.2.7".to_owned()))
    }

    #[test]
    fn recorded_rows_read_back_in_order_and_filter() {
        for db in backends() {
            let store = db.store();
            store
                .write(|c| {
                    record(
                        c,
                        &token(),
                        "2026-12-06T10:00:00.000Z",
                        &[
                            NewChange::new(Event::UserCreated, "User", Some("u1"))
                                .version(1)
                                .data(r#"{"userName":"alice"}"#.to_owned()),
                            NewChange::new(Event::UserPatched, "User", Some("u1"))
                                .version(2)
                                .detail(serde_json::json!({"paths": ["title"]})),
                        ],
                    )
                })
                .unwrap();
            store
                .write(|c| {
                    record(
                        c,
                        &Actor::cli("root"),
                        "2026-12-06T11:00:00.000Z",
                        &[NewChange::new(Event::SyncEnabled, "Sync", None)],
                    )
                })
                .unwrap();
            let all = store.read(|c| read_after(c, 0, 10)).unwrap();
            assert_eq!(all.len(), 3, "{}", db.backend());
            assert!(all.windows(2).all(|w| w[0].position < w[1].position));
            assert_eq!(all[0].event, "user.created");
            assert_eq!(all[0].actor_name.as_deref(), Some("Entra ID"));
            assert_eq!(all[0].request_id.as_deref(), Some("req-1"));
            assert_eq!(all[0].client_address.as_deref(), Some("192.0.2.7"));
            assert_eq!(all[1].detail, r#"{"paths":["title"]}"#);
            let after = store.read(|c| read_after(c, all[0].position, 10)).unwrap();
            assert_eq!(after.len(), 2);
            assert_eq!(
                store.read(last_position).unwrap(),
                all[2].position,
                "{}",
                db.backend()
            );

            let timeline = store
                .read(|c| {
                    list_changes(
                        c,
                        &ChangeQuery {
                            resource_id: Some("u1".to_owned()),
                            limit: 10,
                            ..ChangeQuery::default()
                        },
                    )
                })
                .unwrap();
            assert_eq!(
                timeline
                    .iter()
                    .map(|c| c.event.as_str())
                    .collect::<Vec<_>>(),
                ["user.patched", "user.created"],
                "newest first"
            );
            let page = |before| {
                store
                    .read(|c| {
                        list_changes(
                            c,
                            &ChangeQuery {
                                before,
                                limit: 1,
                                ..ChangeQuery::default()
                            },
                        )
                    })
                    .unwrap()
            };
            let first = page(None);
            let second = page(Some(first[0].position));
            assert_eq!(first[0].event, "sync.enabled");
            assert_eq!(second[0].event, "user.patched");
            let filtered = store
                .read(|c| {
                    list_changes(
                        c,
                        &ChangeQuery {
                            actor_kind: Some("cli".to_owned()),
                            events: vec!["sync.enabled".to_owned(), "user.created".to_owned()],
                            since: Some("2026-12-06T10:30:00.000Z".to_owned()),
                            limit: 10,
                            ..ChangeQuery::default()
                        },
                    )
                })
                .unwrap();
            assert_eq!(filtered.len(), 1);
            assert_eq!(filtered[0].event, "sync.enabled");
        }
    }

    /// On PostgreSQL the insert itself takes the change log's lock, held
    /// to the end of the transaction (the ordering rule).
    #[test]
    fn recording_holds_the_change_log_lock_until_the_transaction_ends() {
        #[derive(QueryableByName)]
        struct Held {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let held = |c: &mut DbConnection| -> Result<i64, StoreError> {
            let mut b = SqlBuilder::fixed(c.backend());
            b.push(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted",
            );
            Ok(load::<Held>(c, &b)?[0].n)
        };
        let Some(db) = crate::testing::TestDb::postgres() else {
            return;
        };
        let (before, after) = db
            .store()
            .write(|c| {
                let before = held(c)?;
                record(
                    c,
                    &token(),
                    "2026-12-06T10:00:00.000Z",
                    &[NewChange::new(Event::UserCreated, "User", Some("u1"))],
                )?;
                Ok((before, held(c)?))
            })
            .unwrap();
        assert_eq!((before, after), (0, 1));
    }

    #[test]
    fn a_rolled_back_write_records_nothing_and_positions_never_go_back() {
        for db in backends() {
            let store = db.store();
            let failed: Result<(), StoreError> = store.write(|c| {
                record(
                    c,
                    &token(),
                    "2026-12-06T10:00:00.000Z",
                    &[NewChange::new(Event::UserCreated, "User", Some("u1"))],
                )?;
                Err(StoreError::Conflict("no".to_owned()))
            });
            assert!(failed.is_err());
            assert!(store.read(|c| read_after(c, 0, 10)).unwrap().is_empty());
            let add = |at: &str| {
                store
                    .write(|c| {
                        record(
                            c,
                            &token(),
                            at,
                            &[NewChange::new(Event::GroupCreated, "Group", Some("g"))],
                        )
                    })
                    .unwrap();
            };
            add("2026-01-01T00:00:00.000Z");
            add("2026-01-02T00:00:00.000Z");
            add("2026-12-01T00:00:00.000Z");
            let before = store.read(last_position).unwrap();
            // The purge takes the oldest first, in batches.
            let purged = store
                .write(|c| purge_changes(c, "2026-06-01T00:00:00.000Z", 1))
                .unwrap();
            assert_eq!(purged, 1);
            let purged = store
                .write(|c| purge_changes(c, "2026-12-31T00:00:00.000Z", 10))
                .unwrap();
            assert_eq!(purged, 2);
            assert_eq!(store.read(last_position).unwrap(), 0, "empty");
            add("2026-12-02T00:00:00.000Z");
            let next = store.read(|c| read_after(c, 0, 10)).unwrap();
            assert!(
                next[0].position > before,
                "{}: a position is never reused ({} after {before})",
                db.backend(),
                next[0].position
            );
        }
    }
}
