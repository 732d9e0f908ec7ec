use std::sync::{Arc, Barrier};

use serde_json::json;

use scim_store::testing::{backends, create_user, create_user_with_password, enable_sync};
use scim_store::{
    count_users, delete_user, find_user, purge_deleted_users, purge_expired_users,
    soft_delete_user, update_user, users::find_password_hash, PasswordChange, StoreError,
};

use crate::{attrs, user};

#[test]
fn crud_round_trip() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let a = attrs(json!({
            "userName": "Alice@Example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
            "active": true
        }));
        let created =
            create_user_with_password(store, scim_store::OrgId::DEFAULT, a.clone(), "$hash")
                .wait()
                .unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(created.created, created.last_modified);
        assert!(uuid::Uuid::parse_str(&created.id).is_ok());

        let found = store
            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .unwrap();
        assert_eq!(found, created);
        assert_eq!(
            store
                .read(|c| find_password_hash(c, &created.id))
                .unwrap()
                .as_deref(),
            Some("$hash")
        );

        let mut changed = a.clone();
        changed.insert("displayName".into(), json!("Alice L."));
        let updated = store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &created.id,
                    1,
                    &changed,
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.created, created.created);
        assert!(updated.last_modified >= created.last_modified);
        let found = store
            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .unwrap();
        assert_eq!(found.attrs["displayName"], "Alice L.");
        assert_eq!(found.version, 2);
        // Keep keeps the hash; Set replaces it.
        assert_eq!(
            store
                .read(|c| find_password_hash(c, &created.id))
                .unwrap()
                .as_deref(),
            Some("$hash")
        );
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &created.id,
                    2,
                    &changed,
                    PasswordChange::Set("$new".into()),
                )
            })
            .unwrap();
        assert_eq!(
            store
                .read(|c| find_password_hash(c, &created.id))
                .unwrap()
                .as_deref(),
            Some("$new")
        );

        assert_eq!(store.read(count_users).unwrap(), 1);
        store
            .write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &created.id, Some(3)))
            .unwrap();
        assert!(store
            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .is_none());
        assert_eq!(store.read(count_users).unwrap(), 0);
        // Index rows went with the user (ON DELETE CASCADE).
        let leftover = store
            .read(|c| {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct N {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let rows: Vec<N> = diesel::sql_query("SELECT COUNT(*) AS n FROM user_values")
                    .load(c)
                    .map_err(StoreError::from)?;
                Ok(rows[0].n)
            })
            .unwrap();
        assert_eq!(leftover, 0, "{}", db.backend());
    }
}

#[test]
fn versions_guard_updates_and_deletes() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let u = create_user(store, scim_store::OrgId::DEFAULT, user("bob"))
            .wait()
            .unwrap();
        let stale = store.write(|c| {
            update_user(
                c,
                scim_store::OrgId::DEFAULT,
                &u.id,
                7,
                &user("bob"),
                PasswordChange::Keep,
            )
        });
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{stale:?}"
        );
        let stale = store.write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &u.id, Some(2)));
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{stale:?}"
        );
        // Unconditional delete works.
        store
            .write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &u.id, None))
            .unwrap();
        for id in [u.id.as_str(), "not-a-uuid", "", "'; DROP TABLE users; --"] {
            assert!(store
                .read(|c| find_user(c, scim_store::OrgId::DEFAULT, id))
                .unwrap()
                .is_none());
            assert!(matches!(
                store.write(|c| update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    id,
                    1,
                    &user("x"),
                    PasswordChange::Keep
                )),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_user(c, scim_store::OrgId::DEFAULT, id, None)),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_user(c, scim_store::OrgId::DEFAULT, id, Some(1))),
                Err(StoreError::NotFound)
            ));
        }
    }
}

#[test]
fn user_names_are_unique_case_insensitively() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        create_user(store, scim_store::OrgId::DEFAULT, user("Alice@x"))
            .wait()
            .unwrap();
        match create_user(store, scim_store::OrgId::DEFAULT, user("alice@X")).wait() {
            Err(StoreError::Conflict(msg)) => assert!(msg.contains("alice@X"), "{msg}"),
            other => panic!("{}: {other:?}", db.backend()),
        }
        // Renaming another user onto a taken name conflicts too.
        let bob = create_user(store, scim_store::OrgId::DEFAULT, user("bob"))
            .wait()
            .unwrap();
        assert!(matches!(
            store.write(|c| update_user(
                c,
                scim_store::OrgId::DEFAULT,
                &bob.id,
                1,
                &user("ALICE@x"),
                PasswordChange::Keep
            )),
            Err(StoreError::Conflict(_))
        ));
        // Changing only the case of one's own name is fine.
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &bob.id,
                    1,
                    &user("BOB"),
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        // Non-ASCII case folding uses Rust's to_lowercase.
        create_user(store, scim_store::OrgId::DEFAULT, user("ÉMILE"))
            .wait()
            .unwrap();
        assert!(matches!(
            create_user(store, scim_store::OrgId::DEFAULT, user("émile")).wait(),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.read(count_users).unwrap(), 3);
    }
}

#[test]
fn racing_inserts_of_one_user_name_have_one_winner() {
    for db in backends() {
        let store = db.store().clone();
        enable_sync(&store, scim_store::OrgId::DEFAULT);
        let threads = 32;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let store = store.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // Different case per thread: uniqueness is case-insensitive.
                    let name = if i % 2 == 0 {
                        "Racer@Example.com"
                    } else {
                        "racer@example.COM"
                    };
                    barrier.wait();
                    create_user(&store, scim_store::OrgId::DEFAULT, user(name)).wait()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{}: {results:?}", db.backend());
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, StoreError::Conflict(_)),
                    "{}: {e:?}",
                    db.backend()
                );
            }
        }
        assert_eq!(store.read(count_users).unwrap(), 1);
    }
}

#[test]
fn missing_user_name_is_invalid() {
    for db in backends() {
        enable_sync(db.store(), scim_store::OrgId::DEFAULT);
        let r = create_user(
            db.store(),
            scim_store::OrgId::DEFAULT,
            attrs(json!({"displayName": "x"})),
        )
        .wait();
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
}

/// Runs a COUNT(*) query written by the test.
fn count(conn: &mut scim_store::DbConnection, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<N> = diesel::sql_query(sql).load(conn).unwrap();
    rows[0].n
}

fn names(store: &scim_store::Store, filter: &str) -> Vec<String> {
    let f = scim_core::filter::parse_filter(filter).unwrap();
    let page = store
        .read(|c| {
            scim_store::list_users(
                c,
                scim_store::OrgId::DEFAULT,
                &scim_store::ListQuery {
                    filter: Some(&f),
                    sort_by: None,
                    descending: false,
                    start_index: 1,
                    count: 50,
                },
            )
        })
        .unwrap();
    page.items
        .iter()
        .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_soft_deleted_user_is_invisible_keeps_its_data_and_frees_its_user_name() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let a = attrs(json!({"userName": "Gone", "title": "Engineer", "active": true}));
        let gone = create_user(store, scim_store::OrgId::DEFAULT, a.clone())
            .wait()
            .unwrap();
        let kept = create_user(store, scim_store::OrgId::DEFAULT, user("kept"))
            .wait()
            .unwrap();
        let group = store
            .write(|c| {
                scim_store::insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &attrs(json!({"displayName": "G"})),
                    &[
                        scim_store::MemberRef {
                            value: gone.id.clone(),
                            member_type: None,
                        },
                        scim_store::MemberRef {
                            value: kept.id.clone(),
                            member_type: None,
                        },
                    ],
                )
            })
            .unwrap();

        // A stale version is refused and changes nothing.
        let stale =
            store.write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, &gone.id, Some(7)));
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{stale:?}"
        );
        store
            .write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, &gone.id, Some(1)))
            .unwrap();

        // Invisible: reads, writes, lists, filters, counts, members.
        assert!(store
            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &gone.id))
            .unwrap()
            .is_none());
        assert!(matches!(
            store.read(|c| find_password_hash(c, &gone.id)),
            Err(StoreError::NotFound)
        ));
        for r in [
            store
                .write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, &gone.id, None))
                .map(|_| ()),
            store
                .write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &gone.id, None))
                .map(|_| ()),
            store
                .write(|c| {
                    update_user(
                        c,
                        scim_store::OrgId::DEFAULT,
                        &gone.id,
                        2,
                        &a,
                        PasswordChange::Keep,
                    )
                })
                .map(|_| ()),
        ] {
            assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
        }
        assert_eq!(store.read(count_users).unwrap(), 1);
        assert!(names(store, "userName eq \"gone\"").is_empty());
        assert!(names(store, "title eq \"Engineer\"").is_empty());
        assert_eq!(names(store, "active eq false").len(), 0);
        assert_eq!(names(store, "userName pr"), ["kept"]);
        let members: Vec<String> = store
            .read(|c| scim_store::list_group_members(c, &group.id))
            .unwrap()
            .into_iter()
            .map(|m| m.value)
            .collect();
        assert_eq!(members, std::slice::from_ref(&kept.id));
        let g = store
            .read(|c| scim_store::find_group(c, scim_store::OrgId::DEFAULT, &group.id))
            .unwrap()
            .unwrap();
        assert_eq!(g.version, group.version + 1, "the group's members changed");
        let re_add = store.write(|c| {
            scim_store::add_members(
                c,
                scim_store::OrgId::DEFAULT,
                &group.id,
                &[scim_store::MemberRef {
                    value: gone.id.clone(),
                    member_type: None,
                }],
            )
        });
        assert!(matches!(re_add, Err(StoreError::Invalid(_))), "{re_add:?}");

        // Still in the database: attributes kept, inactive, version bumped.
        store
            .read(|c| {
                let id = &gone.id;
                assert_eq!(
                    count(
                        c,
                        &format!(
                            "SELECT COUNT(*) AS n FROM users WHERE id = '{id}' \
                             AND deleted_at IS NOT NULL AND active = FALSE AND version = 2 \
                             AND resource LIKE '%Engineer%' AND resource LIKE '%\"active\":false%'"
                        )
                    ),
                    1
                );
                assert_eq!(
                    count(
                        c,
                        &format!("SELECT COUNT(*) AS n FROM user_values WHERE user_id = '{id}'")
                    ),
                    1,
                    "the title's index row stays until the purge"
                );
                Ok(())
            })
            .unwrap();

        // The identity provider may create the same userName again, but
        // only one live user may have it.
        let again = create_user(store, scim_store::OrgId::DEFAULT, user("GONE"))
            .wait()
            .unwrap();
        assert_ne!(again.id, gone.id);
        assert_eq!(names(store, "userName eq \"gone\""), ["GONE"]);
        let clash = create_user(store, scim_store::OrgId::DEFAULT, user("gone")).wait();
        assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
        // And deleting that one too leaves two deleted rows with one name.
        store
            .write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, &again.id, None))
            .unwrap();
        create_user(store, scim_store::OrgId::DEFAULT, user("gone"))
            .wait()
            .unwrap();
    }
}

#[test]
fn the_purge_removes_only_expired_soft_deleted_users_in_batches() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let mut ids = Vec::new();
        for name in ["old1", "old2", "recent", "live"] {
            let a = attrs(json!({"userName": name, "title": "t"}));
            ids.push(
                create_user(store, scim_store::OrgId::DEFAULT, a.clone())
                    .wait()
                    .unwrap()
                    .id,
            );
        }
        for id in &ids[..3] {
            store
                .write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, id, None))
                .unwrap();
        }
        // Backdate two deletions by 40 days (retention is 30 by default).
        let old =
            scim_core::datetime::format(time::OffsetDateTime::now_utc() - time::Duration::days(40));
        store
            .write(|c| {
                use diesel::prelude::*;
                diesel::sql_query(format!(
                    "UPDATE users SET deleted_at = '{old}' WHERE id IN ('{}', '{}')",
                    ids[0], ids[1]
                ))
                .execute(c)?;
                Ok(())
            })
            .unwrap();
        let cutoff =
            scim_core::datetime::format(time::OffsetDateTime::now_utc() - time::Duration::days(30));
        // Bounded batches, idempotent.
        assert_eq!(
            store
                .write(|c| purge_deleted_users(c, scim_store::OrgId::DEFAULT, &cutoff, 1))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .write(|c| purge_deleted_users(c, scim_store::OrgId::DEFAULT, &cutoff, 1))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .write(|c| purge_deleted_users(c, scim_store::OrgId::DEFAULT, &cutoff, 10))
                .unwrap()
                .len(),
            0
        );
        let left = |store: &scim_store::Store| {
            store
                .read(|c| {
                    Ok((
                        count(c, "SELECT COUNT(*) AS n FROM users"),
                        count(c, "SELECT COUNT(*) AS n FROM user_values"),
                    ))
                })
                .unwrap()
        };
        assert_eq!(left(store), (2, 2), "the recent deletion and the live user");
        assert_eq!(store.read(count_users).unwrap(), 1);
        // The store-level purge reads the retention period: with 0 days the
        // recent deletion is expired too.
        assert_eq!(
            purge_expired_users(store, time::OffsetDateTime::now_utc(), 100).unwrap(),
            0
        );
        let current = store
            .read(|c| scim_store::settings::get_runtime_settings(c, scim_store::OrgId::DEFAULT))
            .unwrap();
        let mut values = current.values.clone();
        values.soft_delete_retention_days = 0;
        store
            .write(|c| {
                scim_store::settings::update_runtime_settings(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &values,
                    current.version,
                    "test",
                )
            })
            .unwrap();
        assert_eq!(
            purge_expired_users(
                store,
                time::OffsetDateTime::now_utc() + time::Duration::seconds(1),
                1
            )
            .unwrap(),
            1
        );
        assert_eq!(left(store), (1, 1));
        assert!(store
            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &ids[3]))
            .unwrap()
            .is_some());
    }
}

/// Two purges at once on one PostgreSQL database, as two replicas run
/// them: while one purge's batch is uncommitted, the other skips the users
/// that batch holds instead of waiting for it, and every user is purged,
/// and counted, by exactly one of them.
#[test]
fn concurrent_purges_on_postgres_share_the_work() {
    use std::sync::mpsc;
    use std::time::Duration;

    // PostgreSQL-only; skipped on purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(db) = scim_store::testing::TestDb::postgres() else {
        return;
    };
    let store = db.store();
    enable_sync(store, scim_store::OrgId::DEFAULT);
    for i in 0..6 {
        let a = attrs(json!({"userName": format!("gone{i}")}));
        let id = create_user(store, scim_store::OrgId::DEFAULT, a.clone())
            .wait()
            .unwrap()
            .id;
        store
            .write(|c| soft_delete_user(c, scim_store::OrgId::DEFAULT, &id, None))
            .unwrap();
    }
    let live = attrs(json!({"userName": "live"}));
    create_user(store, scim_store::OrgId::DEFAULT, live.clone())
        .wait()
        .unwrap();
    let cutoff =
        scim_core::datetime::format(time::OffsetDateTime::now_utc() + time::Duration::seconds(1));

    let (first, second) = std::thread::scope(|s| {
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let cutoff = cutoff.as_str();
        // The first purge deletes a batch of 2 and keeps its transaction
        // open until told to commit.
        let first = s.spawn(move || {
            store
                .write(|c| {
                    let n = purge_deleted_users(c, scim_store::OrgId::DEFAULT, cutoff, 2)?.len();
                    held_tx.send(n).unwrap();
                    let _ = release_rx.recv();
                    Ok(n)
                })
                .unwrap()
        });
        assert_eq!(held_rx.recv().unwrap(), 2);
        let (done_tx, done_rx) = mpsc::channel();
        s.spawn(move || {
            done_tx.send(store.write(|c| {
                Ok(purge_deleted_users(c, scim_store::OrgId::DEFAULT, cutoff, 10)?.len())
            }))
        });
        // A generous deadline: without SKIP LOCKED the second purge waits
        // for the first one's commit, which comes only after this.
        let second = done_rx.recv_timeout(Duration::from_secs(30));
        release_tx.send(()).unwrap();
        let second = second
            .expect("the second purge waited for the first one's uncommitted batch")
            .unwrap();
        (first.join().unwrap(), second)
    });
    assert_eq!((first, second), (2, 4));
    assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 0);
    assert_eq!(store.read(count_users).unwrap(), 1);
}
