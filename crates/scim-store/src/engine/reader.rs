//! Reads queued for a fixed set of reader threads.
//!
//! A request handler that reads through `web::block` hands its closure to
//! tokio's blocking pool, which wakes an idle pool thread for every task
//! (a futex wake and a context switch each way), even when another pool
//! thread is about to finish and could take it. Under load that hand-off
//! costs as much CPU as the SQL of a point read (docs/BENCHMARKS.md).
//!
//! Here a few reader threads (one per read-pool connection) take closures
//! off one queue: a reader that finishes a read takes the next one without
//! sleeping, so while reads keep coming no thread waits to be woken. Each
//! read checks a connection out of the read pool and returns it at once,
//! as `Store::read` does, so the pool's size still bounds the connections.
//! The answer goes back over a oneshot channel, which wakes the awaiting
//! task on its own runtime.
//!
//! User lookups (`GET /Users/{id}`, and the `userName eq` filter identity
//! providers match users with) are queued as such rather than as closures:
//! a reader that takes one also takes the lookups queued behind it (up to
//! [`MAX_LOOKUP_KEYS`]) and answers them all with one statement
//! (`scim::lookup::find_users_gated`). On PostgreSQL a point read's cost is
//! mostly per statement, not per row: the round trip, the executor's
//! start-up, the gate's two rows (docs/BENCHMARKS.md, "Figures behind
//! scim-store's mechanisms"). Under light
//! load nothing waits for a batch to fill: a lookup that finds the queue
//! empty runs alone, at once.

#[cfg(test)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::db::connection::{ConnectionManager, DbConnection};
use crate::db::org::OrgId;
use crate::engine::queue::{catch, Behind, Workers};
use crate::engine::user_hints::UserHints;
use crate::error::StoreError;
use crate::scim::lookup::{find_users_gated, lookup_key, GatedUser, LookupBy, MAX_LOOKUP_KEYS};

type Pool = r2d2::Pool<ConnectionManager>;

/// A queued read: runs on a connection, or answers the error of not
/// getting one.
type ReadJob = Box<dyn FnOnce(Result<&mut DbConnection, StoreError>) + Send>;

/// A queued user lookup ([`ReadQueue::lookup`]).
struct Lookup {
    org: OrgId,
    by: LookupBy,
    /// As `scim::lookup::lookup_key` gives it.
    key: String,
    with_groups: bool,
    reply: tokio::sync::oneshot::Sender<Result<GatedUser, StoreError>>,
}

enum Job {
    Run(ReadJob),
    Lookup(Lookup),
}

/// The queue in front of the reader threads. Dropping it closes the queue:
/// the readers finish what was queued and exit (they are not joined).
pub(crate) struct ReadQueue {
    jobs: Workers<Job>,
    /// The most lookups one reader took together so far (for tests).
    #[cfg(test)]
    largest: Arc<AtomicUsize>,
}

impl ReadQueue {
    /// Starts `readers` threads reading from `pool`.
    /// The users they look up are offered to `hints` (SQLite's,
    /// `engine/user_hints.rs`).
    pub(crate) fn start(
        pool: Pool,
        readers: usize,
        hints: Option<Arc<UserHints>>,
    ) -> Result<ReadQueue, StoreError> {
        #[cfg(test)]
        let largest = Arc::new(AtomicUsize::new(0));
        let jobs = Workers::start("db-reader", readers, |_| {
            let (pool, hints) = (pool.clone(), hints.clone());
            #[cfg(test)]
            let largest = Arc::clone(&largest);
            move |job, behind: &mut Behind<'_, Job>| {
                let _taken = serve(&pool, job, behind, hints.as_deref());
                #[cfg(test)]
                largest.fetch_max(_taken, Ordering::Relaxed);
            }
        })?;
        Ok(ReadQueue {
            jobs,
            #[cfg(test)]
            largest,
        })
    }

    /// The most lookups one reader has taken together so far.
    #[cfg(test)]
    pub(crate) fn largest_lookup_batch(&self) -> usize {
        self.largest.load(Ordering::Relaxed)
    }

    /// Queues the lookup of the user whose id (or userName,
    /// case-insensitively) is `key`, behind the gate, as
    /// `scim::lookup::find_user_gated` (or `find_user_by_name_gated`) would: the
    /// reader that takes it answers it together with the lookups queued
    /// behind it.
    pub(crate) fn lookup(
        &self,
        org: OrgId,
        by: LookupBy,
        key: &str,
        with_groups: bool,
    ) -> tokio::sync::oneshot::Receiver<Result<GatedUser, StoreError>> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job = Job::Lookup(Lookup {
            org,
            by,
            key: lookup_key(by, key),
            with_groups,
            reply,
        });
        if let Err(Job::Lookup(lookup)) = self.jobs.push(job) {
            let _ = lookup.reply.send(Err(stopped()));
        }
        receiver
    }

    /// Queues `f`; the receiver gets its result.
    pub(crate) fn submit<T, F>(&self, f: F) -> tokio::sync::oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let result = conn.and_then(|conn| catch("read", || f(conn)));
            // The caller may have gone away (a dropped request).
            let _ = reply.send(result);
        });
        if let Err(Job::Run(job)) = self.jobs.push(Job::Run(job)) {
            job(Err(stopped()));
        }
        receiver
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the reader threads have stopped".to_owned())
}

/// A reader's turn: a read on a connection checked out for it, or a
/// lookup with the lookups queued right behind it (a read met among them
/// runs after them). Returns how many lookups it answered together.
fn serve(pool: &Pool, job: Job, behind: &mut Behind<'_, Job>, hints: Option<&UserHints>) -> usize {
    let first = match job {
        Job::Run(job) => {
            run(pool, job);
            return 0;
        }
        Job::Lookup(lookup) => lookup,
    };
    let mut lookups = vec![first];
    let mut held = None;
    while lookups.len() < MAX_LOOKUP_KEYS {
        match behind.next() {
            Some(Job::Lookup(next)) => lookups.push(next),
            Some(Job::Run(job)) => {
                held = Some(job);
                break;
            }
            None => break,
        }
    }
    let taken = lookups.len();
    answer_lookups(pool, lookups, hints);
    if let Some(job) = held {
        run(pool, job);
    }
    taken
}

fn run(pool: &Pool, job: ReadJob) {
    match pool.get() {
        Ok(mut conn) => job(Ok(&mut conn)),
        Err(e) => job(Err(e.into())),
    }
}

/// Answers `lookups` with one statement per organization and kind of key.
fn answer_lookups(pool: &Pool, lookups: Vec<Lookup>, hints: Option<&UserHints>) {
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            let e = StoreError::from(e);
            for lookup in lookups {
                let _ = lookup.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    // In the order first queued: almost always one organization and one
    // kind of key.
    let mut batches: Vec<((OrgId, LookupBy), Vec<Lookup>)> = Vec::new();
    for lookup in lookups {
        let key = (lookup.org, lookup.by);
        match batches.iter_mut().find(|(k, _)| *k == key) {
            Some((_, batch)) => batch.push(lookup),
            None => batches.push((key, vec![lookup])),
        }
    }
    for ((org, by), lookups) in batches {
        answer_batch(&mut conn, org, by, lookups, hints);
    }
}

/// Answers `lookups` (all of `org`, by `by`) with one statement.
fn answer_batch(
    conn: &mut DbConnection,
    org: OrgId,
    by: LookupBy,
    lookups: Vec<Lookup>,
    hints: Option<&UserHints>,
) {
    let mut keys: Vec<String> = Vec::with_capacity(lookups.len());
    for lookup in &lookups {
        if !keys.contains(&lookup.key) {
            keys.push(lookup.key.clone());
        }
    }
    let with_groups = lookups.iter().any(|l| l.with_groups);
    let found = catch("user lookup", || {
        find_users_gated(conn, org, by, &keys, with_groups)
    });
    for lookup in lookups {
        let answer = found.as_ref().map_err(Clone::clone).and_then(|gated| {
            let user = match gated.found.iter().find(|(key, _)| *key == lookup.key) {
                Some((_, user)) => user.clone().found(lookup.with_groups)?,
                None => None,
            };
            Ok(GatedUser {
                runtime: gated.runtime,
                found: user,
            })
        });
        if let (
            Some(hints),
            Ok(GatedUser {
                found: Some((user, groups)),
                ..
            }),
        ) = (hints, &answer)
        {
            hints.offer(
                lookup.org,
                user,
                lookup.with_groups.then_some(groups.as_slice()),
            );
        }
        // The caller may have gone away (a dropped request).
        let _ = lookup.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::testing::TestDb;
    use diesel::connection::SimpleConnection;
    use std::sync::{mpsc, Mutex};

    fn pool_of(db: &TestDb) -> Pool {
        let target = crate::db::connection::Target::parse(db.url()).unwrap();
        r2d2::Pool::builder()
            .max_size(2)
            .build(ConnectionManager::new(target))
            .unwrap()
    }

    #[test]
    fn reads_are_answered_and_a_panic_is_an_error() {
        let db = TestDb::sqlite();
        let queue = ReadQueue::start(pool_of(&db), 2, None).unwrap();
        let answers: Vec<_> = (0..50)
            .map(|i| {
                queue.submit(move |c| {
                    c.batch_execute("SELECT 1")?;
                    Ok(i)
                })
            })
            .collect();
        let got: Vec<i32> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap().unwrap())
            .collect();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        let panicked = queue.submit(|_| -> Result<(), StoreError> { panic!("a read panics") });
        assert!(matches!(
            panicked.blocking_recv().unwrap(),
            Err(StoreError::Internal(_))
        ));
        // The readers go on.
        let after = queue.submit(|c| c.batch_execute("SELECT 1").map_err(StoreError::from));
        after.blocking_recv().unwrap().unwrap();
    }

    /// Every reader of `store` (the test store has 4: `testing::config`'s
    /// pool size), each held on a queued read, so that what is queued
    /// meanwhile waits in the queue.
    struct HeldReaders {
        release: mpsc::Sender<()>,
        holders: Vec<crate::engine::Answer<()>>,
        held: usize,
    }

    const READERS: usize = 4;

    impl HeldReaders {
        /// Lets exactly one reader go: it alone takes what was queued, in
        /// queue order, so the batches it makes do not depend on how the
        /// threads are scheduled.
        fn release_one(&mut self) {
            assert!(self.held > 0);
            self.release.send(()).unwrap();
            self.held -= 1;
        }

        /// Lets the others go, and waits until every holder has finished.
        fn release_all(mut self) {
            while self.held > 0 {
                self.release_one();
            }
            for holder in self.holders {
                holder.wait().unwrap();
            }
        }
    }

    fn hold_readers(store: &crate::engine::Store) -> HeldReaders {
        let (started, all_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let holders: Vec<_> = (0..READERS)
            .map(|_| {
                let (started, released) = (started.clone(), Arc::clone(&released));
                store.queue_read(move |_| {
                    started.send(()).unwrap();
                    released.lock().unwrap().recv().unwrap();
                    Ok(())
                })
            })
            .collect();
        for _ in 0..READERS {
            all_started
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the test store has fewer readers than the test holds");
        }
        HeldReaders {
            release,
            holders,
            held: READERS,
        }
    }

    #[test]
    fn queued_lookups_share_a_statement_and_each_gets_its_own_answer() {
        use crate::scim::lookup::{find_user_by_name_gated, find_user_gated};
        use crate::testing::backends;
        use crate::{scim::members::MemberRef, scim::members::MemberType};
        use serde_json::json;

        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            let users = store
                .write(|c| {
                    let users = (0..6)
                        .map(|i| {
                            let attrs = json!({"userName": format!("User{i}@Example.com")});
                            crate::scim::users::insert_user(
                                c,
                                crate::db::org::OrgId::DEFAULT,
                                attrs.as_object().unwrap(),
                                None,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let member = [MemberRef {
                        value: users[0].id.clone(),
                        member_type: Some(MemberType::User),
                    }];
                    crate::scim::groups::insert_group(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        json!({"displayName": "g"}).as_object().unwrap(),
                        &member,
                    )?;
                    crate::scim::users::soft_delete_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &users[5].id,
                        None,
                    )?;
                    Ok(users)
                })
                .unwrap();

            // Disabled: every lookup of the batch is refused.
            let held = hold_readers(store);
            let refused: Vec<_> = (0..3)
                .map(|i| {
                    store.queue_user_lookup(
                        crate::db::org::OrgId::DEFAULT,
                        LookupBy::Id,
                        &users[i].id,
                        true,
                    )
                })
                .collect();
            held.release_all();
            for answer in refused {
                let err = answer.wait().unwrap_err();
                assert!(
                    crate::admin::sync::is_sync_disabled(&err),
                    "{backend}: {err:?}"
                );
            }
            store
                .write(|c| {
                    crate::admin::sync::enable_sync(c, crate::db::org::OrgId::DEFAULT, "test", &[])
                        .map(|_| ())
                })
                .unwrap();

            // Ids (one twice, with and without groups; an unknown one; a
            // deleted one) and userNames in other cases, with a read
            // queued among them.
            let mut wanted: Vec<(LookupBy, String, bool)> = Vec::new();
            for (i, user) in users.iter().enumerate() {
                wanted.push((LookupBy::Id, user.id.clone(), i % 2 == 0));
                wanted.push((
                    LookupBy::UserName,
                    format!("USER{i}@example.COM"),
                    i % 3 == 0,
                ));
            }
            wanted.push((LookupBy::Id, users[0].id.clone(), false));
            wanted.push((LookupBy::Id, "no-such-id".to_owned(), true));
            wanted.push((LookupBy::UserName, "nobody@example.com".to_owned(), true));
            let mut held = hold_readers(store);
            let mut answers: Vec<_> = wanted
                .iter()
                .map(|(by, key, with_groups)| {
                    store.queue_user_lookup(crate::db::org::OrgId::DEFAULT, *by, key, *with_groups)
                })
                .collect();
            let read = store.queue_read(crate::scim::users::count_users);
            answers.push(store.queue_user_lookup(
                crate::db::org::OrgId::DEFAULT,
                LookupBy::Id,
                &users[1].id,
                true,
            ));
            wanted.push((LookupBy::Id, users[1].id.clone(), true));
            held.release_one();
            assert_eq!(read.wait().unwrap(), 5, "{backend}");
            let got: Vec<_> = answers.into_iter().map(|a| a.wait().unwrap()).collect();
            held.release_all();
            for ((by, key, with_groups), got) in wanted.iter().zip(got) {
                let alone = store
                    .read(|c| match by {
                        LookupBy::Id => {
                            find_user_gated(c, crate::db::org::OrgId::DEFAULT, key, *with_groups)
                        }
                        LookupBy::UserName => find_user_by_name_gated(
                            c,
                            crate::db::org::OrgId::DEFAULT,
                            key,
                            *with_groups,
                        ),
                    })
                    .unwrap();
                assert_eq!(got, alone, "{backend}: {by:?} {key} {with_groups}");
            }
            // What the answers hold, beyond agreeing with a lookup alone.
            let first = store
                .queue_user_lookup(
                    crate::db::org::OrgId::DEFAULT,
                    LookupBy::UserName,
                    "user0@EXAMPLE.com",
                    true,
                )
                .wait()
                .unwrap()
                .found
                .unwrap();
            assert_eq!(first.0, users[0], "{backend}");
            assert_eq!(first.1.len(), 1, "{backend}");
            // All of those before the read went together.
            assert_eq!(store.largest_lookup_batch(), 15, "{backend}");

            // More than one statement takes: in statements of 32.
            let mut held = hold_readers(store);
            let answers: Vec<_> = (0..40)
                .map(|i| {
                    store.queue_user_lookup(
                        crate::db::org::OrgId::DEFAULT,
                        LookupBy::Id,
                        &users[i % 5].id,
                        false,
                    )
                })
                .collect();
            held.release_one();
            let got: Vec<_> = answers.into_iter().map(|a| a.wait().unwrap()).collect();
            held.release_all();
            for (i, answer) in got.into_iter().enumerate() {
                let (rec, _) = answer.found.unwrap();
                assert_eq!(rec, users[i % 5], "{backend}");
            }
            assert_eq!(store.largest_lookup_batch(), MAX_LOOKUP_KEYS, "{backend}");
        }
    }
}
