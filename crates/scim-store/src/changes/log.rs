//! Writing, reading and purging the change log.

use diesel::prelude::*;

use crate::changes::{Actor, Event};
use crate::db::connection::{Backend, DbConnection};
use crate::db::org::OrgId;
use crate::db::schema::changes::change_log;
use crate::db::sql::{execute, load, Bind, PatternKind, SqlBuilder};
use crate::error::StoreError;

/// The key of the change log's advisory lock on PostgreSQL ("scimd_lg").
/// A writer holds it shared from the first position its transaction draws
/// to its commit, so writers never wait for each other; [`horizon`] takes
/// it exclusively for a moment, to see a log in which no drawn position
/// is still in flight.
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
    /// The `data` of the change's full event (JSON text): a created or
    /// replaced resource as the SCIM API returns it, or the PATCH
    /// operations of a patched one; `None` for a notice-only change.
    pub data: Option<String>,
    /// The resource's `externalId`, for the `sub_id` of its events.
    pub external_id: Option<String>,
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
            external_id: None,
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

    /// With the `data` of the change's full event (JSON text).
    pub fn data(mut self, data: String) -> NewChange {
        self.data = Some(data);
        self
    }

    /// With the resource's `externalId`, when it has one.
    pub fn external_id(mut self, external_id: Option<String>) -> NewChange {
        self.external_id = external_id;
        self
    }
}

/// Records `changes`, made by `actor` at `at`, in the open transaction on
/// `conn`. Call it as the **last** write of the transaction (see the
/// module documentation of [`crate::changes`]): on PostgreSQL it takes
/// the change log's lock, shared, held until the transaction ends.
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
            b.push("SELECT v.* FROM (SELECT pg_advisory_xact_lock_shared(")
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
                Bind::NullableText(c.external_id.clone()),
                Bind::Integer(actor.org.0),
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
     actor_id, actor_name, request_id, client_address, detail, data, external_id, org_id";

/// Rows per multi-row `INSERT` of [`record_each`]: at 14 binds a row, far
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
    /// JSON: the `data` of the change's full event.
    pub data: Option<String>,
    /// The resource's `externalId`.
    pub external_id: Option<String>,
}

/// The position up to which the log is settled: every row at or below it
/// that will ever be visible is visible now, so a reader may move its
/// cursor up to it and never find a smaller position appear later.
///
/// On SQLite that is the newest position: the single writer commits in
/// position order. On PostgreSQL positions are drawn in the order writers
/// reach the change log, not the order they commit, so a reader could see
/// position 8 committed while 7 is still in flight. Each writer holds the
/// change log's lock shared from drawing its positions to its commit
/// ([`record_each`]); here a short transaction of its own takes the lock
/// exclusively, which waits for the writers in flight to end and holds
/// new ones back for as long as it reads the newest position. Every
/// position drawn before is then committed or rolled back, and every one
/// drawn after is larger. Writers thus only wait for a reader for the
/// length of one commit, and never for each other.
///
/// On PostgreSQL it must not run inside a transaction (it would hold the
/// lock to that transaction's end): take it first, then pass it to
/// [`read_between`] and the functions that follow the log in a write.
pub fn horizon(conn: &mut DbConnection) -> Result<i64, StoreError> {
    match conn {
        DbConnection::Sqlite(_) => last_position(conn),
        DbConnection::Postgres(pg) => {
            use diesel::connection::{AnsiTransactionManager, TransactionManager};
            let depth =
                AnsiTransactionManager::transaction_manager_status_mut(pg).transaction_depth()?;
            if depth.is_some() {
                return Err(StoreError::Internal(
                    "the change log's horizon is taken outside a transaction".into(),
                ));
            }
            crate::db::transaction::transaction(conn, |c| {
                let mut b = SqlBuilder::fixed(Backend::Postgres);
                b.push("SELECT pg_advisory_xact_lock(")
                    .bind(Bind::BigInt(LOCK_KEY))
                    .push(")");
                execute(c, &b)?;
                last_position(c)
            })
        }
    }
}

/// Up to `limit` rows after `position` (exclusive), oldest first, up to
/// the [`horizon`]: how a reader follows the log. Each call takes the
/// horizon, so on PostgreSQL it must not run inside a transaction.
pub fn read_after(
    conn: &mut DbConnection,
    position: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let until = horizon(conn)?;
    read_between(conn, position, until, limit)
}

/// Up to `limit` rows after `after` (exclusive) and up to `until`
/// (inclusive, a [`horizon`] taken before), oldest first. A reader that
/// resumes after the last position it saw, with an `until` no newer than
/// the horizon, never misses a row.
pub fn read_between(
    conn: &mut DbConnection,
    after: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(change_log::table
        .filter(change_log::position.gt(after))
        .filter(change_log::position.le(until))
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
    /// A timeline: only rows about this resource, **and** the Group rows
    /// `group.members_added` / `group.members_removed` whose
    /// `detail.members` names it (a user's memberships live on the
    /// Group's rows). Combined with the other filters.
    pub subject: Option<String>,
    /// Only this organization's rows (`None`: every organization's).
    pub org: Option<OrgId>,
}

/// The columns of a [`Change`], in its field order.
const CHANGE_COLUMNS: &str = "position, at, event, resource_type, resource_id, resource_version, \
     actor_kind, actor_id, actor_name, request_id, client_address, detail, data, external_id";

/// The membership events, whose `detail.members` lists member ids.
const MEMBERSHIP_EVENTS: [Event; 2] = [Event::MembersAdded, Event::MembersRemoved];

/// Appends ` AND …` for every filter of `query` but the subject.
fn push_filters(b: &mut SqlBuilder, query: &ChangeQuery) {
    let eq = |b: &mut SqlBuilder, column: &str, value: &Option<String>| {
        if let Some(value) = value {
            b.push(" AND ")
                .push(column)
                .push(" = ")
                .bind_text(value.clone());
        }
    };
    if let Some(org) = query.org {
        b.push(" AND org_id = ").bind(Bind::Integer(org.0));
    }
    eq(b, "resource_type", &query.resource_type);
    eq(b, "resource_id", &query.resource_id);
    eq(b, "actor_kind", &query.actor_kind);
    eq(b, "actor_id", &query.actor_id);
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
}

/// The rows `query` selects, newest first, paged by position (keyset:
/// `before` is the last position of the previous page).
///
/// A `subject` (a timeline) is the union of three index-served
/// branches, each cut at `limit` before they are merged: the rows of the
/// resource (index `change_log_resource`), and, per membership event, the
/// rows naming it, read newest first through index `change_log_event`
/// (event, position) with a substring match of the quoted id in
/// `detail`, until `limit` match. A page thus costs at most the
/// membership rows kept (bounded by the retention), and much less for a
/// member of recently changed groups.
pub fn list_changes(
    conn: &mut DbConnection,
    query: &ChangeQuery,
) -> Result<Vec<Change>, StoreError> {
    let mut b = SqlBuilder::new(conn.backend());
    let limit = query.limit.max(0);
    match &query.subject {
        None => {
            b.push("SELECT ")
                .push(CHANGE_COLUMNS)
                .push(" FROM change_log WHERE 1 = 1");
            push_filters(&mut b, query);
        }
        Some(subject) => {
            b.push("SELECT ")
                .push(CHANGE_COLUMNS)
                .push(" FROM (SELECT ")
                .push(CHANGE_COLUMNS)
                .push(" FROM change_log WHERE resource_id = ")
                .bind_text(subject.clone());
            push_filters(&mut b, query);
            b.push(" ORDER BY position DESC LIMIT ")
                .bind(Bind::BigInt(limit))
                .push(") AS own");
            // Ids are quoted in the JSON text: `"members":["id",…]`.
            let quoted = serde_json::Value::String(subject.clone()).to_string();
            // One branch per event, so that each walks its index
            // (event, position) backwards and stops at `limit` matches.
            for (i, event) in MEMBERSHIP_EVENTS.iter().enumerate() {
                b.push(" UNION SELECT ")
                    .push(CHANGE_COLUMNS)
                    .push(" FROM (SELECT ")
                    .push(CHANGE_COLUMNS)
                    .push(" FROM change_log WHERE event = ")
                    .bind_text(event.as_str())
                    .push(" AND resource_type = 'Group' AND ");
                b.push_pattern("detail", PatternKind::Contains, &quoted);
                push_filters(&mut b, query);
                b.push(" ORDER BY position DESC LIMIT ")
                    .bind(Bind::BigInt(limit))
                    .push(if i == 0 { ") AS added" } else { ") AS removed" });
            }
        }
    }
    b.push(" ORDER BY position DESC LIMIT ")
        .bind(Bind::BigInt(limit));
    Ok(load(conn, &b)?)
}

/// Deletes up to `batch` rows older than `cutoff`, oldest first; returns
/// how many. The retention purge runs it until a batch comes back short.
pub fn purge_changes(
    conn: &mut DbConnection,
    org: OrgId,
    cutoff: &str,
    batch: i64,
) -> Result<usize, StoreError> {
    let oldest: Vec<i64> = change_log::table
        .filter(change_log::org_id.eq(org.0))
        .filter(change_log::at.lt(cutoff))
        .order(change_log::position.asc())
        .limit(batch.max(0))
        .select(change_log::position)
        .load(conn)?;
    match oldest.last() {
        Some(&last) => Ok(diesel::delete(
            change_log::table
                .filter(change_log::org_id.eq(org.0))
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

    /// A subject's timeline: its own rows and the membership rows naming
    /// it, not those naming an id it is a prefix of; other filters apply.
    #[test]
    fn a_timeline_includes_the_membership_rows_naming_it() {
        for db in backends() {
            let store = db.store();
            let members = |ids: &[&str]| serde_json::json!({ "members": ids });
            store
                .write(|c| {
                    record(
                        c,
                        &token(),
                        "2026-12-06T10:00:00.000Z",
                        &[
                            NewChange::new(Event::UserCreated, "User", Some("u1")),
                            NewChange::new(Event::UserCreated, "User", Some("u10")),
                            NewChange::new(Event::MembersAdded, "Group", Some("g1"))
                                .detail(members(&["u10", "u1"])),
                            NewChange::new(Event::MembersAdded, "Group", Some("g2"))
                                .detail(members(&["u10"])),
                            NewChange::new(Event::GroupPatched, "Group", Some("g1"))
                                .detail(serde_json::json!({"paths": ["u1"], "note": "\"u1\""})),
                            NewChange::new(Event::MembersRemoved, "Group", Some("g1"))
                                .detail(members(&["u1"])),
                        ],
                    )
                })
                .unwrap();
            let timeline = |subject: &str, events: &[&str], limit: i64| {
                store
                    .read(|c| {
                        list_changes(
                            c,
                            &ChangeQuery {
                                subject: Some(subject.to_owned()),
                                events: events.iter().map(|e| (*e).to_owned()).collect(),
                                limit,
                                ..ChangeQuery::default()
                            },
                        )
                    })
                    .unwrap()
                    .into_iter()
                    .map(|c| format!("{}:{}", c.event, c.resource_id.unwrap_or_default()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                timeline("u1", &[], 10),
                [
                    "group.members_removed:g1",
                    "group.members_added:g1",
                    "user.created:u1"
                ],
                "{}",
                db.backend()
            );
            assert_eq!(
                timeline("u10", &[], 10),
                [
                    "group.members_added:g2",
                    "group.members_added:g1",
                    "user.created:u10"
                ]
            );
            assert_eq!(timeline("u1", &[], 1), ["group.members_removed:g1"]);
            assert_eq!(
                timeline("u1", &["user.created", "group.members_added"], 10),
                ["group.members_added:g1", "user.created:u1"]
            );
            assert_eq!(
                timeline("g1", &[], 10),
                [
                    "group.members_removed:g1",
                    "group.patched:g1",
                    "group.members_added:g1"
                ]
            );
        }
    }

    /// On PostgreSQL the insert itself takes the change log's lock
    /// (shared), held to the end of the transaction (the ordering rule).
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

    /// On PostgreSQL a horizon waits for a writer that drew a position and
    /// has not committed yet, although a position drawn after it has
    /// committed: a follower reading up to the horizon sees both rows.
    /// Inside a transaction the horizon is refused.
    #[test]
    fn a_horizon_waits_for_a_position_still_in_flight() {
        #[derive(QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let Some(db) = crate::testing::TestDb::postgres() else {
            return;
        };
        let store = db.store();
        let create = |c: &mut DbConnection, id: &str| {
            record(
                c,
                &token(),
                "2026-12-06T10:00:00.000Z",
                &[NewChange::new(Event::UserCreated, "User", Some(id))],
            )
        };
        let waiting = || {
            let mut b = SqlBuilder::fixed(Backend::Postgres);
            b.push(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
                 AND NOT granted AND database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database())",
            );
            store.read(|c| Ok(load::<Waiting>(c, &b)?[0].n)).unwrap() > 0
        };
        let (drawn_tx, drawn_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (read_tx, read_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let first = s.spawn(move || {
                store.write(|c| {
                    create(c, "first")?;
                    drawn_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
            });
            drawn_rx.recv().unwrap();
            store.write(|c| create(c, "second")).unwrap();
            s.spawn(move || {
                let rows = store
                    .read(|c| {
                        let until = horizon(c)?;
                        read_between(c, 0, until, 10)
                    })
                    .unwrap();
                read_tx.send(rows).unwrap();
            });
            // Until the reader either answers or waits for the lock.
            let early = loop {
                if let Ok(rows) = read_rx.try_recv() {
                    break Some(rows);
                }
                if waiting() {
                    break None;
                }
                std::thread::yield_now();
            };
            release_tx.send(()).unwrap();
            first.join().unwrap().unwrap();
            let rows = early.unwrap_or_else(|| read_rx.recv().unwrap());
            let ids: Vec<_> = rows.iter().filter_map(|r| r.resource_id.clone()).collect();
            assert_eq!(ids, ["first", "second"], "the follower missed a row");
        });
        let inside = store.write(horizon);
        assert!(matches!(inside, Err(StoreError::Internal(_))), "{inside:?}");
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
                .write(|c| {
                    purge_changes(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "2026-06-01T00:00:00.000Z",
                        1,
                    )
                })
                .unwrap();
            assert_eq!(purged, 1);
            let purged = store
                .write(|c| {
                    purge_changes(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "2026-12-31T00:00:00.000Z",
                        10,
                    )
                })
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
