//! The change log as SCIM writes fill it: what each kind of write
//! records, and the ordering guarantee a reader following the log relies
//! on, with two stores (two replicas) on one PostgreSQL database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::json;

use scim_store::changes::{read_after, Actor, ActorKind, Change, Event};
use scim_store::testing::{backends, TestDb};
use scim_store::{Edit, EditBy, Found, PasswordChange, Store, StoreConfig, StoreError};

use crate::attrs;

fn token(n: usize) -> Actor {
    Actor::new(
        ActorKind::ScimToken,
        Some(format!("t{n}")),
        Some(format!("writer {n}")),
    )
    .with_request(Some(format!("req-{n}")), Some("192.0.2.1".to_owned()))
}

/// [`token`] `n`, for the request `request`.
fn token_in(n: usize, request: &str) -> Actor {
    token(n).with_request(Some(request.to_owned()), Some("192.0.2.1".to_owned()))
}

fn enable(store: &Store) {
    store
        .write(|c| {
            scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "test", &[]).map(|_| ())
        })
        .unwrap();
}

/// An edit setting `title`, by `actor`, as a PATCH.
fn set_title(
    store: &Store,
    id: &str,
    title: String,
    actor: Actor,
) -> scim_store::Answer<scim_store::UserRecord> {
    let by = EditBy {
        actor,
        event: Event::UserPatched,
    };
    store.queue_user_edit(id.to_owned(), false, by, move |found: Found| {
        let (current, _) = found.ok_or(StoreError::NotFound)?;
        let mut attrs = current.attrs.clone();
        attrs.insert("title".into(), json!(title.clone()));
        Ok(Edit::Store {
            current,
            attrs,
            password: PasswordChange::Keep,
            then: Box::new(|rec| rec),
        })
    })
}

fn everything(store: &Store) -> Vec<Change> {
    store.read(|c| read_after(c, 0, 1_000_000)).unwrap()
}

/// Creates (queued, both backends' fast paths), edits, no-op edits and
/// failed writes: exactly one row per change, none for the rest.
#[test]
fn user_writes_record_exactly_their_changes_and_failed_ones_nothing() {
    for db in backends() {
        let store = db.store();
        let backend = db.backend();
        enable(store);
        let alice = store
            .queue_insert_user(attrs(json!({"userName": "alice"})), None, token(1))
            .wait()
            .unwrap();
        // A second edit queued at once goes to the hint path on SQLite and
        // the batch on PostgreSQL.
        let edited = set_title(store, &alice.id, "Boss".into(), token(2))
            .wait()
            .unwrap();
        assert_eq!(edited.version, 2);
        // A taken userName fails, records nothing.
        let taken = store
            .queue_insert_user(attrs(json!({"userName": "ALICE"})), None, token(3))
            .wait();
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        let rows = everything(store);
        let summary: Vec<(String, Option<i64>, String, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r.event.clone(),
                    r.resource_version,
                    r.detail.clone(),
                    r.actor_name.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "user.created".to_owned(),
                    Some(1),
                    "{}".to_owned(),
                    Some("writer 1".to_owned())
                ),
                (
                    "user.patched".to_owned(),
                    Some(2),
                    r#"{"paths":["title"]}"#.to_owned(),
                    Some("writer 2".to_owned())
                ),
            ],
            "{backend}"
        );
        assert_eq!(rows[0].request_id.as_deref(), Some("req-1"));
        assert_eq!(rows[0].client_address.as_deref(), Some("192.0.2.1"));
        let data: serde_json::Value =
            serde_json::from_str(rows[1].data.as_deref().unwrap()).unwrap();
        assert_eq!(
            data["Operations"],
            serde_json::json!([{"op": "replace", "path": "title", "value": "Boss"}])
        );
    }
}

/// The ordering rule (`scim_store::changes`): two stores on one
/// PostgreSQL database (two replicas), 16 writer threads creating and
/// editing users through both, and a follower reading `read_after(cursor)`
/// in a loop: the follower sees every committed row exactly once, none
/// missing, and each user's versions increase in position order. Each
/// row carries the actor and request id of the write that made it, though
/// a PostgreSQL batch records the rows of several requests (of several
/// writers) in one `INSERT`.
#[test]
fn a_follower_of_the_log_sees_every_change_once_with_two_replicas_writing() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    const WRITERS: usize = 16;
    const USERS_EACH: usize = 6;
    const EDITS_EACH: usize = 4;
    let first = db.store().clone();
    let second = Store::connect(&StoreConfig {
        url: db.url().to_owned(),
        pool_size: 4,
        connect_timeout: Duration::from_secs(10),
    })
    .unwrap();
    enable(&first);
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (store, done) = (first.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen: Vec<Change> = Vec::new();
            let mut cursor = 0;
            loop {
                // Read whether the writers are done before reading the
                // log: a read that starts after they finished sees all.
                let finished = done.load(Ordering::SeqCst);
                let rows = store.read(|c| read_after(c, cursor, 50)).unwrap();
                if let Some(last) = rows.last() {
                    cursor = last.position;
                }
                let empty = rows.is_empty();
                seen.extend(rows);
                if finished && empty {
                    return seen;
                }
            }
        })
    };
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = if w % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let ids: Vec<String> = (0..USERS_EACH)
                    .map(|i| {
                        store
                            .queue_insert_user(
                                attrs(json!({"userName": format!("w{w}-u{i}")})),
                                None,
                                token_in(w, &format!("w{w}-u{i}-v1")),
                            )
                            .wait()
                            .unwrap()
                            .id
                    })
                    .collect();
                for round in 0..EDITS_EACH {
                    for (i, id) in ids.iter().enumerate() {
                        let request = format!("w{w}-u{i}-v{}", round + 2);
                        set_title(&store, id, format!("r{round}"), token_in(w, &request))
                            .wait()
                            .unwrap();
                    }
                }
                (w, ids)
            })
        })
        .collect();
    // Each user's id → its writer and its index among the writer's users.
    let mut made_by: HashMap<String, (usize, usize)> = HashMap::new();
    for w in writers {
        let (w, ids) = w.join().unwrap();
        made_by.extend(ids.into_iter().enumerate().map(|(i, id)| (id, (w, i))));
    }
    done.store(true, Ordering::SeqCst);
    let followed = follower.join().unwrap();
    let all = everything(&first);
    assert_eq!(
        all.len(),
        WRITERS * USERS_EACH * (1 + EDITS_EACH),
        "one row per create and per edit"
    );
    let positions = |rows: &[Change]| rows.iter().map(|r| r.position).collect::<Vec<_>>();
    let unique: HashSet<i64> = positions(&followed).into_iter().collect();
    assert_eq!(unique.len(), followed.len(), "no row seen twice");
    let missed: Vec<i64> = positions(&all)
        .into_iter()
        .filter(|p| !unique.contains(p))
        .collect();
    assert!(
        missed.is_empty(),
        "the follower missed {} committed rows: {missed:?}",
        missed.len()
    );
    assert_eq!(positions(&followed), positions(&all));
    // Per user, versions 1, 2, … in position order.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for row in &all {
        let id = row.resource_id.as_deref().unwrap();
        let version = row.resource_version.unwrap();
        let before = last.insert(id, version).unwrap_or(0);
        assert_eq!(
            version,
            before + 1,
            "user {id} at position {}",
            row.position
        );
        // By the writer of this user, in the request of this version.
        let (w, i) = made_by[id];
        let who = (
            row.actor_kind.as_str(),
            row.actor_id.clone(),
            row.actor_name.clone(),
            row.request_id.clone(),
        );
        assert_eq!(
            who,
            (
                "scim_token",
                Some(format!("t{w}")),
                Some(format!("writer {w}")),
                Some(format!("w{w}-u{i}-v{version}")),
            ),
            "{} of user {id} at position {}",
            row.event,
            row.position
        );
    }
}

/// The retention purge records `user.purged` for each user it removes, by
/// the actor `system` ("purge"), and nothing for those it keeps.
#[test]
fn the_purge_records_each_user_it_removes() {
    use diesel::prelude::*;
    for db in backends() {
        let store = db.store();
        enable(store);
        let mut ids = Vec::new();
        for name in ["old", "recent"] {
            let user = scim_store::testing::create_user(
                store,
                scim_store::OrgId::DEFAULT,
                attrs(json!({"userName": name})),
            )
            .wait()
            .unwrap();
            store
                .write(|c| {
                    scim_store::soft_delete_user(c, scim_store::OrgId::DEFAULT, &user.id, None)
                })
                .unwrap();
            ids.push(user.id);
        }
        let old = scim_core::datetime::format(
            time::OffsetDateTime::now_utc() - time::Duration::days(400),
        );
        store
            .write(|c| {
                diesel::sql_query(format!(
                    "UPDATE users SET deleted_at = '{old}' WHERE id = '{}'",
                    ids[0]
                ))
                .execute(c)?;
                Ok(())
            })
            .unwrap();
        // What the purge records: the rows after the creates'.
        let before = everything(store).last().map_or(0, |r| r.position);
        let purged =
            scim_store::purge_expired_users(store, time::OffsetDateTime::now_utc(), 10).unwrap();
        assert_eq!(purged, 1);
        let rows = store.read(|c| read_after(c, before, 1_000_000)).unwrap();
        let summary: Vec<(&str, Option<&str>, &str, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.event.as_str(),
                    r.resource_id.as_deref(),
                    r.actor_kind.as_str(),
                    r.actor_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![(
                "user.purged",
                Some(ids[0].as_str()),
                "system",
                Some("purge")
            )],
            "{}",
            db.backend()
        );
    }
}

/// Migration `20261209000000_change_log_external_id` on a log written
/// before it: every User row gets its `externalId` from its `data`, and
/// the patched, activated and suspended rows lose the `data` that held
/// the whole User (a patch's `data` is now its operations), so that they
/// go out as notices.
#[test]
fn the_external_id_migration_moves_the_external_id_out_of_old_rows() {
    use diesel::RunQueryDsl;
    for db in backends() {
        let store = db.store();
        let before = store.read(scim_store::changes::last_position).unwrap();
        assert_eq!(
            store.revert_last_migration().unwrap(),
            "20261209000000",
            "the newest migration is change_log_external_id"
        );
        store
            .write(|c| {
                let sql = "INSERT INTO change_log (at, event, resource_type, resource_id, \
                     actor_kind, detail, data, org_id) VALUES \
                     ('t', 'user.created', 'User', 'u1', 'system', '{}', \
                      '{\"id\":\"u1\",\"userName\":\"a\",\"externalId\":\"e-1\"}', 1), \
                     ('t', 'user.patched', 'User', 'u1', 'system', '{\"paths\":[\"title\"]}', \
                      '{\"id\":\"u1\",\"userName\":\"a\",\"externalId\":\"e-1\",\"title\":\"x\"}', 1), \
                     ('t', 'user.suspended', 'User', 'u1', 'system', '{}', \
                      '{\"id\":\"u1\",\"userName\":\"a\",\"externalId\":\"e-1\",\"active\":false}', 1), \
                     ('t', 'user.created', 'User', 'u2', 'system', '{}', \
                      '{\"id\":\"u2\",\"userName\":\"b\"}', 1), \
                     ('t', 'group.created', 'Group', 'g1', 'system', '{}', NULL, 1)";
                match c {
                    scim_store::DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c),
                    scim_store::DbConnection::Postgres(c) => diesel::sql_query(sql).execute(c),
                }
                .map_err(StoreError::from)
            })
            .unwrap();
        store.migrate().unwrap();
        let rows = store.read(|c| read_after(c, before, 10)).unwrap();
        let got: Vec<(&str, &str, Option<&str>, bool)> = rows
            .iter()
            .map(|r| {
                (
                    r.event.as_str(),
                    r.resource_id.as_deref().unwrap(),
                    r.external_id.as_deref(),
                    r.data.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("user.created", "u1", Some("e-1"), true),
                ("user.patched", "u1", Some("e-1"), false),
                ("user.suspended", "u1", Some("e-1"), false),
                ("user.created", "u2", None, true),
                ("group.created", "g1", None, false),
            ],
            "{}",
            db.backend()
        );
    }
}
