use scim_store::testing::backends;
use scim_store::{count_users, create_token, find_user, insert_user, list_tokens, StoreError};

use crate::user;

#[test]
fn an_error_in_the_write_closure_rolls_everything_back() {
    for db in backends() {
        let store = db.store();
        let r: Result<(), StoreError> = store.write(|c| {
            insert_user(c, scim_store::OrgId::DEFAULT, &user("first"), None)?;
            create_token(c, "t", None)?;
            insert_user(c, scim_store::OrgId::DEFAULT, &user("second"), None)?;
            Err(StoreError::Conflict("caller decided to abort".into()))
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_users).unwrap(), 0, "{}", db.backend());
        assert!(store
            .read(|c| list_tokens(c, scim_store::OrgId::DEFAULT))
            .unwrap()
            .is_empty());

        // A database error mid-way (the duplicate) also undoes the first insert.
        let r = store.write(|c| {
            insert_user(c, scim_store::OrgId::DEFAULT, &user("third"), None)?;
            insert_user(c, scim_store::OrgId::DEFAULT, &user("THIRD"), None)
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_users).unwrap(), 0, "{}", db.backend());

        // The write connection is usable afterwards, and commits work.
        store
            .write(|c| {
                insert_user(c, scim_store::OrgId::DEFAULT, &user("a"), None)?;
                insert_user(c, scim_store::OrgId::DEFAULT, &user("b"), None)
            })
            .unwrap();
        assert_eq!(store.read(count_users).unwrap(), 2);
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
                        store
                            .write(|c| {
                                insert_user(
                                    c,
                                    scim_store::OrgId::DEFAULT,
                                    &user(&format!("u{t}-{i}")),
                                    None,
                                )
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.read(count_users).unwrap(), 200, "{}", db.backend());
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
                        let id = store
                            .write(|c| {
                                insert_user(
                                    c,
                                    scim_store::OrgId::DEFAULT,
                                    &user(&format!("v{t}-{i}")),
                                    None,
                                )
                            })
                            .unwrap()
                            .id;
                        let found = store
                            .read(|c| find_user(c, scim_store::OrgId::DEFAULT, &id))
                            .unwrap();
                        assert!(found.is_some(), "user {t}-{i} not visible after write");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.read(count_users).unwrap(), 320, "{}", db.backend());
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
                            insert_user(
                                c,
                                scim_store::OrgId::DEFAULT,
                                &user(&format!("f{t}-{i}")),
                                None,
                            )?;
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
        assert_eq!(store.read(count_users).unwrap(), 8 * 16, "{}", db.backend());
    }
}

#[test]
fn racing_inserts_of_one_user_name_have_one_winner() {
    for db in backends() {
        let store = db.store().clone();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(32));
        let handles: Vec<_> = (0..32)
            .map(|t| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let name = if t % 2 == 0 { "Racer" } else { "rAcEr" };
                    barrier.wait();
                    store.write(|c| insert_user(c, scim_store::OrgId::DEFAULT, &user(name), None))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{}", db.backend());
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
        assert_eq!(store.read(count_users).unwrap(), 1);
    }
}

#[test]
fn a_panicking_write_does_not_wedge_the_writer() {
    for db in backends() {
        let store = db.store().clone();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|c| -> Result<(), StoreError> {
                insert_user(c, scim_store::OrgId::DEFAULT, &user("doomed"), None)?;
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
                                insert_user(
                                    c,
                                    scim_store::OrgId::DEFAULT,
                                    &user(&format!("p{t}-{i}")),
                                    None,
                                )?;
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
        store
            .write(|c| insert_user(c, scim_store::OrgId::DEFAULT, &user("after"), None))
            .unwrap();
        assert_eq!(
            store.read(count_users).unwrap(),
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
                insert_user(c, scim_store::OrgId::DEFAULT, &user("outer"), None)?;
                let undone = c.transaction::<(), StoreError, _>(|c| {
                    insert_user(c, scim_store::OrgId::DEFAULT, &user("undone"), None)?;
                    Err(StoreError::Conflict("undo".into()))
                });
                assert!(undone.is_err());
                // A failed statement inside a nested transaction is undone
                // with it, and the outer one carries on (PostgreSQL too:
                // the savepoint clears the aborted state).
                let dup = c.transaction(|c| {
                    insert_user(c, scim_store::OrgId::DEFAULT, &user("OUTER"), None)
                });
                assert!(matches!(dup, Err(StoreError::Conflict(_))));
                c.transaction(|c| insert_user(c, scim_store::OrgId::DEFAULT, &user("kept"), None))?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.read(count_users).unwrap(), 2, "{}", db.backend());
    }
}
