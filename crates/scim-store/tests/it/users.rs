use std::sync::{Arc, Barrier};

use serde_json::json;

use scim_store::testing::backends;
use scim_store::{
    count_users, delete_user, find_user, insert_user, update_user, users::find_password_hash,
    PasswordChange, StoreError,
};

use crate::{attrs, user};

#[test]
fn crud_round_trip() {
    for db in backends() {
        let store = db.store();
        let a = attrs(json!({
            "userName": "Alice@Example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
            "active": true
        }));
        let created = store.write(|c| insert_user(c, &a, Some("$hash"))).unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(created.created, created.last_modified);
        assert!(uuid::Uuid::parse_str(&created.id).is_ok());

        let found = store.read(|c| find_user(c, &created.id)).unwrap().unwrap();
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
            .write(|c| update_user(c, &created.id, 1, &changed, PasswordChange::Keep))
            .unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.created, created.created);
        assert!(updated.last_modified >= created.last_modified);
        let found = store.read(|c| find_user(c, &created.id)).unwrap().unwrap();
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
            .write(|c| delete_user(c, &created.id, Some(3)))
            .unwrap();
        assert!(store.read(|c| find_user(c, &created.id)).unwrap().is_none());
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
        let u = store.write(|c| insert_user(c, &user("bob"), None)).unwrap();
        let stale = store.write(|c| update_user(c, &u.id, 7, &user("bob"), PasswordChange::Keep));
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{stale:?}"
        );
        let stale = store.write(|c| delete_user(c, &u.id, Some(2)));
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{stale:?}"
        );
        // Unconditional delete works.
        store.write(|c| delete_user(c, &u.id, None)).unwrap();
        for id in [u.id.as_str(), "not-a-uuid", "", "'; DROP TABLE users; --"] {
            assert!(store.read(|c| find_user(c, id)).unwrap().is_none());
            assert!(matches!(
                store.write(|c| update_user(c, id, 1, &user("x"), PasswordChange::Keep)),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_user(c, id, None)),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_user(c, id, Some(1))),
                Err(StoreError::NotFound)
            ));
        }
    }
}

#[test]
fn user_names_are_unique_case_insensitively() {
    for db in backends() {
        let store = db.store();
        store
            .write(|c| insert_user(c, &user("Alice@x"), None))
            .unwrap();
        match store.write(|c| insert_user(c, &user("alice@X"), None)) {
            Err(StoreError::Conflict(msg)) => assert!(msg.contains("alice@X"), "{msg}"),
            other => panic!("{}: {other:?}", db.backend()),
        }
        // Renaming another user onto a taken name conflicts too.
        let bob = store.write(|c| insert_user(c, &user("bob"), None)).unwrap();
        assert!(matches!(
            store.write(|c| update_user(c, &bob.id, 1, &user("ALICE@x"), PasswordChange::Keep)),
            Err(StoreError::Conflict(_))
        ));
        // Changing only the case of one's own name is fine.
        store
            .write(|c| update_user(c, &bob.id, 1, &user("BOB"), PasswordChange::Keep))
            .unwrap();
        // Non-ASCII case folding uses Rust's to_lowercase.
        store
            .write(|c| insert_user(c, &user("ÉMILE"), None))
            .unwrap();
        assert!(matches!(
            store.write(|c| insert_user(c, &user("émile"), None)),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.read(count_users).unwrap(), 3);
    }
}

#[test]
fn racing_inserts_of_one_user_name_have_one_winner() {
    for db in backends() {
        let store = db.store().clone();
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
                    store.write(|c| insert_user(c, &user(name), None))
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
        let r = db
            .store()
            .write(|c| insert_user(c, &attrs(json!({"displayName": "x"})), None));
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
}
