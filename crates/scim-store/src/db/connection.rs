//! The two-backend connection and the r2d2 manager that picks the backend
//! explicitly from the URL scheme.
//!
//! Diesel's derived `MultiConnection::establish` tries each backend in turn
//! and reports "Invalid connection url for multiconnection" for every
//! failure (a wrong PostgreSQL password included), and it would open any
//! unknown string as a SQLite file. The manager below does neither.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

pub use multi::DbConnection;

mod multi {
    // The derive also emits public helper types (`MultiBackend`, …) with no
    // docs; they live in this private module so they stay internal.
    #![allow(missing_docs)]
    use diesel::pg::PgConnection;
    use diesel::sqlite::SqliteConnection;

    /// A connection to either supported database. Repository functions take
    /// `&mut DbConnection`; backend-specific SQL matches on the variant.
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// A PostgreSQL connection.
        Postgres(PgConnection),
        /// A SQLite connection.
        Sqlite(SqliteConnection),
    }
}

impl DbConnection {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgres(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The database backend in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (a local file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The file of a `sqlite://PATH` (or `sqlite:PATH`) URL; `None` for any
/// other URL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    match Target::parse(url) {
        Ok(Target::Sqlite(path)) => Some(path.into()),
        _ => None,
    }
}

/// A database URL resolved to its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file path.
    Sqlite(String),
    /// A PostgreSQL URL, passed to libpq unchanged.
    Postgres(String),
}

impl Target {
    /// Resolves `url` by its scheme: `sqlite://path` or `sqlite:path`, and
    /// `postgres://` or `postgresql://`. Anything else is refused with a
    /// message naming the scheme (and never the rest of the URL, which may
    /// hold a password).
    pub(crate) fn parse(url: &str) -> Result<Target, ConnectionError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once(':') {
            Some((scheme, rest)) => (scheme, rest),
            None => {
                return Err(ConnectionError::InvalidConnectionUrl(
                    "the database URL has no scheme; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"
                        .to_owned(),
                ))
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(ConnectionError::InvalidConnectionUrl(
                        "the sqlite URL has no file path; use sqlite://PATH".to_owned(),
                    ));
                }
                if path == ":memory:" {
                    return Err(ConnectionError::InvalidConnectionUrl(
                        "in-memory SQLite is not supported (each pooled connection would see its own empty database); use sqlite://PATH".to_owned(),
                    ));
                }
                Ok(Target::Sqlite(path.to_owned()))
            }
            "postgres" | "postgresql" => Ok(Target::Postgres(url.to_owned())),
            other => Err(ConnectionError::InvalidConnectionUrl(format!(
                "unsupported database URL scheme \"{other}\"; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"
            ))),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Creates a missing SQLite database file, and its missing directories,
/// readable by the owner only (0600 and 0700, whatever the umask): the
/// database holds token hashes, password hashes and personal data. SQLite
/// then gives the `-wal` and `-shm` files it creates beside it the
/// database file's permissions. An existing file keeps the mode its owner
/// chose.
fn prepare_sqlite_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| {
                    format!(
                        "cannot create the directory {} for the SQLite database: {e}",
                        parent.display()
                    )
                })?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // `mode` is filtered by the umask; 0600 survives any usual umask,
        // but set it outright so that none can widen or narrow it.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display())),
        // Another connection (or an earlier run) created it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!(
            "cannot create the SQLite database {}: {e}",
            path.display()
        )),
    }
}

/// Per-connection SQLite setup. The order matters: with
/// `journal_mode = WAL` before `busy_timeout`, fresh pool connections fail
/// with "database is locked".
///
/// `synchronous = NORMAL` in WAL mode: a commit appends to the WAL without
/// an fsync. A committed write survives a crash of the process (the WAL is
/// in the OS page cache), but a power loss or kernel crash can lose the
/// last transactions committed before the next checkpoint's fsync (about a
/// second with the background checkpointer); the database itself is never
/// corrupted. `FULL` would fsync on every commit.
///
/// `wal_autocheckpoint = 0`: SQLite would otherwise checkpoint inside the
/// committing write transaction every 1000 WAL pages (two fsyncs on the
/// writer's critical path, 11–12% of its time, docs/BENCHMARKS.md); the
/// store's background checkpointer does it instead (`engine/mod.rs`).
/// `journal_size_limit` truncates the WAL file back to 64 MiB when it is
/// reset after a burst.
///
/// `page_size = 1024` (before anything is written; it takes effect only
/// when the database file is created): every commit appends each page it
/// dirtied to the WAL, and a user write dirties ~35 pages spread over the
/// indexes, so smaller pages mean less to copy. Measured with the
/// `write_path` example (20,000 users): inserts 2,100/s → 3,150/s and
/// title updates 2,700/s → 4,000/s against the default 4096, with
/// `userName eq` lookups unchanged. Existing databases keep their size.
const SQLITE_SETUP: &str = "PRAGMA page_size = 1024; PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA wal_autocheckpoint = 0; \
     PRAGMA journal_size_limit = 67108864;";

/// Opens a PostgreSQL connection: every PostgreSQL connection scimd opens
/// goes through here.
///
/// r2d2 opens connections on threads of its own, so a process can end (a
/// CLI command finishing, a test binary after its last test) while one of
/// them is in the middle of connecting, and two libraries libpq uses free
/// their global state when the process exits, under that thread's feet
/// (the process then dies after its work is done: SIGSEGV, seen in CI, or
/// an abort):
/// - OpenSSL (TLS) from an `atexit` handler: `openssl_sys::init` sets
///   OpenSSL up first, without that handler (the operating system reclaims
///   the memory anyway); libpq's own set-up later finds it done.
/// - Kerberos (GSSAPI), which libpq asks for credentials on every TCP
///   connection while `gssencmode` is `prefer`, its default: scimd makes
///   `disable` the default instead ([`without_gss_by_default`]). A URL that
///   names `gssencmode` keeps its own; GSSAPI authentication, when the
///   server asks for it, is unaffected.
pub fn pg_establish(url: &str) -> Result<PgConnection, ConnectionError> {
    openssl_sys::init();
    PgConnection::establish(&without_gss_by_default(url))
}

/// `url` with `gssencmode=disable` added, unless it names a `gssencmode`.
fn without_gss_by_default(url: &str) -> std::borrow::Cow<'_, str> {
    if url.contains("gssencmode") {
        return url.into();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}gssencmode=disable").into()
}

/// The r2d2 manager: opens the backend named by the URL, runs the SQLite
/// per-connection setup, and surfaces the real connection error.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionManager {
    target: Target,
}

impl ConnectionManager {
    pub(crate) fn new(target: Target) -> Self {
        Self { target }
    }

    /// The SQLite file path, if this manager opens SQLite.
    pub(crate) fn sqlite_path(&self) -> Option<&str> {
        match &self.target {
            Target::Sqlite(path) => Some(path),
            Target::Postgres(_) => None,
        }
    }

    /// Opens one connection.
    pub(crate) fn establish(&self) -> Result<DbConnection, ConnectionError> {
        match &self.target {
            Target::Postgres(url) => pg_establish(url).map(DbConnection::Postgres),
            Target::Sqlite(path) => {
                prepare_sqlite_file(Path::new(path)).map_err(ConnectionError::BadConnection)?;
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(SQLITE_SETUP)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A connection left inside a transaction or with a broken
        // transaction manager must not go back to the pool.
        conn.is_broken()
    }
}

/// How often [`ConnectErrorLog`] logs at most.
pub(crate) const CONNECT_ERROR_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// r2d2's error handler (shared by every pool of a store): a failed
/// attempt to open a connection is logged at most once per interval, with
/// the number of failures left out since the last line. r2d2 retries every
/// missing connection in the background with a short backoff, and its own
/// handler logged each attempt: dozens of ERROR lines a minute during a
/// database outage.
#[derive(Debug, Clone)]
pub(crate) struct ConnectErrorLog {
    every: std::time::Duration,
    state: std::sync::Arc<std::sync::Mutex<ErrorLogState>>,
}

#[derive(Debug, Default)]
struct ErrorLogState {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl ConnectErrorLog {
    pub(crate) fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            state: std::sync::Arc::default(),
        }
    }

    /// Whether a failure at `now` is logged, and if so how many were left
    /// out before it.
    fn admit(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            state.suppressed += 1;
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.suppressed))
    }
}

impl r2d2::HandleError<diesel::r2d2::Error> for ConnectErrorLog {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if let Some(suppressed) = self.admit(std::time::Instant::now()) {
            tracing::error!(
                error = %error,
                suppressed,
                "cannot open a database connection; retrying (logged at most every {}s)",
                self.every.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_logged_at_most_once_per_interval() {
        let log = ConnectErrorLog::new(std::time::Duration::from_secs(10));
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        assert_eq!(log.admit(at(0)), Some(0));
        assert_eq!(log.admit(at(200)), None);
        assert_eq!(log.admit(at(9_999)), None);
        assert_eq!(log.admit(at(10_000)), Some(2));
        assert_eq!(log.admit(at(10_001)), None);
        assert_eq!(log.admit(at(25_000)), Some(1));
    }

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(
            Target::parse("sqlite://data/x.db").ok(),
            Some(Target::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            Target::parse("sqlite:///abs/x.db").ok(),
            Some(Target::Sqlite("/abs/x.db".into()))
        );
        assert_eq!(
            Target::parse("sqlite:x.db").ok(),
            Some(Target::Sqlite("x.db".into()))
        );
        assert_eq!(
            Target::parse("postgresql://u:p@h/db").ok(),
            Some(Target::Postgres("postgresql://u:p@h/db".into()))
        );
        assert_eq!(
            Target::parse("POSTGRES://u:p@h/db")
                .map(|t| t.backend())
                .ok(),
            Some(Backend::Postgres)
        );
    }

    #[test]
    fn postgres_urls_leave_kerberos_encryption_out_unless_they_name_it() {
        for (url, opened) in [
            (
                "postgres://u:p@h/db",
                "postgres://u:p@h/db?gssencmode=disable",
            ),
            (
                "postgres://u:p@h/db?sslmode=require",
                "postgres://u:p@h/db?sslmode=require&gssencmode=disable",
            ),
            (
                "postgres://u:p@h/db?gssencmode=prefer",
                "postgres://u:p@h/db?gssencmode=prefer",
            ),
        ] {
            assert_eq!(without_gss_by_default(url), opened);
        }
    }

    #[test]
    fn unknown_or_incomplete_urls_are_refused() {
        for (url, needle) in [
            ("mysql://u:secret@h/db", "\"mysql\""),
            ("data.db", "no scheme"),
            ("sqlite://", "no file path"),
            ("sqlite::memory:", "in-memory"),
        ] {
            let msg = match Target::parse(url) {
                Err(e) => e.to_string(),
                Ok(t) => panic!("{url} accepted as {t:?}"),
            };
            assert!(msg.contains(needle), "{url}: {msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
    }
}
