//! The store handle: connection pools, migrations, and the `read` / `write`
//! entry points through which every repository function is called.

mod edit;
mod metrics;
pub mod organizations;
mod postgres;
pub(crate) mod queue;
mod reader;
mod sqlite;
mod user_hints;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use scim_core::extensions::UserSchemas;

use crate::admin::organizations::list_organizations;
use crate::changes::{record, Actor};
use crate::db::connection::{
    Backend, ConnectErrorLog, ConnectionManager, DbConnection, Target, CONNECT_ERROR_LOG_EVERY,
};
use crate::db::migrations::{migrate_connection, revert_all, revert_last};
use crate::db::org::OrgId;
use crate::db::transaction::transaction;
use crate::engine::organizations::{OrganizationCache, Organizations};
use crate::engine::postgres::user_writes::batcher::UserBatcher;
use crate::engine::reader::ReadQueue;
use crate::engine::sqlite::checkpoint::{CheckpointPolicy, Checkpointer};
use crate::engine::sqlite::writer::SqliteWriter;
use crate::engine::user_hints::{UserHints, HINTS};
use crate::error::StoreError;
use crate::scim::extensions::{list_extensions, ExtensionCache};
use crate::scim::lookup::{GatedUser, LookupBy};
use crate::scim::recorded::user_created;
use crate::scim::unique::check_unique;
use crate::scim::users::UserRecord;
pub use edit::{Edit, EditBy, Found};

type Pool = r2d2::Pool<ConnectionManager>;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://PATH` (or `sqlite:PATH`), or `postgres://…` /
    /// `postgresql://…`.
    pub url: String,
    /// Connections in the (read) pool. On SQLite, writes go through one
    /// extra dedicated connection.
    pub pool_size: u32,
    /// How long to wait for a connection, at startup and on each checkout.
    pub connect_timeout: Duration,
}

/// The storage handle: cheap to clone, shared by all request handlers.
///
/// On SQLite, writes go through exactly one connection (a single writer
/// beats writers busy-waiting on the database lock), and writes
/// queued behind each other share one transaction (group commit,
/// `engine/sqlite/writer.rs`); reads have their own pool. With WAL, readers never
/// block the writer, and a background thread checkpoints the WAL so
/// commits never do (`engine/sqlite/checkpoint.rs`); it stops when the last clone is
/// dropped. On PostgreSQL one pool serves both, one transaction per write.
#[derive(Clone)]
pub struct Store {
    read: Pool,
    /// The reader threads of [`Store::queue_read`].
    reads: Arc<ReadQueue>,
    write: Writer,
    backend: Backend,
    /// Held for its `Drop`: the last clone stops the thread.
    #[cfg_attr(not(test), allow(dead_code))]
    checkpointer: Option<Arc<Checkpointer>>,
    /// The User type with the custom extensions (`scim::extensions`).
    extensions: Arc<ExtensionCache>,
    /// The organizations, as requests resolve them
    /// (`engine/organizations.rs`).
    organizations: Arc<OrganizationCache>,
}

/// Where writes go.
#[derive(Clone)]
enum Writer {
    /// A transaction per call on a pooled connection (PostgreSQL), and
    /// the batcher threads of User creates and edits (`engine/postgres/user_writes/`).
    Pool { pool: Pool, users: Arc<UserBatcher> },
    /// SQLite's single writer connection, with group commit, and the
    /// queue of its writer thread.
    GroupCommit {
        writer: Arc<SqliteWriter>,
        /// Users as last seen, for edits decided before the writer
        /// (`engine/sqlite/user_edit.rs`).
        hints: Arc<UserHints>,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database named by `config.url`.
    ///
    /// An unknown URL scheme, or a database that refuses the connection,
    /// fails here with the real reason (never the URL itself, which may
    /// carry a password).
    pub fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        Self::connect_with(config, CheckpointPolicy::default())
    }

    fn connect_with(config: &StoreConfig, policy: CheckpointPolicy) -> Result<Store, StoreError> {
        let target =
            Target::parse(&config.url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let backend = target.backend();
        let manager = ConnectionManager::new(target);
        // Open one connection directly first: a pool only reports
        // "timed out" after `connect_timeout`, this gives the real reason now.
        let probe = manager.establish().map_err(|e| {
            StoreError::Unavailable(format!("cannot connect to the {backend} database: {e}"))
        })?;
        drop(probe);
        let pool_size = config.pool_size.max(1);
        let error_log = ConnectErrorLog::new(CONNECT_ERROR_LOG_EVERY);
        let build = |size: u32, name: &'static str| {
            r2d2::Pool::builder()
                .max_size(size)
                // No idle minimum: r2d2 would otherwise open replacement
                // connections whenever one is checked out. Connections are
                // opened on demand (on r2d2's own thread, which is why
                // OpenSSL is set up without its exit handler:
                // `connection::pg_establish`) and, with no idle timeout,
                // kept once opened.
                .min_idle(Some(0))
                .idle_timeout(None)
                .connection_timeout(config.connect_timeout)
                // A liveness query on every checkout is a statement per
                // read (docs/BENCHMARKS.md); broken connections are still
                // dropped through `has_broken`.
                .test_on_check_out(false)
                .error_handler(Box::new(error_log.clone()))
                .event_handler(Box::new(metrics::PoolMetrics::new(name)))
                .build(manager.clone())
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot open the {backend} connection pool: {e}"
                    ))
                })
        };
        let read = build(pool_size, "read")?;
        let (write, checkpointer) = match backend {
            Backend::Sqlite => {
                let hints = Arc::new(UserHints::new(HINTS));
                let restart_wal = Arc::new(AtomicBool::new(false));
                let writer = Arc::new(SqliteWriter::start(
                    build(1, "write")?,
                    Arc::clone(&restart_wal),
                )?);
                let checkpointer = Checkpointer::start(&manager, policy, restart_wal)?;
                (
                    Writer::GroupCommit { writer, hints },
                    Some(Arc::new(checkpointer)),
                )
            }
            Backend::Postgres => (
                Writer::Pool {
                    pool: read.clone(),
                    users: Arc::new(UserBatcher::start(read.clone())?),
                },
                None,
            ),
        };
        // The readers offer the users they look up as hints (SQLite).
        let hints = match &write {
            Writer::GroupCommit { hints, .. } => Some(Arc::clone(hints)),
            Writer::Pool { .. } => None,
        };
        let reads = Arc::new(ReadQueue::start(
            read.clone(),
            usize::try_from(pool_size).unwrap_or(1),
            hints,
        )?);
        Ok(Store {
            read,
            reads,
            write,
            backend,
            checkpointer,
            extensions: Arc::new(ExtensionCache::default()),
            organizations: Arc::new(OrganizationCache::default()),
        })
    }

    /// The User resource type in force, with the custom schema extensions
    /// (`scim::extensions`): from the cache while it is fresh (a lock and a
    /// clock read), else read again on a reader thread.
    pub async fn user_schemas(&self) -> Result<Arc<UserSchemas>, StoreError> {
        if let Some(s) = self.extensions.fresh() {
            return Ok(s);
        }
        let read_at = Instant::now();
        let defs = self.queue_read(list_extensions).await?;
        Ok(self.extensions.store(defs, read_at))
    }

    /// [`Store::user_schemas`] for blocking callers (the admin service, the
    /// CLI, tests).
    pub fn user_schemas_blocking(&self) -> Result<Arc<UserSchemas>, StoreError> {
        if let Some(s) = self.extensions.fresh() {
            return Ok(s);
        }
        let read_at = Instant::now();
        let defs = self.read(list_extensions)?;
        Ok(self.extensions.store(defs, read_at))
    }

    /// The organizations by slug and host name, from memory while the
    /// list is fresh (`engine/organizations.rs`), else read again on a
    /// reader thread.
    pub async fn organizations(&self) -> Result<Arc<Organizations>, StoreError> {
        if let Some(orgs) = self.organizations.fresh() {
            return Ok(orgs);
        }
        let read_at = Instant::now();
        let list = self.queue_read(list_organizations).await?;
        Ok(self.organizations.store(list, read_at))
    }

    /// [`Store::organizations`] for blocking callers (the admin service,
    /// the CLI, tests).
    pub fn organizations_blocking(&self) -> Result<Arc<Organizations>, StoreError> {
        if let Some(orgs) = self.organizations.fresh() {
            return Ok(orgs);
        }
        let read_at = Instant::now();
        let list = self.read(list_organizations)?;
        Ok(self.organizations.store(list, read_at))
    }

    /// Makes this process's next request read the organizations again:
    /// called after it changed them.
    pub fn invalidate_organizations(&self) {
        self.organizations.invalidate();
    }

    /// Makes this process's next request read the extension definitions
    /// again: called after it changed them.
    pub fn invalidate_user_schemas(&self) {
        self.extensions.invalidate();
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations; returns the names of those applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.on_writer(migrate_connection)
    }

    /// Reverts every applied migration, newest first; returns the names of
    /// those reverted. This drops all data: it exists for tests and for an
    /// operator tearing an installation down.
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, StoreError> {
        self.on_writer(revert_all)
    }

    /// Reverts the newest applied migration; returns its name. For tests
    /// that build a database as an older release left it, and for an
    /// operator going back one release.
    pub fn revert_last_migration(&self) -> Result<String, StoreError> {
        self.on_writer(revert_last)
    }

    /// Runs `f` on the write connection outside any transaction (SQLite:
    /// once no write batch is open).
    fn on_writer<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.write {
            Writer::Pool { pool, .. } => f(&mut *pool.get()?),
            Writer::GroupCommit { writer, .. } => writer.exclusive(f),
        }
    }

    /// Checks that the database answers (readiness probe).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.ping_within(self.read.connection_timeout())
    }

    /// [`Store::ping`] waiting at most `checkout` for a pooled connection
    /// (instead of the configured connect timeout), so that a readiness
    /// probe answers quickly while the database is down.
    pub fn ping_within(&self, checkout: Duration) -> Result<(), StoreError> {
        let mut conn = self.read.get_timeout(checkout)?;
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    /// Runs `f` on a pooled read connection (no transaction).
    pub fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    {
        let mut conn = self.read.get()?;
        f(&mut conn)
    }

    /// [`Store::read`] without blocking the calling thread, for `f` that
    /// owns what it needs: `f` is queued for the reader threads (one per
    /// read-pool connection, `engine/reader.rs`), which take queued reads one
    /// after another without waiting to be woken while reads keep coming.
    /// A closure that panics answers `StoreError::Internal`.
    pub fn queue_read<T, F>(&self, f: F) -> Answer<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        Answer(self.reads.submit(f))
    }

    /// `scim::lookup::find_user_gated` (`by` id) or `find_user_by_name_gated`
    /// (`by` userName), queued for the reader threads: the reader that
    /// takes it answers it together with the lookups queued behind it, in
    /// one statement (`engine/reader.rs`).
    pub fn queue_user_lookup(
        &self,
        org: OrgId,
        by: LookupBy,
        key: &str,
        with_groups: bool,
    ) -> Answer<GatedUser> {
        Answer(self.reads.lookup(org, by, key, with_groups))
    }

    /// The most user lookups one reader thread has taken together so far
    /// (answered with one statement per kind of key).
    #[cfg(test)]
    pub(crate) fn largest_lookup_batch(&self) -> usize {
        self.reads.largest_lookup_batch()
    }

    /// Runs `f` in one transaction on the write connection: everything `f`
    /// does commits together, or, if it returns an error, rolls back. It
    /// returns once that is durable in the database's sense (committed), so
    /// any read that follows sees it.
    ///
    /// On SQLite, `f` waits for its turn in the writer's queue, behind the
    /// writes queued before it, and then runs on this thread, lent the
    /// writer connection, in a savepoint of a `BEGIN IMMEDIATE`
    /// transaction that other queued writes may share (group commit,
    /// `engine/sqlite/writer.rs`): its changes still commit or roll back as one, and
    /// independently of the others', unless the shared `COMMIT` itself
    /// fails, which fails them all. `IMMEDIATE` takes the write lock up
    /// front, so a read followed by a write inside `f` cannot fail with
    /// SQLITE_BUSY on the lock upgrade. `f` must not call
    /// `Store::write` itself (an error on SQLite); it may nest
    /// `conn.transaction(…)` (a further savepoint).
    pub fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    {
        match &self.write {
            Writer::Pool { pool, .. } => transaction(&mut *pool.get()?, f),
            Writer::GroupCommit { writer, .. } => writer.write(f),
        }
    }

    /// [`Store::write`] without blocking the calling thread, for `f` that
    /// owns what it needs.
    ///
    /// On SQLite, `f` is queued for the writer thread, which runs queued
    /// writes back to back in one batch (group commit, `engine/sqlite/writer.rs`),
    /// with the same guarantees as [`Store::write`]: the returned future
    /// resolves once `f`'s changes are committed, or rolled back if it
    /// failed. Handing a write to a running thread costs no thread wake-up
    /// on either side while writes keep coming.
    /// On PostgreSQL, `f` runs in a transaction of its own on one of the
    /// reader threads (`engine/reader.rs`), as [`Store::write`] would on the
    /// caller's thread. Either way a closure that panics is rolled back
    /// and answers `StoreError::Internal`.
    pub fn queue_write<T, F>(&self, f: F) -> Answer<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.write {
            Writer::Pool { .. } => Answer(self.reads.submit(move |conn| transaction(conn, f))),
            Writer::GroupCommit { writer, .. } => Answer(writer.submit(f)),
        }
    }

    /// Creates a User (`users::insert_user`) behind the User
    /// Synchronization gate, without blocking the calling thread.
    ///
    /// On SQLite the create is built in full on the calling thread (the
    /// id, the derived columns, the JSON and the filter rows), and the
    /// writer thread only runs its statements, the gate being a condition
    /// of the `INSERT`: that work needs no write lock, and the writer is
    /// SQLite's bottleneck. On PostgreSQL the create
    /// joins whatever other User creates and edits are waiting, in one
    /// transaction with one statement per step for all of them
    /// (`engine/postgres/user_writes/`). Either way it answers once committed, with
    /// `Conflict` for a userName already taken, and the create's
    /// `user.created`, by `actor`, is recorded in the change log in the
    /// same transaction (`scim::recorded`).
    pub fn queue_insert_user(
        &self,
        attrs: serde_json::Map<String, serde_json::Value>,
        password_hash: Option<String>,
        actor: Actor,
    ) -> Answer<UserRecord> {
        match &self.write {
            Writer::Pool { users, .. } => Answer(users.insert(attrs, password_hash, actor)),
            // Built in full here, change log rows included, so the writer
            // only runs its statements (the gate is a condition of the
            // INSERT).
            Writer::GroupCommit { writer, .. } => Answer(match crate::scim::users::prepare_insert(
                Backend::Sqlite,
                actor.org,
                attrs,
                password_hash.as_deref(),
                true,
            )
            .and_then(|prepared| {
                let changes = user_created(prepared.record())?;
                Ok((prepared, changes))
            }) {
                Ok((prepared, changes)) => writer.submit(move |conn| {
                    let rec = crate::scim::users::apply_prepared_insert(conn, prepared)?;
                    check_unique(conn, actor.org, &[(&rec.id, &rec.attrs, None)])?;
                    record(conn, &actor, &rec.created, &changes)?;
                    Ok(rec)
                }),
                // A closed gate answers first, as it does on its own.
                Err(e) => writer.submit(move |conn| {
                    crate::admin::sync::scim_gate(conn, actor.org)?;
                    Err(e)
                }),
            }),
        }
    }

    /// Edits the User `id` behind the User Synchronization gate, without
    /// blocking the calling thread: `f` gets the user as stored (with its
    /// groups when `with_groups`; `None` if there is no such user) and
    /// says what to store ([`Edit`]); what is stored is `f`'s result on
    /// the user as stored when it is written (no lost update).
    ///
    /// On SQLite, when the store has a hint of the user (its last-seen
    /// state, `engine/user_hints.rs`), `f` runs on it on the calling thread and
    /// the write is built there; the single writer runs it only if the
    /// user is still that version and in those groups, and otherwise runs
    /// the whole edit again under its lock, as it does without a hint
    /// (`engine/sqlite/user_edit.rs`). On PostgreSQL the edit joins whatever
    /// other User creates and edits are waiting (`engine/postgres/user_writes/`), which
    /// read their users in one statement, locking their rows. `f` may be
    /// called more than once (on SQLite when the hint was stale, on
    /// PostgreSQL when the batch falls back to running its writes
    /// alone); the answer comes from the call whose outcome stands, which
    /// was given the user as stored (a call on a stale hint writes and
    /// answers nothing).
    ///
    /// A write records its change in the change log in the same
    /// transaction, by `by.actor`: `by.event` (`user.replaced` or
    /// `user.patched`) with the attribute paths that changed, and
    /// `user.activated` / `user.suspended` when `active` flipped
    /// (`scim::recorded::user_edited`). An edit that stores nothing
    /// records nothing.
    pub fn queue_user_edit<T, F>(
        &self,
        id: String,
        with_groups: bool,
        by: EditBy,
        f: F,
    ) -> Answer<T>
    where
        T: Send + 'static,
        F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
    {
        match &self.write {
            Writer::Pool { users, .. } => Answer(users.edit(id, with_groups, by, f)),
            Writer::GroupCommit { writer, hints } => {
                Answer(crate::engine::sqlite::user_edit::queue_edit(
                    writer,
                    Arc::clone(hints),
                    id,
                    with_groups,
                    by,
                    f,
                ))
            }
        }
    }

    /// Drops what the store keeps in memory about the User `id` (on
    /// SQLite, its hint: `engine/user_hints.rs`), once it has been deleted: its
    /// attributes should not outlive it in this process. Hints are only
    /// ever used after a check against the database, so this is hygiene,
    /// not correctness.
    pub fn forget_user(&self, id: &str) {
        if let Writer::GroupCommit { hints, .. } = &self.write {
            hints.forget(id);
        }
    }

    /// How many users the store keeps hints of (SQLite; 0 on PostgreSQL).
    #[cfg(test)]
    pub(crate) fn user_hints(&self) -> usize {
        match &self.write {
            Writer::GroupCommit { hints, .. } => hints.len(),
            Writer::Pool { .. } => 0,
        }
    }
}

/// The result of a write queued by [`Store::queue_write`], or of a read
/// queued by [`Store::queue_read`].
#[derive(Debug)]
pub struct Answer<T>(tokio::sync::oneshot::Receiver<Result<T, StoreError>>);

impl<T> Answer<T> {
    /// Blocks the calling thread until the answer comes: for blocking
    /// callers (tools, tests). It must not be called on an async runtime's
    /// thread (tokio panics), where the answer is awaited instead.
    pub fn wait(self) -> Result<T, StoreError> {
        self.0.blocking_recv().unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the thread running the query stopped before answering".to_owned(),
            ))
        })
    }
}

impl<T> Future for Answer<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| {
            answer.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the thread running the query stopped before answering".to_owned(),
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn the_checkpointer_runs_and_stops_with_the_last_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let config = StoreConfig {
            url: format!("sqlite://{}", path.display()),
            pool_size: 2,
            connect_timeout: Duration::from_secs(5),
        };
        let policy = CheckpointPolicy {
            interval: Duration::from_millis(50),
            poll: Duration::from_millis(10),
            ..CheckpointPolicy::default()
        };
        let store = Store::connect_with(&config, policy).unwrap();
        store.migrate().unwrap();
        let ckpt = store.checkpointer.clone().unwrap();
        let (runs, running) = (Arc::clone(&ckpt.runs), Arc::clone(&ckpt.running));
        drop(ckpt);
        // Commits never checkpoint by themselves…
        store
            .write(|c| {
                c.batch_execute("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a');")?;
                Ok(())
            })
            .unwrap();
        let frames = |store: &Store| {
            store
                .read(|c| {
                    #[derive(diesel::QueryableByName)]
                    struct Row {
                        #[diesel(sql_type = diesel::sql_types::BigInt)]
                        wal_autocheckpoint: i64,
                    }
                    let mut b = crate::db::sql::SqlBuilder::fixed(Backend::Sqlite);
                    b.push("PRAGMA wal_autocheckpoint");
                    let rows: Vec<Row> = crate::db::sql::load(c, &b)?;
                    Ok(rows[0].wal_autocheckpoint)
                })
                .unwrap()
        };
        assert_eq!(frames(&store), 0, "auto-checkpoints are off");
        // …the background thread does.
        assert!(
            runs.wait_for(2, Duration::from_secs(10)) >= 2,
            "no checkpoint ran"
        );
        // A clone keeps it alive; dropping the last one stops it.
        let clone = store.clone();
        drop(store);
        assert!(running.load(Ordering::SeqCst));
        drop(clone);
        assert!(!running.load(Ordering::SeqCst));
    }

    #[test]
    fn the_writer_restarts_the_wal_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            url: format!("sqlite://{}", dir.path().join("restart.db").display()),
            pool_size: 2,
            connect_timeout: Duration::from_secs(5),
        };
        // A checkpointer that never runs by itself.
        let policy = CheckpointPolicy {
            interval: Duration::from_secs(3600),
            poll: Duration::from_secs(3600),
            ..CheckpointPolicy::default()
        };
        let store = Store::connect_with(&config, policy).unwrap();
        store
            .write(|c| Ok(c.batch_execute("CREATE TABLE t (x TEXT)")?))
            .unwrap();
        let insert = |store: &Store, n: usize| {
            for i in 0..n {
                store
                    .write(|c| Ok(c.batch_execute(&format!("INSERT INTO t VALUES ('{i}')"))?))
                    .unwrap();
            }
        };
        insert(&store, 50);
        let restart_wal = Arc::clone(&store.checkpointer.as_ref().unwrap().restart_wal);
        // Nothing checkpoints, so every write appends to the WAL file.
        let wal = dir.path().join("restart.db-wal");
        let size = || std::fs::metadata(&wal).unwrap().len();
        let before = size();
        insert(&store, 5);
        let full = size();
        assert!(full > before, "the WAL grew: {before} -> {full}");
        // Asked: the next batch copies everything, then writes from the
        // start of the WAL, so the next writes reuse the file.
        restart_wal.store(true, Ordering::SeqCst);
        insert(&store, 10);
        assert!(!restart_wal.load(Ordering::SeqCst), "the request was taken");
        assert_eq!(size(), full, "the WAL started over instead of growing");
        // And nothing was lost.
        let rows: i64 = store
            .read(|c| {
                #[derive(diesel::QueryableByName)]
                struct N {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let mut b = crate::db::sql::SqlBuilder::fixed(Backend::Sqlite);
                b.push("SELECT COUNT(*) AS n FROM t");
                Ok(crate::db::sql::load::<N>(c, &b)?[0].n)
            })
            .unwrap();
        assert_eq!(rows, 65);
    }

    #[test]
    fn postgres_has_no_checkpointer() {
        if let Some(db) = crate::testing::TestDb::postgres() {
            assert!(db.store().checkpointer.is_none());
        }
    }
}
