//! SQLite's writer: one thread owns the single write connection, and the
//! writes queued behind each other share one transaction (group commit).
//!
//! Every SQLite write goes through one connection (a single writer beats
//! writers busy-waiting on the database lock), so the writer's time sets
//! the write rate, and much of it was appending each commit's dirtied pages
//! to the WAL (docs/BENCHMARKS.md). Writes queued behind each other
//! therefore share one `BEGIN IMMEDIATE` transaction: pages several of them
//! dirty (index interior pages, the `user_values` leaves) reach the WAL
//! once per batch instead of once per request.
//!
//! Every write goes through the one queue of the writer thread
//! ([`crate::engine::queue::Workers`]), in order:
//!
//! - a **queued** write ([`SqliteWriter::submit`], `Store::queue_write`),
//!   a closure that owns what it needs, runs on the writer thread;
//! - a **blocking** write ([`SqliteWriter::write`], `Store::write`: admin
//!   actions, the CLI, tests), a closure that may borrow from its caller's
//!   stack, runs on its caller's thread: when its turn comes, the writer
//!   thread lends it the connection, with the batch's transaction open,
//!   and waits until it is given back;
//! - an **exclusive** job ([`SqliteWriter::exclusive`]: migrations, which
//!   manage their own transactions) is lent the connection the same way,
//!   once the open batch has committed, outside any transaction.
//!
//! The writer thread takes a job and then the jobs queued behind it, each
//! in a savepoint of the open batch (Diesel's nested transaction: released
//! on `Ok`, rolled back on `Err`, so a failed write leaves nothing and does
//! not touch the others), and commits when nothing more is queued, or the
//! batch has [`MAX_BATCH_JOBS`] jobs or is [`MAX_BATCH_AGE`] old. Every
//! write is answered once its batch committed (read-your-writes); a failed
//! `COMMIT` fails every write of the batch.
//!
//! A closure that panics is rolled back to its savepoint. A queued write
//! then answers `StoreError::Internal`; a blocking write's panic resumes in
//! its caller. A panic inside the closure's own `conn.transaction(…)`
//! leaves Diesel's transaction depth off, so that the savepoint no longer
//! identifies the job's work: the whole batch is rolled back and every
//! write of it fails.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::Connection;

use crate::db::connection::{ConnectionManager, DbConnection};
use crate::engine::queue::{catch, Behind, Workers};
use crate::error::StoreError;

/// At most this many jobs share one transaction: bounds the latency a
/// batch adds to its first job, and the work a failed commit undoes.
pub(crate) const MAX_BATCH_JOBS: usize = 32;

/// A batch older than this commits with its next job, whoever is queued.
pub(crate) const MAX_BATCH_AGE: Duration = Duration::from_millis(8);

type Pool = r2d2::Pool<ConnectionManager>;
type PooledConnection = r2d2::PooledConnection<ConnectionManager>;
type Tm = <DbConnection as Connection>::TransactionManager;

thread_local! {
    /// Set while this thread runs a write closure: a write it started
    /// would wait for the writer, which is waiting for this very closure.
    static IN_WRITE: Cell<bool> = const { Cell::new(false) };
}

/// The queue of SQLite's writer thread, shared by every clone of the
/// `Store`. Dropping it closes the queue: the thread runs what was queued,
/// commits, and exits.
pub(crate) struct SqliteWriter {
    jobs: Workers<WriteJob>,
}

/// What the writer thread is asked to do.
enum WriteJob {
    /// Run a closure in the open batch.
    Run(Box<dyn QueuedJob>),
    /// Lend the connection to a blocking caller.
    Lend(Loan),
}

/// A queued closure, its answer type erased so that all share one queue.
trait QueuedJob: Send {
    /// Runs the job in a savepoint on `conn`; returns its reply and, if
    /// the batch must be rolled back entirely, why.
    fn run(self: Box<Self>, conn: &mut DbConnection) -> (Reply, Option<StoreError>);
    /// Answers the job with `error` without running it.
    fn reject(self: Box<Self>, error: StoreError);
}

/// Sends a job's result, given how its batch ended.
type Reply = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

struct Queued<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> QueuedJob for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConnection) -> (Reply, Option<StoreError>) {
        let Queued { f, reply } = *self;
        let (result, abandon) = match in_savepoint(conn, |conn| catch("write", || f(conn))) {
            Ok(result) => (result, None),
            Err(cause) => (Err(cause.clone()), Some(cause)),
        };
        let send: Reply = Box::new(move |batch: &Result<(), StoreError>| {
            // A job that failed by itself keeps its own error.
            let result = result.and_then(|value| batch.clone().map(|()| value));
            // The caller may have gone away (a dropped request): its
            // write still happened, as a blocking write's would.
            let _ = reply.send(result);
        });
        (send, abandon)
    }

    fn reject(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// A blocking caller's request for the connection.
struct Loan {
    /// In a savepoint of the open batch (a write), or outside any
    /// transaction once the batch committed (exclusive).
    in_batch: bool,
    lent: mpsc::Sender<Result<Lent, StoreError>>,
}

/// The connection, lent to a blocking caller.
struct Lent {
    conn: PooledConnection,
    /// Where the connection goes back.
    back: mpsc::Sender<Returned>,
    /// How the batch ended (a write in the batch only).
    outcome: Option<mpsc::Receiver<Result<(), StoreError>>>,
}

/// The connection, given back.
struct Returned {
    conn: PooledConnection,
    /// Set when the batch must be rolled back entirely.
    abandon: Option<StoreError>,
}

impl SqliteWriter {
    /// Starts the writer thread on `pool` (a pool of one connection, which
    /// opens it and, after a failure, reopens it). When the checkpointer
    /// sets `restart_wal`, the next batch first restarts the WAL.
    pub(crate) fn start(pool: Pool, restart_wal: Arc<AtomicBool>) -> Result<Self, StoreError> {
        Self::start_with(pool, restart_wal, MAX_BATCH_JOBS, MAX_BATCH_AGE)
    }

    fn start_with(
        pool: Pool,
        restart_wal: Arc<AtomicBool>,
        max_jobs: usize,
        max_age: Duration,
    ) -> Result<Self, StoreError> {
        let mut writer = Some(Writer {
            pool,
            conn: None,
            batch: None,
            restart_wal,
            max_jobs,
            max_age,
        });
        let jobs = Workers::start("sqlite-writer", 1, move |_| {
            let mut writer = writer.take();
            move |job, behind: &mut Behind<'_, WriteJob>| {
                if let Some(writer) = &mut writer {
                    writer.drain(job, behind);
                }
            }
        })?;
        Ok(SqliteWriter { jobs })
    }

    /// Queues `f`; the receiver gets its result once its batch ended.
    pub(crate) fn submit<T, F>(&self, f: F) -> tokio::sync::oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        if let Err(WriteJob::Run(job)) =
            self.jobs.push(WriteJob::Run(Box::new(Queued { f, reply })))
        {
            job.reject(stopped());
        }
        receiver
    }

    /// Runs `f` on this thread, in a savepoint of the batch open when its
    /// turn comes; returns once that batch committed.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    {
        let Lent {
            mut conn,
            back,
            outcome,
        } = self.borrow(true)?;
        let mut panic = None;
        let ran = {
            let _flag = InWrite::set();
            in_savepoint(&mut conn, |conn| {
                catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|payload| {
                    panic = Some(payload);
                    Err(panicked())
                })
            })
        };
        let (result, abandon) = match ran {
            Ok(result) => (result, None),
            Err(cause) => (Err(cause.clone()), Some(cause)),
        };
        if let Some(panic) = panic {
            // Its savepoint is rolled back (or, with `abandon`, its batch).
            let _ = back.send(Returned { conn, abandon });
            resume_unwind(panic);
        }
        if abandon.is_some() {
            let _ = back.send(Returned { conn, abandon });
            return result;
        }
        let _ = back.send(Returned { conn, abandon });
        let batch = outcome
            .and_then(|outcome| outcome.recv().ok())
            .unwrap_or_else(|| Err(stopped()));
        // A write that failed by itself keeps its own error.
        result.and_then(|value| batch.map(|()| value))
    }

    /// Runs `f` on this thread with no transaction open (migrations, which
    /// manage their own), after any open batch committed.
    pub(crate) fn exclusive<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Lent { mut conn, back, .. } = self.borrow(false)?;
        let result = {
            let _flag = InWrite::set();
            catch_unwind(AssertUnwindSafe(|| f(&mut conn)))
        };
        let _ = back.send(Returned {
            conn,
            abandon: None,
        });
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }

    /// Queues a loan and waits for the connection.
    fn borrow(&self, in_batch: bool) -> Result<Lent, StoreError> {
        if IN_WRITE.with(Cell::get) {
            // The writer is waiting for this thread's own write.
            tracing::error!("Store::write called inside a write closure");
            return Err(StoreError::Unavailable(
                "the write connection is held by this thread's own write".to_owned(),
            ));
        }
        let (lent, receiver) = mpsc::channel();
        if self
            .jobs
            .push(WriteJob::Lend(Loan { in_batch, lent }))
            .is_err()
        {
            return Err(stopped());
        }
        receiver.recv().unwrap_or_else(|_| Err(stopped()))
    }
}

/// What each write of a batch that failed as a whole answers: the
/// cause when it says the database is out of reach or broken, else a
/// plain internal error, since the cause (a deferred constraint checked at
/// `COMMIT`, one write's panic) may belong to another write of the batch
/// and must not answer for this one (e.g. as a 409).
fn batch_failed(cause: &StoreError) -> StoreError {
    match cause {
        StoreError::Unavailable(_) | StoreError::Internal(_) => cause.clone(),
        _ => StoreError::Internal("the write batch was not committed".to_owned()),
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".to_owned())
}

fn panicked() -> StoreError {
    StoreError::Internal("the write failed unexpectedly (it panicked)".to_owned())
}

/// The writer thread's state.
struct Writer {
    pool: Pool,
    /// The write connection, kept once opened (`None` while lent, or
    /// after a failure until the next job reopens it).
    conn: Option<PooledConnection>,
    batch: Option<Batch>,
    restart_wal: Arc<AtomicBool>,
    max_jobs: usize,
    max_age: Duration,
}

/// The open transaction and its jobs so far.
struct Batch {
    jobs: usize,
    started: Instant,
    /// Sent once the batch ends.
    replies: Vec<Reply>,
}

impl Writer {
    /// Runs `first` and the jobs queued behind it, committing as it goes
    /// (see the module docs), and commits what is left.
    fn drain(&mut self, first: WriteJob, behind: &mut Behind<'_, WriteJob>) {
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                WriteJob::Run(job) => self.run(job),
                WriteJob::Lend(loan) => self.lend(loan),
            }
            if self
                .batch
                .as_ref()
                .is_some_and(|b| b.jobs >= self.max_jobs || b.started.elapsed() >= self.max_age)
            {
                self.commit();
            }
            next = behind.next();
        }
        self.commit();
    }

    fn run(&mut self, job: Box<dyn QueuedJob>) {
        let conn = match self.begun() {
            Ok(conn) => conn,
            Err(e) => return job.reject(e),
        };
        let (reply, abandon) = {
            let _flag = InWrite::set();
            job.run(conn)
        };
        self.joined(reply, abandon);
    }

    fn lend(&mut self, Loan { in_batch, lent }: Loan) {
        let (back, returned) = mpsc::channel();
        let (outcome, reply) = if in_batch {
            if let Err(e) = self.begun() {
                let _ = lent.send(Err(e));
                return;
            }
            let (tell, outcome) = mpsc::channel();
            let reply: Reply = Box::new(move |batch: &Result<(), StoreError>| {
                let _ = tell.send(batch.clone());
            });
            (Some(outcome), Some(reply))
        } else {
            self.commit();
            (None, None)
        };
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => match self.pool.get() {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = lent.send(Err(e.into()));
                    return;
                }
            },
        };
        if let Err(mpsc::SendError(Ok(Lent { conn, .. }))) = lent.send(Ok(Lent {
            conn,
            back,
            outcome,
        })) {
            // The caller went away before its turn.
            self.conn = Some(conn);
            if let Some(reply) = reply {
                self.joined(reply, None);
            }
            return;
        }
        match returned.recv() {
            Ok(Returned { conn, abandon }) => {
                self.conn = Some(conn);
                if let Some(reply) = reply {
                    self.joined(reply, abandon);
                }
            }
            // The caller's thread dropped the connection (it did not
            // come back): the pool discards one left in a transaction.
            Err(_) => {
                let lost = StoreError::Internal("the write connection was not given back".into());
                if let Some(reply) = reply {
                    self.joined(reply, Some(lost));
                }
            }
        }
    }

    /// The connection, with a batch open.
    fn begun(&mut self) -> Result<&mut DbConnection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.get()?);
        }
        let Some(conn) = self.conn.as_deref_mut() else {
            return Err(StoreError::Internal(
                "the writer connection was lost".into(),
            ));
        };
        if self.batch.is_none() {
            if self.restart_wal.swap(false, Ordering::Relaxed) {
                restart_wal(conn);
            }
            let begun = match conn {
                // IMMEDIATE takes the write lock up front, so a read
                // followed by a write cannot fail with SQLITE_BUSY on the
                // lock upgrade.
                DbConnection::Sqlite(c) => {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                }
                DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
            };
            if let Err(e) = begun {
                if conn.is_broken() {
                    self.conn = None;
                }
                return Err(e.into());
            }
            self.batch = Some(Batch {
                jobs: 0,
                started: Instant::now(),
                replies: Vec::new(),
            });
        }
        self.conn
            .as_deref_mut()
            .ok_or_else(|| StoreError::Internal("the writer connection was lost".into()))
    }

    /// Counts a job into the open batch; `abandon` rolls the batch back.
    fn joined(&mut self, reply: Reply, abandon: Option<StoreError>) {
        match &mut self.batch {
            Some(batch) => {
                batch.jobs += 1;
                batch.replies.push(reply);
            }
            None => reply(&Err(StoreError::Internal(
                "the write batch ended without an outcome".to_owned(),
            ))),
        }
        if let Some(cause) = abandon {
            self.fail(&cause);
        }
    }

    /// Commits the open batch and answers its jobs; a failed `COMMIT`
    /// (which Diesel follows with a `ROLLBACK`) fails every job of it.
    fn commit(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let committing = Instant::now();
        let committed = match &mut self.conn {
            Some(conn) => {
                let r = Tm::commit_transaction(&mut **conn).map_err(StoreError::from);
                if conn.is_broken() {
                    self.conn = None;
                }
                r
            }
            None => Err(StoreError::Internal(
                "the writer connection was lost".to_owned(),
            )),
        };
        metrics::histogram!("scimd_store_commit_seconds", "backend" => "sqlite")
            .record(committing.elapsed());
        metrics::histogram!("scimd_store_write_batch_seconds", "backend" => "sqlite")
            .record(batch.started.elapsed());
        metrics::histogram!("scimd_store_write_batch_size", "backend" => "sqlite")
            .record(batch.jobs as f64);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.jobs, "committing a write batch failed");
        }
        let committed = committed.map_err(|e| batch_failed(&e));
        for reply in batch.replies {
            reply(&committed);
        }
    }

    /// Rolls the open batch back entirely and fails every job of it.
    fn fail(&mut self, cause: &StoreError) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        if let Some(conn) = &mut self.conn {
            if !rollback_all(conn) {
                // Dropping the connection is the rollback of last resort:
                // SQLite discards an open transaction on close, and r2d2
                // discards a connection whose transaction state is broken.
                self.conn = None;
            }
        }
        tracing::error!(error = %cause, jobs = batch.jobs, "a write batch was rolled back");
        let failed = Err(batch_failed(cause));
        for reply in batch.replies {
            reply(&failed);
        }
    }
}

/// Runs a RESTART checkpoint on the writer connection, between batches,
/// when the checkpointer asked for one (`checkpoint.rs`): the writer holds
/// still while the frames the last PASSIVE round left are copied and the
/// files synced, and the batch it then begins writes from the start of
/// the WAL. Waiting for readers still on old frames is bounded by the busy
/// timeout; failing is harmless (the checkpointer asks again).
fn restart_wal(conn: &mut DbConnection) {
    let DbConnection::Sqlite(c) = conn else {
        return;
    };
    let started = Instant::now();
    match diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA wal_checkpoint(RESTART)") {
        Ok(()) => {
            metrics::counter!("scimd_sqlite_checkpoints_total", "mode" => "restart", "outcome" => "ok").increment(1);
            tracing::debug!(elapsed = ?started.elapsed(), "WAL restarted")
        }
        Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed"),
    }
}

/// Runs `f` in a savepoint on `conn`: released when `f` returns `Ok`,
/// rolled back when it returns `Err`; `f`'s result is the inner one. The
/// outer `Err` says the batch must be rolled back entirely: the savepoint
/// could not be closed, or `f` left Diesel's transaction depth elsewhere
/// (a panic inside its own `conn.transaction(…)`), so that the savepoint
/// no longer identifies its work.
fn in_savepoint<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    Tm::begin_transaction(conn)?;
    let expected = depth(conn);
    let result = f(conn);
    if depth(conn) != expected {
        return Err(StoreError::Internal(
            "a write closure left a transaction open".to_owned(),
        ));
    }
    match result {
        Ok(value) => Tm::commit_transaction(conn).map(|()| Ok(value)),
        Err(e) => Tm::rollback_transaction(conn).map(|()| Err(e)),
    }
    .map_err(StoreError::from)
}

/// Diesel's transaction depth on `conn`, `None` outside a transaction or
/// when its transaction manager is in error.
fn depth(conn: &mut DbConnection) -> Option<u32> {
    Tm::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten()
        .map(std::num::NonZeroU32::get)
}

/// Rolls back every level Diesel has open on `conn`; `false` if that
/// failed and the connection must not be used again.
fn rollback_all(conn: &mut DbConnection) -> bool {
    loop {
        match Tm::transaction_manager_status_mut(conn).transaction_depth() {
            Ok(None) => return true,
            Ok(Some(_)) => {
                if let Err(e) = Tm::rollback_transaction(conn) {
                    tracing::error!(error = %e, "rolling back a write batch failed");
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Marks this thread as running a write closure until dropped.
struct InWrite;

impl InWrite {
    fn set() -> InWrite {
        IN_WRITE.with(|c| c.set(true));
        InWrite
    }
}

impl Drop for InWrite {
    fn drop(&mut self) {
        IN_WRITE.with(|c| c.set(false));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::thread;

    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;

    use crate::db::connection::Target;

    type Answer<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;
    type Job<T> = Box<dyn FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send>;

    struct Fixture {
        writer: Arc<SqliteWriter>,
        path: String,
        _dir: tempfile::TempDir,
    }

    /// A writer over a fresh SQLite file with `t` (unique `x`) and `child`
    /// (a deferred foreign key to `t`), batching until `max_jobs`.
    fn fixture(max_jobs: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gc.db").display().to_string();
        let target = Target::parse(&format!("sqlite://{path}")).unwrap();
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .build(ConnectionManager::new(target))
            .unwrap();
        let writer =
            SqliteWriter::start_with(pool, Arc::default(), max_jobs, Duration::from_secs(60))
                .unwrap();
        writer
            .exclusive(|c| {
                c.batch_execute(
                    "CREATE TABLE t (x TEXT PRIMARY KEY); \
                     CREATE TABLE child (p TEXT REFERENCES t (x) DEFERRABLE INITIALLY DEFERRED);",
                )?;
                Ok(())
            })
            .unwrap();
        Fixture {
            writer: Arc::new(writer),
            path,
            _dir: dir,
        }
    }

    fn insert(c: &mut DbConnection, x: &str) -> Result<(), StoreError> {
        diesel::sql_query("INSERT INTO t (x) VALUES (?)")
            .bind::<diesel::sql_types::Text, _>(x)
            .execute(c)?;
        Ok(())
    }

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        x: String,
    }

    fn rows(writer: &SqliteWriter) -> Vec<String> {
        writer
            .exclusive(|c| {
                let rows: Vec<Row> = diesel::sql_query("SELECT x FROM t ORDER BY x").load(c)?;
                Ok(rows.into_iter().map(|r| r.x).collect())
            })
            .unwrap()
    }

    /// What another connection sees committed.
    fn committed(path: &str) -> Vec<String> {
        let mut c = diesel::SqliteConnection::establish(path).unwrap();
        let rows: Vec<Row> = diesel::sql_query("SELECT x FROM t ORDER BY x")
            .load(&mut c)
            .unwrap();
        rows.into_iter().map(|r| r.x).collect()
    }

    /// A blocking write that inserts "a" and, while it holds the writer,
    /// queues `jobs`: they run behind it, in its batch (while it has room).
    fn behind_a<T: Send + 'static>(
        writer: &SqliteWriter,
        jobs: Vec<Job<T>>,
    ) -> (Result<(), StoreError>, Vec<Answer<T>>) {
        let mut answers = Vec::new();
        let held = writer.write(|c| {
            insert(c, "a")?;
            answers = jobs.into_iter().map(|job| writer.submit(job)).collect();
            Ok(())
        });
        (held, answers)
    }

    #[test]
    fn queued_writes_share_a_batch_and_a_failing_one_undoes_only_its_own() {
        let f = fixture(32);
        let path = f.path.clone();
        let (held, answers) = behind_a::<String>(
            &f.writer,
            vec![
                Box::new(|c| insert(c, "b").map(|()| "b".to_owned())),
                Box::new(|c| {
                    insert(c, "c1")?;
                    Err(StoreError::Conflict("this job gives up".into()))
                }),
                // A database error (the duplicate) undoes the job's first insert.
                Box::new(|c| {
                    insert(c, "d1")?;
                    insert(c, "a").map(|()| "d".to_owned())
                }),
                Box::new(|c| {
                    insert(c, "p")?;
                    panic!("job p panics");
                }),
                Box::new(move |c| {
                    // One transaction: nothing of the batch is committed yet.
                    assert!(committed(&path).is_empty());
                    insert(c, "e").map(|()| "e".to_owned())
                }),
            ],
        );
        held.unwrap();
        let results: Vec<_> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap())
            .collect();
        assert_eq!(results[0].as_deref().unwrap(), "b");
        assert!(matches!(&results[1], Err(StoreError::Conflict(m)) if m == "this job gives up"));
        assert!(matches!(results[2], Err(StoreError::Conflict(_))));
        assert!(matches!(results[3], Err(StoreError::Internal(_))));
        assert_eq!(results[4].as_deref().unwrap(), "e");
        assert_eq!(rows(&f.writer), ["a", "b", "e"]);
        // The writer thread goes on serving.
        f.writer
            .submit(|c| insert(c, "f"))
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(committed(&f.path), ["a", "b", "e", "f"]);
    }

    #[test]
    fn a_failed_commit_fails_every_write_of_the_batch() {
        let f = fixture(32);
        let (held, answers) = behind_a::<()>(
            &f.writer,
            vec![
                Box::new(|c| insert(c, "b")),
                // Deferred: checked only by the batch's COMMIT, which fails.
                Box::new(|c| Ok(c.batch_execute("INSERT INTO child (p) VALUES ('nobody')")?)),
            ],
        );
        // Every write of it, whoever broke the constraint, gets the same
        // internal error: no write answers for another's violation.
        assert!(
            matches!(held, Err(StoreError::Internal(_))),
            "the blocking write shared the batch: {held:?}"
        );
        for answer in answers {
            let answer = answer.blocking_recv().unwrap();
            assert!(matches!(answer, Err(StoreError::Internal(_))), "{answer:?}");
        }
        assert!(rows(&f.writer).is_empty());
        // The writer is usable afterwards.
        f.writer.write(|c| insert(c, "z")).unwrap();
        assert_eq!(rows(&f.writer), ["z"]);
    }

    #[test]
    fn a_blocking_write_that_panics_is_rolled_back_and_the_panic_is_its_callers() {
        let f = fixture(32);
        let mut answer = None;
        let writer = Arc::clone(&f.writer);
        let panicked = thread::scope(|s| {
            s.spawn(|| {
                writer.write(|c| -> Result<(), StoreError> {
                    answer = Some(writer.submit(|c| insert(c, "c")));
                    insert(c, "b")?;
                    panic!("the blocking write panics");
                })
            })
            .join()
        });
        assert!(panicked.is_err(), "the panic reaches the caller");
        answer.unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(rows(&f.writer), ["c"]);
    }

    #[test]
    fn a_panic_inside_a_nested_transaction_abandons_the_batch() {
        let f = fixture(32);
        let (held, answers) = behind_a::<()>(
            &f.writer,
            vec![Box::new(|c| {
                c.transaction::<(), StoreError, _>(|c| {
                    insert(c, "b")?;
                    panic!("inside a nested transaction");
                })
            })],
        );
        // The batch could not be told apart from the job's leftovers: all
        // of it was rolled back, and every write of it told so.
        assert!(held.is_err());
        for answer in answers {
            assert!(answer.blocking_recv().unwrap().is_err());
        }
        assert!(rows(&f.writer).is_empty());
        f.writer.write(|c| insert(c, "z")).unwrap();
        assert_eq!(rows(&f.writer), ["z"]);
    }

    #[test]
    fn nested_transactions_inside_a_write_work() {
        let f = fixture(32);
        f.writer
            .write(|c| {
                insert(c, "b")?;
                let undone = c.transaction::<(), StoreError, _>(|c| {
                    insert(c, "b-undone")?;
                    Err(StoreError::Conflict("undo".into()))
                });
                assert!(undone.is_err());
                c.transaction::<(), StoreError, _>(|c| insert(c, "b-kept"))
            })
            .unwrap();
        assert_eq!(rows(&f.writer), ["b", "b-kept"]);
    }

    #[test]
    fn batches_stop_at_the_job_limit() {
        let f = fixture(2);
        let (path_b, path_c) = (f.path.clone(), f.path.clone());
        let (held, answers) = behind_a::<()>(
            &f.writer,
            vec![
                Box::new(move |c| {
                    assert!(committed(&path_b).is_empty(), "b shares a's batch");
                    insert(c, "b")
                }),
                Box::new(move |c| {
                    assert_eq!(committed(&path_c), ["a", "b"], "c begins the next one");
                    insert(c, "c")
                }),
                Box::new(|c| insert(c, "d")),
            ],
        );
        held.unwrap();
        for answer in answers {
            answer.blocking_recv().unwrap().unwrap();
        }
        assert_eq!(rows(&f.writer), ["a", "b", "c", "d"]);
    }

    #[test]
    fn writes_from_many_threads_are_committed_when_answered() {
        let f = fixture(MAX_BATCH_JOBS);
        thread::scope(|s| {
            for t in 0..8 {
                let (writer, path) = (&f.writer, &f.path);
                s.spawn(move || {
                    let mut reader = diesel::SqliteConnection::establish(path).unwrap();
                    for i in 0..50 {
                        let x = format!("{t}-{i}");
                        if i % 2 == 0 {
                            writer.write(|c| insert(c, &x)).unwrap();
                        } else {
                            let mine = x.clone();
                            let answer = writer.submit(move |c| insert(c, &mine));
                            answer.blocking_recv().unwrap().unwrap();
                        }
                        let seen: Vec<Row> = diesel::sql_query("SELECT x FROM t WHERE x = ?")
                            .bind::<diesel::sql_types::Text, _>(&x)
                            .load(&mut reader)
                            .unwrap();
                        assert_eq!(seen.len(), 1, "{x} not visible once answered");
                    }
                });
            }
        });
        assert_eq!(rows(&f.writer).len(), 400);
    }

    #[test]
    fn a_blocking_write_waits_only_for_what_was_queued_before_it() {
        let f = fixture(32);
        let before: Vec<_> = (0..200)
            .map(|i| f.writer.submit(move |c| insert(c, &format!("q{i:03}"))))
            .collect();
        let mut after = None;
        f.writer
            .write(|c| {
                after = Some(f.writer.submit(|c| insert(c, "after")));
                insert(c, "blocking")
            })
            .unwrap();
        for mut answer in before {
            answer.try_recv().unwrap().unwrap();
        }
        after.unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(rows(&f.writer).len(), 202);
    }

    #[test]
    fn a_write_inside_a_write_is_refused() {
        let f = fixture(32);
        let r = f.writer.write(|c| {
            insert(c, "outer")?;
            f.writer.write(|c| insert(c, "inner"))
        });
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        let writer = Arc::clone(&f.writer);
        let r = f
            .writer
            .submit(move |c| {
                insert(c, "queued")?;
                writer.write(|c| insert(c, "inner"))
            })
            .blocking_recv()
            .unwrap();
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(rows(&f.writer).is_empty());
        f.writer.write(|c| insert(c, "after")).unwrap();
        assert_eq!(rows(&f.writer), ["after"]);
    }

    #[test]
    fn exclusive_runs_outside_any_transaction_once_the_batch_committed() {
        let f = fixture(32);
        let mut answer = None;
        f.writer
            .write(|c| {
                insert(c, "a")?;
                answer = Some(f.writer.submit(|c| insert(c, "b")));
                Ok(())
            })
            .unwrap();
        let depth = f.writer.exclusive(|c| Ok(depth(c))).unwrap();
        assert_eq!(depth, None);
        answer.unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(committed(&f.path), ["a", "b"]);
    }
}
