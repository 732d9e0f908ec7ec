//! User creates and edits batched into shared transactions on PostgreSQL.
//!
//! An identity provider's provisioning cycle is a stream of small User
//! writes: `POST /Users` and `PATCH /Users/{id}` from many connections at
//! once. One transaction per write costs PostgreSQL five or six statements
//! (BEGIN, the gate, the read, the INSERT or UPDATE of `users`, the
//! `user_values` rows, COMMIT), each a round trip with its own executor
//! start-up and two context switches: that, not the row work, caps
//! PostgreSQL's rate of such creates (docs/BENCHMARKS.md).
//!
//! Here a few batcher threads take the writes queued by request handlers
//! ([`crate::engine::Store::queue_insert_user`], [`crate::engine::Store::queue_user_edit`])
//! and run every write that is waiting in ONE transaction, with one
//! statement per step for the whole batch, whatever its size:
//!
//! 1. the creates, in one statement: the User Synchronization gate, then
//!    `INSERT INTO users … SELECT FROM unnest(…) ON CONFLICT DO NOTHING
//!    RETURNING id` (a userName taken, by another transaction or by an
//!    earlier create of the same batch, returns no id and answers 409,
//!    exactly as a lone insert's unique violation would), and, as a
//!    data-modifying CTE, the `user_values` rows of the users inserted;
//! 2. the users being edited, with their groups when asked, locked
//!    (`FOR NO KEY UPDATE`, in id order so that two batches cannot
//!    deadlock), with the gate in the same statement; each edit's closure
//!    then decides on its user in memory;
//! 3. one `UPDATE users … FROM unnest(…)` for every edit that writes,
//!    with the `user_values` rows to delete, update and insert as
//!    data-modifying CTEs of the same statement;
//! 4. the change log rows of every write that stored, in one multi-row
//!    `INSERT` (`changes::record_each`, the last write of the transaction,
//!    which takes the change log's lock just before the commit);
//! 5. COMMIT, after which every write is answered.
//!
//! So a batch of edits is five round trips (BEGIN, the read, the write,
//! the change log's rows with its lock, COMMIT), and a batch of creates
//! four, where one transaction per write took six or seven each.
//!
//! The statement texts are fixed (arrays are bound, not rows), so each is
//! one cached prepared statement.
//!
//! A write the batch cannot take as planned (a database error anywhere,
//! such as an edit renaming a user to a taken userName, which aborts the
//! whole statement) rolls the batch back, and then every write of the
//! batch runs again as a batch of its own, through the same code, so each
//! gets exactly its own answer; a batch of one that fails answers its
//! write with the error. That is also why an edit's closure is `Fn`: it
//! may be asked twice.
//!
//! Every write is answered only after the transaction holding it has
//! committed, and holds its own result; a batch is a commit unit, not a
//! semantic one.
//!
//! The queue and the batcher threads are in `batcher.rs`, the queued
//! creates and edits in `jobs.rs`, a batch's transaction in `batch.rs`,
//! its statements bound with arrays in `array_query.rs`.

pub mod array_query;
pub mod batch;
pub mod batcher;
pub mod jobs;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use diesel::RunQueryDsl;
    use serde_json::{Map, Value};

    use crate::admin::sync::is_sync_disabled;
    use crate::changes::Actor;
    use crate::engine::edit::{Edit, Found};
    use crate::error::StoreError;
    use crate::scim::user_values::{derive_values, UserValueRow};
    use crate::scim::users::{insert_user, PasswordChange, UserRecord};
    use crate::testing::{backends, obj, patched_by_test};
    use crate::{engine::Store, scim::users::find_password_hash, scim::users::find_user};
    use serde_json::json;

    /// Enables User Synchronization.
    fn enable(store: &Store) {
        crate::testing::enable_sync(store, crate::db::org::OrgId::DEFAULT);
    }

    fn create(store: &Store, name: &str) -> UserRecord {
        store
            .write(|c| {
                insert_user(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &obj(json!({"userName": name})),
                    None,
                )
            })
            .unwrap()
    }

    /// The stored filter index rows of `rec` are exactly those its
    /// attributes derive, and the stored user is `rec`.
    fn assert_stored(store: &Store, rec: &UserRecord) {
        let found = store
            .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &rec.id))
            .unwrap()
            .unwrap();
        assert_eq!(&found, rec);
        let key = |r: &UserValueRow| (r.attr.clone(), r.idx);
        let mut stored = store
            .read(|c| crate::scim::user_values::stored_values(c, &rec.id))
            .unwrap();
        stored.sort_by_key(key);
        let mut want = derive_values(&rec.id, &rec.attrs);
        want.sort_by_key(key);
        assert_eq!(stored, want, "index rows of {}", rec.id);
    }

    /// An edit setting `title` (and, if given, the password).
    fn set_title(
        title: &'static str,
        password: PasswordChange,
    ) -> impl Fn(Found) -> Result<Edit<UserRecord>, StoreError> + Send + 'static {
        move |found| {
            let (current, _) = found.ok_or(StoreError::NotFound)?;
            let mut attrs = current.attrs.clone();
            attrs.insert("title".into(), json!(title));
            Ok(Edit::Store {
                current,
                attrs,
                password: password.clone(),
                then: Box::new(|rec| rec),
            })
        }
    }

    #[test]
    fn creates_queued_together_each_get_their_own_answer_and_a_name_wins_once() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            let refused = store
                .queue_insert_user(obj(json!({"userName": "early"})), None, Actor::cli("test"))
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            // The gate answers before the body is looked at.
            let refused = store
                .queue_insert_user(
                    obj(json!({"displayName": "nameless"})),
                    None,
                    Actor::cli("test"),
                )
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            assert_eq!(
                store.read(crate::scim::users::count_users).unwrap(),
                0,
                "{backend}"
            );
            let refused = store
                .queue_user_edit(
                    "any".into(),
                    false,
                    patched_by_test(),
                    set_title("t", PasswordChange::Keep),
                )
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            enable(store);

            // 50 names, each sent 4 times in two cases, queued at once so
            // that they share batches, and one create without a userName.
            let answers: Vec<_> = (0..200)
                .map(|i| {
                    let name = format!("user-{}", i % 50);
                    let name = if i % 2 == 0 {
                        name.to_uppercase()
                    } else {
                        name
                    };
                    let attrs = json!({
                        "userName": name,
                        "name": {"givenName": "G", "familyName": format!("F{i}")},
                        "emails": [{"value": format!("{name}@example.com"), "type": "work"}],
                    });
                    let answer = store.queue_insert_user(
                        obj(attrs),
                        Some(format!("hash-{i}")),
                        Actor::cli("test"),
                    );
                    (i % 50, answer)
                })
                .collect();
            let invalid = store.queue_insert_user(
                obj(json!({"displayName": "nameless"})),
                None,
                Actor::cli("test"),
            );
            let mut won = [0; 50];
            for (k, answer) in answers {
                match answer.wait() {
                    Ok(rec) => {
                        won[k] += 1;
                        assert_eq!(rec.version, 1, "{backend}");
                        assert_stored(store, &rec);
                        let hash = store.read(|c| find_password_hash(c, &rec.id)).unwrap();
                        assert!(hash.unwrap().starts_with("hash-"), "{backend}");
                    }
                    Err(StoreError::Conflict(msg)) => {
                        assert!(msg.contains("already taken"), "{backend}: {msg}");
                    }
                    Err(e) => panic!("{backend}: {e:?}"),
                }
            }
            assert_eq!(won, [1; 50], "{backend}");
            assert!(
                matches!(invalid.wait(), Err(StoreError::Invalid(_))),
                "{backend}"
            );
            assert_eq!(
                store.read(crate::scim::users::count_users).unwrap(),
                50,
                "{backend}"
            );
        }
    }

    #[test]
    fn edits_of_one_user_queued_together_lose_no_update() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let user = create(store, "counted");
            // Each edit increments `title` and rewrites `emails` (0 to 2
            // elements), so the index rows are deleted, updated and
            // inserted along the way.
            let answers: Vec<_> = (0..100)
                .map(|i: usize| {
                    store.queue_user_edit(user.id.clone(), false, patched_by_test(), move |found: Found| {
                        let (current, _) = found.ok_or(StoreError::NotFound)?;
                        let n: u64 = current
                            .attrs
                            .get("title")
                            .and_then(Value::as_str)
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        let mut attrs = current.attrs.clone();
                        attrs.insert("title".into(), json!((n + 1).to_string()));
                        let emails: Vec<Value> = (0..i % 3)
                            .map(|k| json!({"value": format!("e{k}-{i}@example.com"), "type": "work"}))
                            .collect();
                        attrs.insert("emails".into(), Value::Array(emails));
                        Ok(Edit::Store {
                            current,
                            attrs,
                            password: PasswordChange::Keep,
                            then: Box::new(|rec| rec),
                        })
                    })
                })
                .collect();
            let mut versions: Vec<i64> = answers
                .into_iter()
                .map(|a| a.wait().unwrap().version)
                .collect();
            versions.sort_unstable();
            assert_eq!(versions, (2..=101).collect::<Vec<_>>(), "{backend}");
            let last = store
                .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &user.id))
                .unwrap()
                .unwrap();
            assert_eq!(last.attrs["title"], json!("100"), "{backend}");
            assert_eq!(last.version, 101, "{backend}");
            assert_stored(store, &last);
        }
    }

    #[test]
    fn a_write_that_fails_in_a_batch_fails_alone() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            create(store, "Taken");
            let renamed = create(store, "renamed");
            let others: Vec<UserRecord> = (0..20)
                .map(|i| create(store, &format!("other-{i}")))
                .collect();
            let grouped = create(store, "grouped");
            store
                .write(|c| {
                    crate::scim::groups::insert_group(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &obj(json!({"displayName": "Team"})),
                        &[crate::scim::members::MemberRef {
                            value: grouped.id.clone(),
                            member_type: Some(crate::scim::members::MemberType::User),
                        }],
                    )
                })
                .unwrap();

            let mut blocked = Blocked::start(&db);

            // Queued at once: a rename to a taken userName (the batch's
            // UPDATE fails on the unique index), and around it edits and
            // creates that must still apply.
            let rename = store.queue_user_edit(
                renamed.id.clone(),
                false,
                patched_by_test(),
                |found: Found| {
                    let (current, _) = found.ok_or(StoreError::NotFound)?;
                    let mut attrs = current.attrs.clone();
                    attrs.insert("userName".into(), json!("TAKEN"));
                    Ok(Edit::Store {
                        current,
                        attrs,
                        password: PasswordChange::Keep,
                        then: Box::new(|rec| rec),
                    })
                },
            );
            let titles: Vec<_> = others
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let password = if i == 0 {
                        PasswordChange::Set("new-hash".into())
                    } else {
                        PasswordChange::Keep
                    };
                    store.queue_user_edit(
                        u.id.clone(),
                        false,
                        patched_by_test(),
                        set_title("edited", password),
                    )
                })
                .collect();
            let creates: Vec<_> = (0..10)
                .map(|i| {
                    store.queue_insert_user(
                        obj(json!({"userName": format!("new-{i}")})),
                        None,
                        Actor::cli("test"),
                    )
                })
                .collect();
            let missing = store.queue_user_edit(
                "no-such-id".into(),
                false,
                patched_by_test(),
                set_title("x", PasswordChange::Keep),
            );
            let untouched = store.queue_user_edit(
                others[2].id.clone(),
                false,
                patched_by_test(),
                |found: Found| Ok(Edit::Answer(found.map(|(rec, _)| rec.id))),
            );
            let groups = store.queue_user_edit(
                grouped.id.clone(),
                true,
                patched_by_test(),
                |found: Found| {
                    let (current, groups) = found.ok_or(StoreError::NotFound)?;
                    Ok(Edit::Store {
                        attrs: current.attrs.clone(),
                        current,
                        password: PasswordChange::Keep,
                        then: Box::new(move |_| groups),
                    })
                },
            );

            blocked.release_one();
            assert!(
                matches!(rename.wait(), Err(StoreError::Conflict(_))),
                "{backend}"
            );
            let after = store
                .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &renamed.id))
                .unwrap()
                .unwrap();
            assert_eq!(after, renamed, "{backend}: the failed rename wrote nothing");
            for answer in titles {
                let rec = answer.wait().unwrap();
                assert_eq!(rec.attrs["title"], json!("edited"), "{backend}");
                assert_stored(store, &rec);
            }
            for answer in creates {
                assert_stored(store, &answer.wait().unwrap());
            }
            assert!(
                matches!(missing.wait(), Err(StoreError::NotFound)),
                "{backend}"
            );
            assert_eq!(
                untouched.wait().unwrap(),
                Some(others[2].id.clone()),
                "{backend}"
            );
            let groups = groups.wait().unwrap();
            blocked.release_rest();
            assert_eq!(groups.len(), 1, "{backend}");
            assert_eq!(groups[0].display, "Team", "{backend}");
            let hash = |id: &str| store.read(|c| find_password_hash(c, id)).unwrap();
            assert_eq!(
                hash(&others[0].id).as_deref(),
                Some("new-hash"),
                "{backend}"
            );
            assert_eq!(hash(&others[3].id), None, "{backend}");
            if backend == crate::db::connection::Backend::Postgres {
                // The failing rename shared their batch: each ran alone.
                let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
                assert_eq!(writers(store, &ids).len(), others.len(), "{backend}");
            }
        }
    }

    /// The transactions that last wrote the `users` rows of `ids`
    /// (PostgreSQL's `xmin`): one per batch that wrote them, one per
    /// write for writes that ran alone.
    fn writers(store: &Store, ids: &[&str]) -> std::collections::HashSet<String> {
        #[derive(diesel::QueryableByName)]
        struct Xmin {
            #[diesel(sql_type = diesel::sql_types::Text)]
            xmin: String,
        }
        store
            .read(|c| {
                let mut b = crate::db::sql::SqlBuilder::new(c.backend());
                b.push("SELECT xmin::text AS xmin FROM users WHERE id IN (");
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.bind_text(*id);
                }
                b.push(")");
                Ok(crate::db::sql::load::<Xmin>(c, &b)?)
            })
            .unwrap()
            .into_iter()
            .map(|row| row.xmin)
            .collect()
    }

    /// On PostgreSQL, both batcher threads held up on a row lock each, so
    /// that every write queued until [`Blocked::release_one`] waits in the
    /// queue; the batcher released first then takes them all, in one batch.
    /// Nothing on SQLite.
    type Holder = std::thread::JoinHandle<Result<(), StoreError>>;

    struct Blocked {
        /// One per batcher: the thread holding its row lock, and what lets
        /// that thread commit.
        holders: Vec<(Holder, std::sync::mpsc::Sender<()>)>,
        edits: Vec<crate::engine::Answer<UserRecord>>,
    }

    /// Returns once `n` sessions of this database wait for a row lock
    /// (PostgreSQL says so in `pg_stat_activity`; there is no event to
    /// wait on).
    fn wait_for_lock_waits(store: &Store, n: usize) {
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            waiting: i64,
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting = store
                .read(|c| {
                    let rows: Vec<Waiting> = diesel::sql_query(
                        "SELECT COUNT(*) AS waiting FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .load(c)?;
                    Ok(rows.first().map_or(0, |r| r.waiting))
                })
                .unwrap();
            if usize::try_from(waiting).unwrap_or(0) >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no batcher waited on the lock"
            );
            std::thread::yield_now();
        }
    }

    impl Blocked {
        fn start(db: &crate::testing::TestDb) -> Blocked {
            let store = db.store();
            if store.backend() != crate::db::connection::Backend::Postgres {
                return Blocked {
                    holders: Vec::new(),
                    edits: Vec::new(),
                };
            }
            let n = store.read(crate::scim::users::count_users).unwrap();
            let blockers = [
                create(store, &format!("blocker-{n}-0")),
                create(store, &format!("blocker-{n}-1")),
            ];
            // Each row locked by a transaction of its own, on a connection
            // of its own (the store's pool is the batchers'), so that each
            // can be let go alone.
            let target = crate::db::connection::Target::parse(db.url()).unwrap();
            let holders = blockers
                .iter()
                .map(|blocker| {
                    let (locked, wait) = std::sync::mpsc::channel();
                    let (release, released) = std::sync::mpsc::channel::<()>();
                    let mut conn = crate::db::connection::ConnectionManager::new(target.clone())
                        .establish()
                        .unwrap();
                    let sql = format!(
                        "BEGIN; SELECT 1 FROM users WHERE id = '{}' FOR UPDATE",
                        blocker.id
                    );
                    let holder = std::thread::spawn(move || {
                        use diesel::connection::SimpleConnection;
                        conn.batch_execute(&sql)?;
                        locked.send(()).unwrap();
                        let _ = released.recv();
                        conn.batch_execute("COMMIT")?;
                        Ok(())
                    });
                    wait.recv().unwrap();
                    (holder, release)
                })
                .collect();
            // Each batcher takes one of these and waits on its lock: the
            // next is queued once PostgreSQL shows the first one waiting.
            let edits = blockers
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let edit = store.queue_user_edit(
                        b.id.clone(),
                        false,
                        patched_by_test(),
                        set_title("b", PasswordChange::Keep),
                    );
                    wait_for_lock_waits(store, i + 1);
                    edit
                })
                .collect();
            Blocked { holders, edits }
        }

        /// Lets the first batcher go: it finishes its blocked edit, then
        /// takes everything queued since, while the other still waits.
        fn release_one(&mut self) {
            if self.holders.is_empty() {
                return;
            }
            let (holder, release) = self.holders.remove(0);
            let _ = release.send(());
            holder.join().unwrap().unwrap();
            self.edits.remove(0).wait().unwrap();
        }

        /// Lets the other batcher go, and waits for its blocked edit.
        fn release_rest(mut self) {
            while !self.holders.is_empty() {
                self.release_one();
            }
        }
    }

    #[test]
    fn creates_and_edits_share_one_batch_and_its_index_writes() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let email = |v: &str| json!({"value": v, "type": "work"});
            let users: Vec<UserRecord> = (0..6)
                .map(|i| {
                    let attrs = json!({
                        "userName": format!("member-{i}"),
                        "title": "Engineer",
                        "emails": [email(&format!("m{i}@example.com"))],
                    });
                    store
                        .write(|c| {
                            insert_user(
                                c,
                                crate::db::org::OrgId::DEFAULT,
                                &obj(attrs.clone()),
                                None,
                            )
                        })
                        .unwrap()
                })
                .collect();
            let mut blocked = Blocked::start(&db);

            // Queued at once, each with other index rows to write: an
            // email added (insert), the emails dropped (delete), the title
            // changed (update), all three at once, a rename, no change.
            let edit = |user: &UserRecord, f: fn(&mut Map<String, Value>)| {
                store.queue_user_edit(
                    user.id.clone(),
                    false,
                    patched_by_test(),
                    move |found: Found| {
                        let (current, _) = found.ok_or(StoreError::NotFound)?;
                        let mut attrs = current.attrs.clone();
                        f(&mut attrs);
                        Ok(Edit::Store {
                            current,
                            attrs,
                            password: PasswordChange::Keep,
                            then: Box::new(|rec| rec),
                        })
                    },
                )
            };
            let edits = vec![
                edit(&users[0], |a| {
                    a["emails"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"value": "second@example.com", "type": "home"}));
                }),
                edit(&users[1], |a| {
                    a.remove("emails");
                }),
                edit(&users[2], |a| {
                    a.insert("title".into(), json!("Manager"));
                }),
                edit(&users[3], |a| {
                    a.remove("title");
                    a.insert("displayName".into(), json!("Four"));
                    a.insert(
                        "emails".into(),
                        json!([{"value": "FOUR@example.com", "primary": true}]),
                    );
                }),
                edit(&users[4], |a| {
                    a.insert("userName".into(), json!("Member-Renamed"));
                }),
                edit(&users[5], |_| {}),
            ];
            let creates: Vec<_> = (0..4)
                .map(|i| {
                    store.queue_insert_user(
                        obj(json!({
                            "userName": format!("joiner-{i}"),
                            "emails": [email(&format!("j{i}@example.com")), email("shared@example.com")],
                        })),
                        None,
                        Actor::cli("test"),
                    )
                })
                .collect();
            blocked.release_one();

            let mut written = Vec::new();
            for (answer, user) in edits.into_iter().zip(&users) {
                let rec = answer.wait().unwrap();
                assert_eq!(rec.version, user.version + 1, "{backend}");
                assert_stored(store, &rec);
                written.push(rec.id);
            }
            for answer in creates {
                let rec = answer.wait().unwrap();
                assert_stored(store, &rec);
                written.push(rec.id);
            }
            blocked.release_rest();
            let renamed = store
                .read(|c| {
                    crate::scim::lookup::find_user_by_name_gated(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "member-renamed",
                        false,
                    )
                })
                .unwrap()
                .found
                .unwrap();
            assert_eq!(renamed.0.id, users[4].id, "{backend}");
            if backend == crate::db::connection::Backend::Postgres {
                // All ten in one batch, which no write failed.
                let ids: Vec<&str> = written.iter().map(String::as_str).collect();
                assert_eq!(writers(store, &ids).len(), 1, "{backend}");
            }
        }
    }
}
