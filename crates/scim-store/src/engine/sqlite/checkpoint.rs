//! The SQLite background checkpointer.
//!
//! Every connection runs with `wal_autocheckpoint = 0`, so no commit ever
//! checkpoints inside the single writer's critical section. Instead one
//! thread, on its own connection, keeps up with the writer:
//!
//! - Whenever the WAL file changed since its last look (every
//!   [`CheckpointPolicy::poll`]), and at least every
//!   [`CheckpointPolicy::interval`], it runs `PRAGMA wal_checkpoint(PASSIVE)`.
//!   PASSIVE never waits for the writer or readers: it copies the frames
//!   committed so far into the database file. Running it often keeps each
//!   round, and the frames left for later, small.
//! - PASSIVE syncs the database file only when it copied the WAL as it
//!   stands at its end, which a steady stream of writes never allows. So
//!   after each round that copied anything the thread syncs the database
//!   file itself: otherwise the copied pages stay dirty in the OS cache
//!   (over 100 MB within a second under load) for the next full checkpoint
//!   to flush.
//! - A WAL only starts over from its beginning when a write transaction
//!   begins with every frame copied, which a steady stream of writes never
//!   allows either (the writer appends while PASSIVE copies). When the
//!   frames in the WAL pass [`CheckpointPolicy::restart_above`] bytes, the
//!   thread asks the writer to run `wal_checkpoint(RESTART)` before its
//!   next batch (`engine/sqlite/writer.rs`): it copies the few frames PASSIVE had
//!   not, syncs, and the batch then writes from the start of the WAL.
//!   (Run from this thread, RESTART would have to win the write lock from
//!   a writer that retakes it at once.)
//! - Only if the WAL file passes [`CheckpointPolicy::truncate_above`]
//!   (restarts kept failing) does a `TRUNCATE` checkpoint shrink it.
//!
//! Before, the WAL grew to 64 MiB under load and a TRUNCATE checkpoint,
//! flushing every page copied since the last sync, stalled every write for
//! 0.5-0.7 s every couple of seconds (docs/BENCHMARKS.md).
//!
//! The thread stops when the last clone of the owning `Store` is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::Integer;
use diesel::QueryableByName;

use crate::db::connection::{ConnectionManager, DbConnection};
use crate::db::sql::{load, SqlBuilder};
use crate::error::StoreError;

/// When the checkpointer runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    /// A PASSIVE checkpoint at least this often.
    pub(crate) interval: Duration,
    /// How often the WAL file is looked at; a PASSIVE checkpoint follows
    /// whenever it changed.
    pub(crate) poll: Duration,
    /// Ask the writer for a RESTART checkpoint when the frames in the WAL
    /// (after a PASSIVE one) take more than this many bytes.
    pub(crate) restart_above: u64,
    /// A TRUNCATE checkpoint when the WAL file is larger than this.
    pub(crate) truncate_above: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            poll: Duration::from_millis(50),
            restart_above: 16 << 20,
            truncate_above: 96 << 20,
        }
    }
}

/// The running checkpointer; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints run so far (PASSIVE and TRUNCATE), for tests.
    #[cfg(test)]
    pub(crate) runs: Arc<Runs>,
    /// True while the thread is alive, for tests.
    #[cfg(test)]
    pub(crate) running: Arc<AtomicBool>,
    /// How the thread asks the writer to restart the WAL, for tests.
    #[cfg(test)]
    pub(crate) restart_wal: Arc<AtomicBool>,
}

/// The checkpoints a test's checkpointer has run, which the test waits for.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Runs {
    count: std::sync::Mutex<u64>,
    changed: std::sync::Condvar,
}

#[cfg(test)]
impl Runs {
    fn add(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count += 1;
        }
        self.changed.notify_all();
    }

    /// Waits until `n` checkpoints have run, for at most `limit`; returns
    /// how many have.
    pub(crate) fn wait_for(&self, n: u64, limit: Duration) -> u64 {
        let Ok(count) = self.count.lock() else {
            return 0;
        };
        match self.changed.wait_timeout_while(count, limit, |c| *c < n) {
            Ok((count, _)) => *count,
            Err(_) => 0,
        }
    }
}

#[derive(QueryableByName)]
struct CheckpointRow {
    #[diesel(sql_type = Integer)]
    busy: i32,
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Passive,
    Truncate,
}

impl Mode {
    /// The `mode` label of `scimd_sqlite_checkpoints_total`.
    fn label(self) -> &'static str {
        match self {
            Mode::Passive => "passive",
            Mode::Truncate => "truncate",
        }
    }
}

fn checkpoint(conn: &mut DbConnection, mode: Mode) -> Result<CheckpointRow, StoreError> {
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push(match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    });
    let rows: Vec<CheckpointRow> = load(conn, &b)?;
    rows.into_iter().next().ok_or_else(|| {
        StoreError::internal("wal_checkpoint returned no row", &format_args!("{mode:?}"))
    })
}

impl Checkpointer {
    /// Opens the checkpointer's connection and starts its thread.
    pub(crate) fn start(
        manager: &ConnectionManager,
        policy: CheckpointPolicy,
        restart_wal: Arc<AtomicBool>,
    ) -> Result<Checkpointer, StoreError> {
        #[cfg(test)]
        let asked = Arc::clone(&restart_wal);
        let Some(path) = manager.sqlite_path() else {
            return Err(StoreError::internal(
                "the checkpointer is for SQLite only",
                &"postgres",
            ));
        };
        let wal = PathBuf::from(format!("{path}-wal"));
        let db_file = std::fs::File::open(path).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open the SQLite database file to sync it: {e}"
            ))
        })?;
        let mut conn = manager.establish().map_err(|e| {
            StoreError::Unavailable(format!("cannot open the checkpointer's connection: {e}"))
        })?;
        // TRUNCATE waits for the writer through the busy handler; keep that
        // wait short so a busy writer makes the checkpointer retry later
        // rather than stall.
        conn.batch_execute("PRAGMA busy_timeout = 200")?;
        // A WAL frame is a page plus its 24-byte header.
        let frame_bytes = {
            #[derive(QueryableByName)]
            struct PageSize {
                #[diesel(sql_type = Integer)]
                page_size: i32,
            }
            let mut b = SqlBuilder::fixed(conn.backend());
            b.push("PRAGMA page_size");
            let rows: Vec<PageSize> = load(&mut conn, &b)?;
            rows.first()
                .and_then(|r| u64::try_from(r.page_size).ok())
                .unwrap_or(4096)
                + 24
        };
        let (stop, stopped) = mpsc::channel::<()>();
        #[cfg(test)]
        let (runs, running) = (Arc::new(Runs::default()), Arc::new(AtomicBool::new(true)));
        let thread = {
            #[cfg(test)]
            let (runs, running) = (Arc::clone(&runs), Arc::clone(&running));
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || {
                    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
                    let run = |conn: &mut DbConnection, mode: Mode| match checkpoint(conn, mode) {
                        Ok(row) => {
                            #[cfg(test)]
                            runs.add();
                            metrics::counter!("scimd_sqlite_checkpoints_total", "mode" => mode.label(), "outcome" => "ok").increment(1);
                            if row.busy != 0 || row.checkpointed < row.log {
                                tracing::debug!(
                                    ?mode,
                                    log = row.log,
                                    checkpointed = row.checkpointed,
                                    "WAL checkpoint incomplete; retrying next round"
                                );
                            }
                            Some(row)
                        }
                        Err(e) => {
                            metrics::counter!("scimd_sqlite_checkpoints_total", "mode" => mode.label(), "outcome" => "failed").increment(1);
                            tracing::warn!(?mode, error = %e, "WAL checkpoint failed");
                            None
                        }
                    };
                    let sync_db = || {
                        if let Err(e) = db_file.sync_data() {
                            tracing::warn!(error = %e, "syncing the database file failed");
                        }
                    };
                    let mut last_run = Instant::now();
                    let mut size_at_last_run = wal_size();
                    // Anything but a timeout (the sender dropped with the
                    // last Store) stops the thread.
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(policy.poll) {
                        if restart_wal.load(Ordering::Relaxed) {
                            // The writer's RESTART is pending: competing
                            // for the checkpoint lock would only make it
                            // wait (its busy handler sleeps in growing
                            // steps).
                            continue;
                        }
                        let size = wal_size();
                        metrics::gauge!("scimd_sqlite_wal_bytes").set(size as f64);
                        if size > policy.truncate_above {
                            run(&mut conn, Mode::Truncate);
                        } else if size != size_at_last_run || last_run.elapsed() >= policy.interval
                        {
                            let row = run(&mut conn, Mode::Passive);
                            if row.as_ref().is_some_and(|r| r.checkpointed > 0) {
                                sync_db();
                            }
                            let live =
                                row.map_or(0, |r| u64::try_from(r.log).unwrap_or(0) * frame_bytes);
                            if live > policy.restart_above {
                                restart_wal.store(true, Ordering::Relaxed);
                            }
                        } else {
                            continue;
                        }
                        last_run = Instant::now();
                        size_at_last_run = wal_size();
                    }
                    #[cfg(test)]
                    running.store(false, Ordering::SeqCst);
                })
                .map_err(|e| StoreError::internal("cannot start the checkpointer thread", &e))?
        };
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            #[cfg(test)]
            runs,
            #[cfg(test)]
            running,
            #[cfg(test)]
            restart_wal: asked,
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread with `Disconnected`.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the checkpointer thread panicked");
            }
        }
    }
}
