//! `Store::write`'s transactions, with Group creates (`insert_group`) as
//! the writes: a row-level write any caller may run inside a closure,
//! whose `displayName` is unique case-insensitively, so a duplicate is a
//! database error mid-way (`Conflict`).

use scim_store::testing::backends;
use scim_store::{
    create_token, find_group, insert_group, list_groups, list_tokens, DbConnection, GroupRecord,
    ListQuery, OrgId, StoreError,
};
use serde_json::json;

use crate::attrs;

/// Creates the Group `name`, without members, in the default organization.
fn group(c: &mut DbConnection, name: &str) -> Result<GroupRecord, StoreError> {
    insert_group(
        c,
        OrgId::DEFAULT,
        &attrs(json!({ "displayName": name })),
        &[],
    )
}

/// How many Groups the default organization has.
fn count_groups(c: &mut DbConnection) -> Result<i64, StoreError> {
    let all = ListQuery {
        filter: None,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 0,
    };
    Ok(list_groups(c, OrgId::DEFAULT, &all)?.total)
}

#[test]
fn an_error_in_the_write_closure_rolls_everything_back() {
    for db in backends() {
        let store = db.store();
        let r: Result<(), StoreError> = store.write(|c| {
            group(c, "first")?;
            create_token(c, "t", None)?;
            group(c, "second")?;
            Err(StoreError::Conflict("caller decided to abort".into()))
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_groups).unwrap(), 0, "{}", db.backend());
        assert!(store
            .read(|c| list_tokens(c, OrgId::DEFAULT))
            .unwrap()
            .is_empty());

        // A database error mid-way (the duplicate) also undoes the first insert.
        let r = store.write(|c| {
            group(c, "third")?;
            group(c, "THIRD")
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_groups).unwrap(), 0, "{}", db.backend());

        // The write connection is usable afterwards, and commits work.
        store
            .write(|c| {
                group(c, "a")?;
                group(c, "b")
            })
            .unwrap();
        assert_eq!(store.read(count_groups).unwrap(), 2);
    }
}

#[test]
fn concurrent_writers_all_commit() {
    for db in backends() {
        let store = db.store().clone();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store.write(|c| group(c, &format!("u{t}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.read(count_groups).unwrap(), 200, "{}", db.backend());
    }
}

// Group commit (SQLite): concurrent writes share a transaction, each in its
// own savepoint. The same tests run on PostgreSQL, one transaction per write.

#[test]
fn every_write_is_visible_when_it_returns() {
    for db in backends() {
        let store = db.store().clone();
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let id = store.write(|c| group(c, &format!("v{t}-{i}"))).unwrap().id;
                        let found = store.read(|c| find_group(c, OrgId::DEFAULT, &id)).unwrap();
                        assert!(found.is_some(), "group {t}-{i} not visible after write");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.read(count_groups).unwrap(), 320, "{}", db.backend());
    }
}

#[test]
fn failing_writes_among_concurrent_ones_undo_only_themselves() {
    for db in backends() {
        let store = db.store().clone();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..24 {
                        let r = store.write(|c| {
                            group(c, &format!("f{t}-{i}"))?;
                            if i % 3 == 0 {
                                return Err(StoreError::Conflict("give up".into()));
                            }
                            Ok(())
                        });
                        assert_eq!(r.is_ok(), i % 3 != 0, "{t}-{i}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            store.read(count_groups).unwrap(),
            8 * 16,
            "{}",
            db.backend()
        );
    }
}

#[test]
fn a_panicking_write_does_not_wedge_the_writer() {
    for db in backends() {
        let store = db.store().clone();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|c| -> Result<(), StoreError> {
                group(c, "doomed")?;
                panic!("a write closure panics");
            })
        }));
        assert!(panicked.is_err());
        // Concurrent writers, some of them panicking, the others commit.
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            store.write(|c| {
                                group(c, &format!("p{t}-{i}"))?;
                                if i == 4 {
                                    panic!("write {t}-{i} panics");
                                }
                                Ok(())
                            })
                        }));
                        match r {
                            Ok(r) => r.unwrap(),
                            Err(_) => assert_eq!(i, 4),
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        store.write(|c| group(c, "after")).unwrap();
        assert_eq!(
            store.read(count_groups).unwrap(),
            8 * 9 + 1,
            "{}",
            db.backend()
        );
    }
}

#[test]
fn nested_transactions_inside_a_write() {
    use diesel::Connection;
    for db in backends() {
        let store = db.store();
        store
            .write(|c| {
                group(c, "outer")?;
                let undone = c.transaction::<(), StoreError, _>(|c| {
                    group(c, "undone")?;
                    Err(StoreError::Conflict("undo".into()))
                });
                assert!(undone.is_err());
                // A failed statement inside a nested transaction is undone
                // with it, and the outer one carries on (PostgreSQL too:
                // the savepoint clears the aborted state).
                let dup = c.transaction(|c| group(c, "OUTER"));
                assert!(matches!(dup, Err(StoreError::Conflict(_))));
                c.transaction(|c| group(c, "kept"))?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.read(count_groups).unwrap(), 2, "{}", db.backend());
    }
}
