//! Reads queued for a fixed set of reader threads.
//!
//! A request handler that reads through `web::block` hands its closure to
//! tokio's blocking pool, which wakes an idle pool thread for every task
//! (a futex wake and a context switch each way), even when another pool
//! thread is about to finish and could take it. Under load that hand-off
//! cost as much CPU as the SQL of a point read (docs/BENCHMARKS.md).
//!
//! Here a few reader threads (one per read-pool connection) take closures
//! off one queue: a reader that finishes a read takes the next one without
//! sleeping, so while reads keep coming no thread waits to be woken. Each
//! read checks a connection out of the read pool and returns it at once,
//! as `Store::read` does, so the pool's size still bounds the connections.
//! The answer goes back over a oneshot channel, which wakes the awaiting
//! task on its own runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use crate::connection::{ConnectionManager, DbConnection};
use crate::error::StoreError;

type Pool = r2d2::Pool<ConnectionManager>;

/// A queued read: runs on a connection, or answers the error of not
/// getting one.
type ReadJob = Box<dyn FnOnce(Result<&mut DbConnection, StoreError>) + Send>;

/// The queue in front of the reader threads. Dropping it closes the queue:
/// the readers finish what was queued and exit (they are not joined).
pub(crate) struct ReadQueue {
    sender: mpsc::Sender<ReadJob>,
}

impl ReadQueue {
    /// Starts `readers` threads reading from `pool`.
    pub(crate) fn start(pool: Pool, readers: usize) -> Result<ReadQueue, StoreError> {
        let (sender, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..readers.max(1) {
            let (pool, queue) = (pool.clone(), Arc::clone(&queue));
            std::thread::Builder::new()
                .name(format!("db-reader-{i}"))
                .spawn(move || serve(&pool, &queue))
                .map_err(|e| StoreError::internal("cannot start a reader thread", &e))?;
        }
        Ok(ReadQueue { sender })
    }

    /// Queues `f`; the receiver gets its result.
    pub(crate) fn submit<T, F>(&self, f: F) -> tokio::sync::oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::error!("a queued read panicked");
                        Err(StoreError::Internal(
                            "the read failed unexpectedly (it panicked)".to_owned(),
                        ))
                    }
                },
                Err(e) => Err(e),
            };
            // The caller may have gone away (a dropped request).
            let _ = reply.send(result);
        });
        if let Err(mpsc::SendError(job)) = self.sender.send(job) {
            job(Err(StoreError::Unavailable(
                "the reader threads have stopped".to_owned(),
            )));
        }
        receiver
    }
}

/// A reader thread: one queued read after another, each on a connection
/// checked out for it. Returns when the queue closes.
fn serve(pool: &Pool, queue: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            return;
        };
        match pool.get() {
            Ok(mut conn) => job(Ok(&mut conn)),
            Err(e) => job(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::testing::TestDb;
    use diesel::connection::SimpleConnection;

    fn pool_of(db: &TestDb) -> Pool {
        let target = crate::connection::Target::parse(db.url()).unwrap();
        r2d2::Pool::builder()
            .max_size(2)
            .build(ConnectionManager::new(target))
            .unwrap()
    }

    #[test]
    fn reads_are_answered_and_a_panic_is_an_error() {
        let db = TestDb::sqlite();
        let queue = ReadQueue::start(pool_of(&db), 2).unwrap();
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
}
