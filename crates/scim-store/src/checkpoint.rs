//! The SQLite background checkpointer.
//!
//! Every connection runs with `wal_autocheckpoint = 0`, so no commit ever
//! checkpoints (with its two fsyncs) inside the single writer's critical
//! section. Instead one thread, on its own connection, runs
//! `PRAGMA wal_checkpoint(PASSIVE)` every second, and sooner when the WAL
//! file grows fast. PASSIVE never waits for the writer or readers: it
//! copies what it can and leaves the rest for the next round. Once a
//! checkpoint has copied everything, the next write transaction starts the
//! WAL over from its beginning, so the file stops growing; if readers keep
//! a checkpoint from completing and the file passes
//! [`CheckpointPolicy::truncate_above`] bytes, a `TRUNCATE` checkpoint
//! (which briefly waits for the writer, up to the connection's short
//! busy timeout) resets and shrinks it.
//!
//! The thread stops when the last clone of the owning `Store` is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::Integer;
use diesel::QueryableByName;

use crate::connection::{ConnectionManager, DbConnection};
use crate::error::StoreError;
use crate::sql::{load, SqlBuilder};

/// When the checkpointer runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    /// A PASSIVE checkpoint at least this often.
    pub(crate) interval: Duration,
    /// How often the WAL file's size is looked at.
    pub(crate) poll: Duration,
    /// A PASSIVE checkpoint as soon as the WAL file grew by this many bytes
    /// since the last one.
    pub(crate) grown_by: u64,
    /// A TRUNCATE checkpoint when the WAL file is larger than this.
    pub(crate) truncate_above: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            poll: Duration::from_millis(100),
            grown_by: 16 << 20,
            truncate_above: 64 << 20,
        }
    }
}

/// The running checkpointer; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints run so far (PASSIVE and TRUNCATE), for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) runs: Arc<AtomicU64>,
    /// True while the thread is alive, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) running: Arc<AtomicBool>,
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
    ) -> Result<Checkpointer, StoreError> {
        let Some(path) = manager.sqlite_path() else {
            return Err(StoreError::internal(
                "the checkpointer is for SQLite only",
                &"postgres",
            ));
        };
        let wal = PathBuf::from(format!("{path}-wal"));
        let mut conn = manager.establish().map_err(|e| {
            StoreError::Unavailable(format!("cannot open the checkpointer's connection: {e}"))
        })?;
        // TRUNCATE waits for the writer through the busy handler; keep that
        // wait short so a busy writer makes the checkpointer retry later
        // rather than stall.
        conn.batch_execute("PRAGMA busy_timeout = 200")?;
        let (stop, stopped) = mpsc::channel::<()>();
        let runs = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let runs = Arc::clone(&runs);
            let running = Arc::clone(&running);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || {
                    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
                    let mut last_run = Instant::now();
                    let mut size_at_last_run = wal_size();
                    // Anything but a timeout (the sender dropped with the
                    // last Store) stops the thread.
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(policy.poll) {
                        let size = wal_size();
                        let mode = if size > policy.truncate_above {
                            Mode::Truncate
                        } else if last_run.elapsed() >= policy.interval
                            || size.saturating_sub(size_at_last_run) >= policy.grown_by
                        {
                            Mode::Passive
                        } else {
                            continue;
                        };
                        match checkpoint(&mut conn, mode) {
                            Ok(row) => {
                                runs.fetch_add(1, Ordering::Relaxed);
                                if row.busy != 0 || row.checkpointed < row.log {
                                    tracing::debug!(
                                        ?mode,
                                        log = row.log,
                                        checkpointed = row.checkpointed,
                                        "WAL checkpoint incomplete; retrying next round"
                                    );
                                }
                            }
                            Err(e) => tracing::warn!(?mode, error = %e, "WAL checkpoint failed"),
                        }
                        last_run = Instant::now();
                        size_at_last_run = wal_size();
                    }
                    running.store(false, Ordering::SeqCst);
                })
                .map_err(|e| StoreError::internal("cannot start the checkpointer thread", &e))?
        };
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            runs,
            running,
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
