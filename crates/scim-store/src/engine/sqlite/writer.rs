//! Group commit on SQLite's single writer connection.
//!
//! Every SQLite write goes through one connection (`engine/mod.rs`), so the
//! writer's critical section sets the write rate, and much of it is
//! appending each commit's dirtied pages to the WAL (a user write dirties
//! pages all over the indexes; docs/BENCHMARKS.md). Writes that
//! queue up behind each other therefore share one transaction: pages that
//! several of them dirty (index interior pages, the `user_values` leaves)
//! are written to the WAL once per batch instead of once per request.
//!
//! Writes arrive two ways, and both share the batches:
//!
//! - **Queued** ([`WriteQueue::submit`], `Store::queue_write`): the
//!   request handlers' writes, closures that own what they need. A
//!   dedicated writer thread ([`GroupCommitWriter::serve`]) takes them off
//!   a channel and runs them back to back in the open batch; once the
//!   channel is empty (or the batch full) it commits, and each job's reply
//!   goes out with the batch's outcome. No thread waits for another to
//!   wake up between two jobs. When a blocking writer waits for the mutex,
//!   the writer thread lets it in after the job it is running and waits
//!   (on `turn_taken`) until it has had its turn, so that a steady stream
//!   of requests cannot starve an administrator's write, however busy the
//!   machine. Queued writes pay no thread wake-up between two jobs
//!   (docs/BENCHMARKS.md).
//! - **Blocking** ([`GroupCommitWriter::run`], `Store::write`): any closure,
//!   borrowing the caller's stack, run on the caller's thread. Leader and
//!   follower on the writer mutex:
//!   - `run` takes the mutex (counting itself in `waiting` until it has
//!     it; so does the writer thread). With no batch open it begins one
//!     with `BEGIN IMMEDIATE`.
//!   - It runs its closure inside a savepoint (Diesel's nested
//!     transaction, depth 2): released on `Ok`, rolled back on `Err`, so a
//!     failed job leaves nothing behind and does not affect the others of
//!     its batch. Queued jobs run the same way.
//!   - Then, if other writers are queued on the mutex and the batch is
//!     below [`MAX_BATCH_JOBS`] and [`MAX_BATCH_AGE`], it leaves the
//!     transaction open, releases the mutex and waits on the batch's
//!     `Outcome` (its own lock, so a long drain by the writer thread, which
//!     holds the mutex, does not keep it waiting once its batch
//!     committed) until its batch is finished; otherwise it commits and
//!     wakes the batch's waiters. A waiting writer always has a successor:
//!     the one it saw queued takes the mutex next and joins the batch, and
//!     the last one commits. The writer thread, after a drain, follows the
//!     same rule.
//!
//! Either way a write is answered only once its batch committed
//! (read-your-writes). If the `COMMIT` fails, or the savepoint machinery
//! does, the whole batch is rolled back and every job of it fails.
//!
//! A panicking closure is caught: its savepoint is rolled back (or, if it
//! left Diesel's transaction depth elsewhere, the whole batch). A blocking
//! writer's batch is then committed or failed right away and the panic
//! resumes in the caller; a queued job answers `StoreError::Internal` and
//! the batch goes on. The mutex is never left poisoned or the transaction
//! open.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::Connection;

use crate::db::connection::{ConnectionManager, DbConnection};
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
    /// Set while this thread runs a write closure: a nested `Store::write`
    /// would wait for the mutex its own thread holds.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// The single SQLite writer, shared by every clone of the `Store`.
pub(crate) struct GroupCommitWriter {
    /// A pool of one: it opens (and, after a failure, reopens) the writer
    /// connection, which is otherwise kept in `state` for good.
    pool: Pool,
    state: Mutex<WriterState>,
    /// Signalled when a batch is finished (committed or failed).
    finished: Condvar,
    /// Writers between "wants the mutex" and "has it".
    waiting: AtomicUsize,
    /// Signalled when a waiting writer took the mutex
    /// ([`WriterState::turns`]).
    turn_taken: Condvar,
    max_jobs: usize,
    max_age: Duration,
    /// Batches committed so far (each one `COMMIT`).
    commits: AtomicUsize,
    /// Set by the checkpointer when the WAL should start over: the next
    /// batch first runs a RESTART checkpoint (`engine/sqlite/checkpoint.rs`).
    restart_wal: Arc<AtomicBool>,
}

#[derive(Default)]
pub(crate) struct WriterState {
    conn: Option<PooledConnection>,
    batch: Option<Batch>,
    /// How many times a waiting writer has taken the mutex: the queue's
    /// thread, having let a blocking writer in, waits for this to move.
    turns: u64,
}

/// The open transaction and its jobs so far.
struct Batch {
    outcome: Arc<Outcome>,
    jobs: usize,
    started: Instant,
    /// The replies of the batch's queued jobs, sent once it ends.
    replies: Vec<Reply>,
}

/// Sends a queued job's result, given how its batch ended.
type Reply = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

/// A write queued by [`GroupCommitWriter::submit`], run by the writer
/// thread ([`GroupCommitWriter::serve`]).
pub(crate) trait QueuedJob: Send {
    /// Runs the job in a savepoint of the open batch; returns its reply
    /// and, if the batch must be rolled back entirely, why.
    fn run(self: Box<Self>, state: &mut WriterState) -> (Reply, Option<StoreError>);
    /// Answers the job with `error` without running it.
    fn reject(self: Box<Self>, error: StoreError);
}

/// A queued closure and where its result goes.
struct Queued<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> QueuedJob for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, state: &mut WriterState) -> (Reply, Option<StoreError>) {
        let Queued { f, reply } = *self;
        let (result, abandon) = match run_job(state, f) {
            JobEnd::Done(result) => (result, None),
            JobEnd::Panicked(payload) => {
                tracing::error!(panic = panic_message(&*payload), "a queued write panicked");
                (Err(panicked()), None)
            }
            JobEnd::Abandoned { cause, panic } => {
                let result = Err(if panic.is_some() {
                    panicked()
                } else {
                    duplicate(&cause)
                });
                (result, Some(cause))
            }
        };
        let send: Reply = Box::new(move |batch: &Result<(), StoreError>| {
            let result = match batch {
                Ok(()) => result,
                // A job that failed by itself keeps its own error.
                Err(e) => result.and_then(|_| Err(duplicate(e))),
            };
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

/// The text of a panic's payload, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// What a queued job whose closure panicked answers (the panic itself was
/// caught on the writer thread and is logged there).
fn panicked() -> StoreError {
    StoreError::Internal("the write failed unexpectedly (it panicked)".to_owned())
}

/// How a batch ended: set once, under the writer mutex, before `finished`
/// is signalled. A failure carries the error every job of the batch
/// returns. A blocking writer waits for it on the outcome's own lock, not
/// on the writer mutex: the queue's thread may hold that one for a long
/// drain, and a writer whose batch committed must not wait for the drain
/// to end before it returns.
#[derive(Default)]
struct Outcome {
    result: OnceLock<Result<(), StoreError>>,
    lock: Mutex<()>,
    set: Condvar,
}

impl Outcome {
    fn finish(&self, result: Result<(), StoreError>) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.result.set(result);
        self.set.notify_all();
    }

    fn wait(&self) -> Result<(), StoreError> {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _guard = self
            .set
            .wait_while(guard, |_| self.result.get().is_none())
            .unwrap_or_else(PoisonError::into_inner);
        match self.result.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(duplicate(e)),
            None => Err(StoreError::Internal(
                "the write batch ended without an outcome".to_owned(),
            )),
        }
    }
}

/// What happened to one job inside the batch.
enum JobEnd<T> {
    /// The job's savepoint is closed (released or rolled back); `result`
    /// is what the job returned, final once the batch commits.
    Done(Result<T, StoreError>),
    /// The job panicked after its savepoint was rolled back.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The job's savepoint could not be closed, or the job left Diesel's
    /// transaction depth elsewhere (a panic inside its own
    /// `conn.transaction(…)`): the batch must be rolled back entirely.
    Abandoned {
        cause: StoreError,
        panic: Option<Box<dyn Any + Send + 'static>>,
    },
}

impl GroupCommitWriter {
    pub(crate) fn new(pool: Pool) -> Self {
        Self::with_limits(pool, MAX_BATCH_JOBS, MAX_BATCH_AGE)
    }

    fn with_limits(pool: Pool, max_jobs: usize, max_age: Duration) -> Self {
        GroupCommitWriter {
            pool,
            state: Mutex::new(WriterState::default()),
            finished: Condvar::new(),
            waiting: AtomicUsize::new(0),
            turn_taken: Condvar::new(),
            max_jobs,
            max_age,
            commits: AtomicUsize::new(0),
            restart_wal: Arc::default(),
        }
    }

    /// The flag through which the checkpointer asks for a WAL restart.
    pub(crate) fn restart_wal_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.restart_wal)
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // Nothing panics while the mutex is held (closures run under
        // `catch_unwind`), and the state is consistent between statements
        // anyway: never let a poison wedge the writer.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the mutex as a writer: counted in `waiting` until it has it,
    /// then a turn taken (which wakes a queue thread that let it in).
    fn take_turn(&self) -> MutexGuard<'_, WriterState> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut state = self.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        state.turns = state.turns.wrapping_add(1);
        self.turn_taken.notify_all();
        state
    }

    /// Runs `f` on the writer connection with no transaction open (e.g.
    /// migrations, which manage their own), after any open batch finished.
    pub(crate) fn exclusive<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.lock();
        while state.batch.is_some() {
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let conn = self.connection(&mut state)?;
        let result = f(conn);
        if conn.is_broken() {
            state.conn = None;
        }
        result
    }

    fn connection<'s>(
        &self,
        state: &'s mut WriterState,
    ) -> Result<&'s mut PooledConnection, StoreError> {
        if state.conn.is_none() {
            state.conn = Some(self.pool.get()?);
        }
        state
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Internal("the writer connection was lost".to_owned()))
    }

    /// Runs `f` as one job of the current batch (see the module docs).
    pub(crate) fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    {
        if IN_JOB.with(Cell::get) {
            // As the pool checkout it replaces would have timed out: the
            // one write connection is busy (with this very thread).
            tracing::error!("Store::write called inside a write closure");
            return Err(StoreError::Unavailable(
                "the write connection is held by this thread's own write".to_owned(),
            ));
        }
        let mut state = self.take_turn();

        if state.batch.is_none() {
            self.begin_batch(&mut state)?;
        }
        let outcome = match &mut state.batch {
            Some(batch) => {
                batch.jobs += 1;
                Arc::clone(&batch.outcome)
            }
            None => return Err(StoreError::Internal("no write batch open".to_owned())),
        };

        match run_job(&mut state, f) {
            JobEnd::Abandoned { cause, panic } => {
                // The batch's transaction is in an unknown state: undo all
                // of it.
                self.fail_batch(&mut state, &cause);
                drop(state);
                match panic {
                    Some(payload) => resume_unwind(payload),
                    None => Err(cause),
                }
            }
            JobEnd::Panicked(payload) => {
                self.commit_batch(&mut state);
                drop(state);
                resume_unwind(payload)
            }
            JobEnd::Done(result) => {
                let join_more = state.batch.as_ref().is_some_and(|b| self.has_room(b))
                    && self.waiting.load(Ordering::SeqCst) > 0;
                if !join_more {
                    self.commit_batch(&mut state);
                }
                drop(state);
                match outcome.wait() {
                    Ok(()) => result,
                    // A job that failed by itself keeps its own error.
                    Err(e) => result.and_then(|_| Err(e)),
                }
            }
        }
    }

    /// The writer thread's loop: takes queued jobs as they come and runs
    /// them back to back in the open batch, so that a job's turn never
    /// waits for another thread to wake up. Once the queue is empty (or the
    /// batch full) it commits, which sends every reply of the batch. A
    /// blocking writer ([`GroupCommitWriter::run`]) takes its turn on the
    /// mutex between two drains and may join or end the batch, as with any
    /// other writer. Returns when the queue's sender is dropped.
    fn serve(&self, queue: &mpsc::Receiver<Box<dyn QueuedJob>>) {
        while let Ok(first) = queue.recv() {
            let mut state = self.take_turn();
            let mut next = Some(first);
            let mut let_in = false;
            while let Some(job) = next {
                self.run_queued(&mut state, job);
                if state.batch.as_ref().is_some_and(|b| !self.has_room(b)) {
                    self.commit_batch(&mut state);
                }
                // A blocking writer waits for the mutex: let it in now
                // rather than after the queue ran dry, which under a
                // steady stream of requests might be never.
                if self.waiting.load(Ordering::SeqCst) > 0 {
                    let_in = true;
                    break;
                }
                next = queue.try_recv().ok();
            }
            // Nothing queued (or a blocking writer waits): commit, unless
            // a blocking writer is about to join (it, or the last one
            // after it, commits).
            let join_more = state.batch.as_ref().is_some_and(|b| self.has_room(b))
                && self.waiting.load(Ordering::SeqCst) > 0;
            if !join_more {
                self.commit_batch(&mut state);
            }
            drop(state);
            if let_in {
                // The mutex is not fair: give the woken writer a chance to
                // take it before this thread comes back for the next job.
                std::thread::yield_now();
            }
        }
    }

    /// Whether `batch` may take another job.
    fn has_room(&self, batch: &Batch) -> bool {
        batch.jobs < self.max_jobs && batch.started.elapsed() < self.max_age
    }

    /// Runs one queued job in the open batch (beginning one if needed).
    fn run_queued(&self, state: &mut WriterState, job: Box<dyn QueuedJob>) {
        if state.batch.is_none() {
            if let Err(e) = self.begin_batch(state) {
                job.reject(e);
                return;
            }
        }
        let (reply, abandon) = job.run(state);
        match &mut state.batch {
            Some(batch) => {
                batch.jobs += 1;
                batch.replies.push(reply);
            }
            None => reply(&Err(StoreError::Internal(
                "the write batch ended without an outcome".to_owned(),
            ))),
        }
        if let Some(cause) = abandon {
            self.fail_batch(state, &cause);
        }
    }

    fn begin_batch(&self, state: &mut WriterState) -> Result<(), StoreError> {
        let conn = self.connection(state)?;
        if self.restart_wal.swap(false, Ordering::Relaxed) {
            restart_wal(conn);
        }
        let begun = match &mut **conn {
            // IMMEDIATE takes the write lock up front, so a read followed by
            // a write cannot fail with SQLITE_BUSY on the upgrade.
            DbConnection::Sqlite(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
            DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
        };
        if let Err(e) = begun {
            if conn.is_broken() {
                state.conn = None;
            }
            return Err(e.into());
        }
        state.batch = Some(Batch {
            outcome: Arc::default(),
            jobs: 0,
            started: Instant::now(),
            replies: Vec::new(),
        });
        Ok(())
    }

    /// Commits the open batch and wakes its waiters; a failed `COMMIT`
    /// (which Diesel follows with a `ROLLBACK`) fails every job of it.
    fn commit_batch(&self, state: &mut WriterState) {
        let Some(batch) = state.batch.take() else {
            return;
        };
        let committed = match &mut state.conn {
            Some(conn) => {
                let r = Tm::commit_transaction(conn).map_err(StoreError::from);
                if conn.is_broken() {
                    state.conn = None;
                }
                r
            }
            None => Err(StoreError::Internal(
                "the writer connection was lost".to_owned(),
            )),
        };
        if committed.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.jobs, "committing a write batch failed");
        }
        for reply in batch.replies {
            reply(&committed);
        }
        batch.outcome.finish(committed);
        self.finished.notify_all();
    }

    /// Rolls the open batch back entirely and fails every job of it with
    /// `cause`.
    fn fail_batch(&self, state: &mut WriterState, cause: &StoreError) {
        let Some(batch) = state.batch.take() else {
            return;
        };
        if let Some(conn) = &mut state.conn {
            if !rollback_all(conn) {
                // Dropping the connection is the rollback of last resort:
                // SQLite discards an open transaction on close, and r2d2
                // discards a connection whose transaction state is broken.
                state.conn = None;
            }
        }
        tracing::error!(error = %cause, jobs = batch.jobs, "a write batch was rolled back");
        let failed = Err(duplicate(cause));
        for reply in batch.replies {
            reply(&failed);
        }
        batch.outcome.finish(failed);
        self.finished.notify_all();
    }
}

/// Runs a RESTART checkpoint on the writer connection, between batches,
/// when the checkpointer asked for one (`engine/sqlite/checkpoint.rs`): the writer holds
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
        Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "WAL restarted"),
        Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed"),
    }
}

/// Runs `f` in a savepoint on the batch's connection.
fn run_job<T, F>(state: &mut WriterState, f: F) -> JobEnd<T>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
{
    let abandon = |cause: StoreError, panic| JobEnd::Abandoned { cause, panic };
    let Some(conn) = state.conn.as_deref_mut() else {
        let lost = StoreError::Internal("the writer connection was lost".to_owned());
        return abandon(lost, None);
    };
    if let Err(e) = Tm::begin_transaction(conn) {
        return abandon(e.into(), None);
    }
    let expected = depth(conn);
    let ran = {
        let _flag = InJob::set();
        catch_unwind(AssertUnwindSafe(|| f(&mut *conn)))
    };
    // A closure that returned normally closed whatever it opened; after a
    // panic inside its own `conn.transaction(…)` the depth is off, and the
    // savepoint no longer identifies the job's work.
    if depth(conn) != expected {
        let cause = StoreError::Internal("a write closure left a transaction open".to_owned());
        return abandon(cause, ran.err());
    }
    match ran {
        Ok(Ok(value)) => match Tm::commit_transaction(conn) {
            Ok(()) => JobEnd::Done(Ok(value)),
            Err(e) => abandon(e.into(), None),
        },
        Ok(Err(job_error)) => match Tm::rollback_transaction(conn) {
            Ok(()) => JobEnd::Done(Err(job_error)),
            Err(e) => abandon(e.into(), None),
        },
        Err(payload) => match Tm::rollback_transaction(conn) {
            Ok(()) => JobEnd::Panicked(payload),
            Err(e) => abandon(e.into(), Some(payload)),
        },
    }
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

/// The error a failed batch gives each of its jobs: the cause itself when
/// the database failed (unavailable, internal), else a generic internal
/// error, since the cause belongs to one job, not to the others whose
/// writes it rolled back. The cause's source was logged once, by the
/// writer that saw it.
fn duplicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
        _ => StoreError::Internal("the write batch was not committed".to_owned()),
    }
}

/// The queue in front of the writer thread ([`GroupCommitWriter::serve`]).
/// Dropping it closes the queue: the thread runs what was queued, commits,
/// and exits (it is not joined, so the last `Store` may be dropped
/// anywhere, the writer thread included).
pub(crate) struct WriteQueue {
    sender: mpsc::Sender<Box<dyn QueuedJob>>,
}

impl WriteQueue {
    /// Starts the writer thread of `writer`.
    pub(crate) fn start(writer: Arc<GroupCommitWriter>) -> Result<WriteQueue, StoreError> {
        let (sender, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || writer.serve(&queue))
            .map_err(|e| StoreError::internal("cannot start the SQLite writer thread", &e))?;
        Ok(WriteQueue { sender })
    }

    /// Queues `f`; the receiver gets its result once its batch ended.
    pub(crate) fn submit<T, F>(&self, f: F) -> tokio::sync::oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        self.submit_to(f, reply);
        receiver
    }

    /// Queues `f`; `reply` gets its result once its batch ended.
    pub(crate) fn submit_to<T, F>(
        &self,
        f: F,
        reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    ) where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Err(mpsc::SendError(job)) = self.sender.send(Box::new(Queued { f, reply })) {
            job.reject(StoreError::Unavailable(
                "the SQLite writer thread has stopped".to_owned(),
            ));
        }
    }
}

/// Marks this thread as running a write closure until dropped.
struct InJob;

impl InJob {
    fn set() -> InJob {
        IN_JOB.with(|c| c.set(true));
        InJob
    }
}

impl Drop for InJob {
    fn drop(&mut self) {
        IN_JOB.with(|c| c.set(false));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;

    use crate::db::connection::Target;

    type Job<T> = Box<dyn FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send>;
    type Handle<T> = thread::JoinHandle<Result<T, StoreError>>;

    struct Fixture {
        writer: Arc<GroupCommitWriter>,
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
        let writer = Arc::new(GroupCommitWriter::with_limits(
            pool,
            max_jobs,
            Duration::from_secs(60),
        ));
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
            writer,
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

    fn rows(writer: &GroupCommitWriter) -> Vec<String> {
        writer
            .exclusive(|c| {
                let rows: Vec<Row> = diesel::sql_query("SELECT x FROM t ORDER BY x").load(c)?;
                Ok(rows.into_iter().map(|r| r.x).collect())
            })
            .unwrap()
    }

    /// Starts a job that inserts "a", then holds the writer (and its open
    /// batch) until `queued` other writers wait for it, so that they all
    /// join its batch; then starts `jobs` one by one, each once the
    /// previous one queued.
    fn batch_of<T: Send + 'static>(
        writer: &Arc<GroupCommitWriter>,
        jobs: Vec<Job<T>>,
    ) -> (Handle<()>, Vec<Handle<T>>) {
        let queued = jobs.len();
        let (inside, leader_inside) = mpsc::channel();
        let w = Arc::clone(writer);
        let leader = thread::spawn(move || {
            w.run(|c| {
                insert(c, "a")?;
                inside.send(()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                while w.waiting.load(Ordering::SeqCst) < queued {
                    assert!(Instant::now() < deadline, "the other writers never queued");
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            })
        });
        leader_inside.recv().unwrap();
        let mut handles = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            let w = Arc::clone(writer);
            handles.push(thread::spawn(move || w.run(job)));
            // Queue them in order, so the last one started commits (once
            // it queued, the leader lets go: only wait for the others).
            let deadline = Instant::now() + Duration::from_secs(20);
            while i + 1 < queued && writer.waiting.load(Ordering::SeqCst) < i + 1 {
                assert!(Instant::now() < deadline, "a writer never queued");
                thread::sleep(Duration::from_millis(1));
            }
        }
        (leader, handles)
    }

    #[test]
    fn a_failing_job_rolls_back_only_its_own_changes() {
        let f = fixture(32);
        let jobs: Vec<Job<()>> = vec![
            Box::new(|c| insert(c, "b")),
            Box::new(|c| {
                insert(c, "c1")?;
                insert(c, "c2")?;
                Err(StoreError::Conflict("this job gives up".into()))
            }),
            // A database error (the duplicate) undoes the job's first insert.
            Box::new(|c| {
                insert(c, "d1")?;
                insert(c, "a")
            }),
            Box::new(|c| insert(c, "e")),
        ];
        let (leader, handles) = batch_of(&f.writer, jobs);
        leader.join().unwrap().unwrap();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(StoreError::Conflict(m)) if m == "this job gives up"));
        assert!(matches!(results[2], Err(StoreError::Conflict(_))));
        assert!(results[3].is_ok());
        assert_eq!(rows(&f.writer), ["a", "b", "e"]);
        assert_eq!(f.writer.commits.load(Ordering::Relaxed), 1, "one batch");
    }

    #[test]
    fn a_failed_commit_fails_every_job_of_the_batch() {
        let f = fixture(32);
        let jobs: Vec<Job<()>> = vec![
            Box::new(|c| insert(c, "b")),
            // Deferred: checked only by the batch's COMMIT, which fails.
            Box::new(|c| {
                c.batch_execute("INSERT INTO child (p) VALUES ('nobody')")?;
                Ok(())
            }),
            Box::new(|c| insert(c, "d")),
        ];
        let (leader, handles) = batch_of(&f.writer, jobs);
        assert!(leader.join().unwrap().is_err());
        for h in handles {
            assert!(h.join().unwrap().is_err());
        }
        assert!(rows(&f.writer).is_empty());
        // The writer is usable afterwards.
        f.writer.run(|c| insert(c, "z")).unwrap();
        assert_eq!(rows(&f.writer), ["z"]);
    }

    #[test]
    fn a_panicking_job_does_not_wedge_the_writer() {
        let f = fixture(32);
        let jobs: Vec<Job<()>> = vec![
            Box::new(|c| {
                insert(c, "b")?;
                panic!("job b panics");
            }),
            Box::new(|c| insert(c, "c")),
        ];
        let (leader, mut handles) = batch_of(&f.writer, jobs);
        let c = handles.pop().unwrap();
        let b = handles.pop().unwrap();
        assert!(b.join().is_err(), "the panic reaches the caller");
        leader.join().unwrap().unwrap();
        c.join().unwrap().unwrap();
        assert_eq!(rows(&f.writer), ["a", "c"]);
        f.writer.run(|c| insert(c, "d")).unwrap();
        assert_eq!(rows(&f.writer), ["a", "c", "d"]);
    }

    #[test]
    fn a_panic_inside_a_nested_transaction_abandons_the_batch() {
        let f = fixture(32);
        let jobs: Vec<Job<()>> = vec![Box::new(|c| {
            c.transaction::<(), StoreError, _>(|c| {
                insert(c, "b")?;
                panic!("inside a nested transaction");
            })
        })];
        let (leader, handles) = batch_of(&f.writer, jobs);
        for h in handles {
            assert!(h.join().is_err(), "the panic reaches the caller");
        }
        // The leader's batch could not be told apart from the panicked
        // job's leftovers: it was rolled back, and the leader told so.
        assert!(leader.join().unwrap().is_err());
        assert!(rows(&f.writer).is_empty());
        f.writer.run(|c| insert(c, "z")).unwrap();
        assert_eq!(rows(&f.writer), ["z"]);
    }

    #[test]
    fn nested_transactions_inside_a_job_work() {
        let f = fixture(32);
        let jobs: Vec<Job<()>> = vec![Box::new(|c| {
            insert(c, "b")?;
            let undone = c.transaction::<(), StoreError, _>(|c| {
                insert(c, "b-undone")?;
                Err(StoreError::Conflict("undo".into()))
            });
            assert!(undone.is_err());
            c.transaction::<(), StoreError, _>(|c| insert(c, "b-kept"))?;
            Ok(())
        })];
        let (leader, handles) = batch_of(&f.writer, jobs);
        leader.join().unwrap().unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(rows(&f.writer), ["a", "b", "b-kept"]);
    }

    #[test]
    fn batches_stop_at_the_job_limit() {
        let f = fixture(2);
        let jobs: Vec<Job<()>> = vec![
            Box::new(|c| insert(c, "b")),
            Box::new(|c| insert(c, "c")),
            Box::new(|c| insert(c, "d")),
        ];
        let (leader, handles) = batch_of(&f.writer, jobs);
        leader.join().unwrap().unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(rows(&f.writer), ["a", "b", "c", "d"]);
        assert_eq!(f.writer.commits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn concurrent_writers_share_commits_and_see_their_rows() {
        let f = fixture(MAX_BATCH_JOBS);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let w = Arc::clone(&f.writer);
                let path = f.path.clone();
                thread::spawn(move || {
                    let mut reader = diesel::SqliteConnection::establish(&path).unwrap();
                    for i in 0..50 {
                        let x = format!("{t}-{i}");
                        w.run(|c| insert(c, &x)).unwrap();
                        // Committed on return: another connection sees it.
                        let seen: Vec<Row> = diesel::sql_query("SELECT x FROM t WHERE x = ?")
                            .bind::<diesel::sql_types::Text, _>(&x)
                            .load(&mut reader)
                            .unwrap();
                        assert_eq!(seen.len(), 1, "{x} not visible after write returned");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(rows(&f.writer).len(), 400);
        let commits = f.writer.commits.load(Ordering::Relaxed);
        assert!(commits < 400, "{commits} commits for 400 writes");
    }

    type Answer<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;

    /// Queues `jobs` for the writer thread while a blocking job (inserting
    /// "a") holds the batch open; it lets go once the writer thread waits
    /// for the mutex, which then runs all of `jobs` in that batch.
    fn queued_batch<T: Send + 'static>(
        writer: &Arc<GroupCommitWriter>,
        queue: &WriteQueue,
        jobs: Vec<Job<T>>,
    ) -> (Handle<()>, Vec<Answer<T>>) {
        let (inside, leader_inside) = mpsc::channel();
        let (queued, all_queued) = mpsc::channel::<()>();
        let w = Arc::clone(writer);
        let leader = thread::spawn(move || {
            w.run(|c| {
                insert(c, "a")?;
                inside.send(()).unwrap();
                all_queued.recv().unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                while w.waiting.load(Ordering::SeqCst) == 0 {
                    assert!(Instant::now() < deadline, "the writer thread never queued");
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            })
        });
        leader_inside.recv().unwrap();
        let answers = jobs.into_iter().map(|job| queue.submit(job)).collect();
        queued.send(()).unwrap();
        (leader, answers)
    }

    #[test]
    fn queued_jobs_share_the_batch_and_answer_once_it_committed() {
        let f = fixture(32);
        let queue = WriteQueue::start(Arc::clone(&f.writer)).unwrap();
        let jobs: Vec<Job<String>> = vec![
            Box::new(|c| insert(c, "b").map(|()| "b".to_owned())),
            Box::new(|c| {
                insert(c, "c1")?;
                Err(StoreError::Conflict("this job gives up".into()))
            }),
            Box::new(|c| {
                insert(c, "d")?;
                panic!("job d panics");
            }),
            Box::new(|c| insert(c, "e").map(|()| "e".to_owned())),
        ];
        let (leader, answers) = queued_batch(&f.writer, &queue, jobs);
        leader.join().unwrap().unwrap();
        let results: Vec<_> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap())
            .collect();
        assert_eq!(results[0].as_deref().unwrap(), "b");
        assert!(matches!(&results[1], Err(StoreError::Conflict(m)) if m == "this job gives up"));
        assert!(matches!(&results[2], Err(StoreError::Internal(_))));
        assert_eq!(results[3].as_deref().unwrap(), "e");
        assert_eq!(rows(&f.writer), ["a", "b", "e"]);
        assert_eq!(f.writer.commits.load(Ordering::Relaxed), 1, "one batch");
        // The writer thread goes on serving.
        let answer = queue.submit(|c| insert(c, "f"));
        answer.blocking_recv().unwrap().unwrap();
        assert_eq!(rows(&f.writer), ["a", "b", "e", "f"]);
    }

    #[test]
    fn a_failed_commit_fails_the_queued_jobs_of_the_batch() {
        let f = fixture(32);
        let queue = WriteQueue::start(Arc::clone(&f.writer)).unwrap();
        let jobs: Vec<Job<()>> = vec![
            Box::new(|c| insert(c, "b")),
            Box::new(|c| {
                c.batch_execute("INSERT INTO child (p) VALUES ('nobody')")?;
                Ok(())
            }),
        ];
        let (leader, answers) = queued_batch(&f.writer, &queue, jobs);
        // The writer thread's drain ends the batch, so the leader learns
        // of the failed COMMIT as well.
        assert!(leader.join().unwrap().is_err());
        for answer in answers {
            assert!(answer.blocking_recv().unwrap().is_err());
        }
        assert!(rows(&f.writer).is_empty());
        queue
            .submit(|c| insert(c, "z"))
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(rows(&f.writer), ["z"]);
    }

    #[test]
    fn queued_writes_from_many_threads_are_committed_on_answer() {
        let f = fixture(MAX_BATCH_JOBS);
        let queue = Arc::new(WriteQueue::start(Arc::clone(&f.writer)).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let queue = Arc::clone(&queue);
                let path = f.path.clone();
                thread::spawn(move || {
                    let mut reader = diesel::SqliteConnection::establish(&path).unwrap();
                    for i in 0..50 {
                        let x = format!("{t}-{i}");
                        let mine = x.clone();
                        queue
                            .submit(move |c| insert(c, &mine))
                            .blocking_recv()
                            .unwrap()
                            .unwrap();
                        let seen: Vec<Row> = diesel::sql_query("SELECT x FROM t WHERE x = ?")
                            .bind::<diesel::sql_types::Text, _>(&x)
                            .load(&mut reader)
                            .unwrap();
                        assert_eq!(seen.len(), 1, "{x} not visible after its answer");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(rows(&f.writer).len(), 400);
        let commits = f.writer.commits.load(Ordering::Relaxed);
        assert!(commits < 400, "{commits} commits for 400 writes");
    }

    #[test]
    fn a_blocking_write_gets_in_while_queued_writes_keep_coming() {
        let f = fixture(32);
        let queue = WriteQueue::start(Arc::clone(&f.writer)).unwrap();
        // About a second of queued work.
        let answers: Vec<_> = (0..5000)
            .map(|i| {
                queue.submit(move |c| {
                    thread::sleep(Duration::from_micros(200));
                    insert(c, &format!("q{i:05}"))
                })
            })
            .collect();
        f.writer.run(|c| insert(c, "blocking")).unwrap();
        let mut last = answers.into_iter().last().unwrap();
        assert!(
            last.try_recv().is_err(),
            "the blocking write waited for the whole queue"
        );
        last.blocking_recv().unwrap().unwrap();
        assert_eq!(rows(&f.writer).len(), 5001);
    }

    #[test]
    fn a_blocking_write_that_the_queue_joined_returns_before_the_drain_ends() {
        let f = fixture(32);
        let queue = WriteQueue::start(Arc::clone(&f.writer)).unwrap();
        let w = Arc::clone(&f.writer);
        let mut answers = Vec::new();
        f.writer
            .run(|c| {
                insert(c, "blocking")?;
                // About a second of queued work, and the queue's thread
                // waiting for the mutex: this write leaves its batch open
                // for it, and the thread then drains the queue in batches
                // of 32 while holding the mutex.
                answers = (0..5000)
                    .map(|i| {
                        queue.submit(move |c| {
                            thread::sleep(Duration::from_micros(200));
                            insert(c, &format!("q{i:05}"))
                        })
                    })
                    .collect();
                while w.waiting.load(Ordering::SeqCst) == 0 {
                    thread::yield_now();
                }
                Ok(())
            })
            .unwrap();
        // Answered once its batch (with the first 31 queued jobs)
        // committed, not once the queue ran dry.
        let mut last = answers.pop().unwrap();
        assert!(
            last.try_recv().is_err(),
            "the blocking write waited for the whole queue"
        );
        last.blocking_recv().unwrap().unwrap();
        assert_eq!(rows(&f.writer).len(), 5001);
    }

    #[test]
    fn a_nested_write_is_refused() {
        let f = fixture(32);
        let w = Arc::clone(&f.writer);
        let r = f.writer.run(|c| {
            insert(c, "outer")?;
            w.run(|c| insert(c, "inner"))
        });
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        assert!(rows(&f.writer).is_empty());
        f.writer.run(|c| insert(c, "after")).unwrap();
        assert_eq!(rows(&f.writer), ["after"]);
    }
}
