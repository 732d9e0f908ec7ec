use scim_store::testing::backends;
use scim_store::{count_users, create_token, insert_user, list_tokens, StoreError};

use crate::user;

#[test]
fn an_error_in_the_write_closure_rolls_everything_back() {
    for db in backends() {
        let store = db.store();
        let r: Result<(), StoreError> = store.write(|c| {
            insert_user(c, &user("first"), None)?;
            create_token(c, "t", None)?;
            insert_user(c, &user("second"), None)?;
            Err(StoreError::Conflict("caller decided to abort".into()))
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_users).unwrap(), 0, "{}", db.backend());
        assert!(store.read(list_tokens).unwrap().is_empty());

        // A database error mid-way (the duplicate) also undoes the first insert.
        let r = store.write(|c| {
            insert_user(c, &user("third"), None)?;
            insert_user(c, &user("THIRD"), None)
        });
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(store.read(count_users).unwrap(), 0, "{}", db.backend());

        // The write connection is usable afterwards, and commits work.
        store
            .write(|c| {
                insert_user(c, &user("a"), None)?;
                insert_user(c, &user("b"), None)
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
                            .write(|c| insert_user(c, &user(&format!("u{t}-{i}")), None))
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
