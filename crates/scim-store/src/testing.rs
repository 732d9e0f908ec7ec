//! Test support (feature `testing`): throwaway, migrated databases on each
//! backend, so every storage test — here and in the HTTP server — runs on
//! SQLite and on PostgreSQL; and the way tests create Users
//! ([`create_user`]), through the store's one entry point for User creates.
//!
//! PostgreSQL is never skipped in silence: without `TEST_DATABASE_URL`, a
//! test that asks for the backends fails, saying how to get one, unless
//! `SCIMD_TEST_SQLITE_ONLY=1` opts out explicitly ([`postgres_url`]).
//!
//! These helpers panic on setup failure: they only run in tests, where a
//! missing database must fail loudly rather than skip silently.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use serde_json::{Map, Value};

use crate::changes::Actor;
use crate::{Answer, Backend, OrgId, Store, StoreConfig, UserRecord};

/// The environment variable naming the PostgreSQL server for tests: a URL
/// whose role may `CREATE DATABASE`.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The environment variable that, set to `1`, runs the tests on SQLite
/// only: PostgreSQL is then skipped on purpose (and `TEST_DATABASE_URL`
/// ignored).
pub const SQLITE_ONLY: &str = "SCIMD_TEST_SQLITE_ONLY";

/// The PostgreSQL server the tests run on: `TEST_DATABASE_URL`, or `None`
/// when `SCIMD_TEST_SQLITE_ONLY=1` opts out of PostgreSQL.
///
/// # Panics
///
/// When `TEST_DATABASE_URL` is unset (or empty) and there is no opt-out:
/// the message says how to get a server.
pub fn postgres_url() -> Option<String> {
    if std::env::var(SQLITE_ONLY).is_ok_and(|v| v.trim() == "1") {
        return None;
    }
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => panic!(
            "the tests run on SQLite and PostgreSQL, and {TEST_DATABASE_URL} is unset: run \
             `TEST_DATABASE_URL=\"$(scripts/test-postgres.sh)\" cargo test` \
             (scripts/test-postgres.sh starts the local PostgreSQL and prints the URL; \
             `make test` does this), or set {TEST_DATABASE_URL} to a postgres:// URL whose \
             role may CREATE DATABASE; or set {SQLITE_ONLY}=1 to skip PostgreSQL on purpose"
        ),
    }
}

/// A migrated database that is removed when dropped.
pub struct TestDb {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file lives in this directory, deleted on drop.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// Drop database `name` through the server at `admin_url`.
    Postgres { admin_url: String, name: String },
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

fn config(url: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        pool_size: 4,
        connect_timeout: Duration::from_secs(15),
    }
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory, migrated.
    pub fn sqlite() -> TestDb {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot create a temporary directory: {e}"),
        };
        let url = format!("sqlite://{}", dir.path().join("scimd-test.db").display());
        let store = connect_and_migrate(&url);
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database (`scimd_test_<random>`) on the server
    /// named by `TEST_DATABASE_URL`, migrated; `None` only when
    /// `SCIMD_TEST_SQLITE_ONLY=1` opts out, and a panic saying how to get
    /// a server when the variable is missing ([`postgres_url`]). The
    /// database is dropped (`WITH (FORCE)`) on drop.
    pub fn postgres() -> Option<TestDb> {
        let admin_url = postgres_url()?;
        let name = format!("scimd_test_{}", uuid::Uuid::new_v4().simple());
        let url = match with_database(&admin_url, &name) {
            Some(url) => url,
            None => panic!("{TEST_DATABASE_URL} is not a postgres:// URL"),
        };
        let mut admin = match crate::connection::pg_establish(&admin_url) {
            Ok(c) => c,
            Err(e) => panic!("cannot connect to {TEST_DATABASE_URL}: {e}"),
        };
        // `name` is ours (a UUID), not input: safe to put in the statement.
        if let Err(e) = admin.batch_execute(&format!("CREATE DATABASE {name}")) {
            panic!("cannot create the test database: {e}");
        }
        let store = connect_and_migrate(&url);
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// The store over this database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The backend of this database.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The URL of this database (for tests that open their own store).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `sql` (statements separated by `;`) in one write transaction:
    /// for tests that set up rows as an older release wrote them.
    pub fn execute(&self, sql: &str) {
        if let Err(e) = self.store.write(|c| Ok(c.batch_execute(sql)?)) {
            panic!("test SQL failed: {e}\n{sql}");
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // FORCE terminates this store's pooled connections too.
            let dropped = crate::connection::pg_establish(admin_url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

/// A `SHARE` lock on a PostgreSQL table, held by a transaction of the test
/// ([`TestDb::lock_table`]) until released or dropped: reads go on, and
/// every write of the table waits. A test lines up several processes'
/// writes behind it, and releases it once [`TableLock::waiting`] shows
/// they all wait, so that they run at the same moment.
pub struct TableLock {
    store: Store,
    table: &'static str,
    release: Option<std::sync::mpsc::Sender<()>>,
    holder: Option<std::thread::JoinHandle<()>>,
}

#[derive(diesel::QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TableLock {
    /// How many connections wait for a lock on the table.
    pub fn waiting(&self) -> i64 {
        use diesel::RunQueryDsl;
        // `table` is the test's constant, not input.
        let sql = format!(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND relation = '{}'::regclass",
            self.table
        );
        let counted = self.store.read(|c| {
            let rows: Vec<Waiting> = diesel::sql_query(sql).load(c)?;
            Ok(rows.first().map_or(0, |r| r.n))
        });
        match counted {
            Ok(n) => n,
            Err(e) => panic!("cannot read pg_locks: {e}"),
        }
    }

    /// Ends the transaction holding the lock.
    pub fn release(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.release.take();
        if let Some(holder) = self.holder.take() {
            let _ = holder.join();
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        self.end();
    }
}

impl TestDb {
    /// Locks `table` of this PostgreSQL database in `SHARE` mode until the
    /// returned [`TableLock`] is released.
    pub fn lock_table(&self, table: &'static str) -> TableLock {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let store = self.store.clone();
        let holder = std::thread::spawn(move || {
            let held = store.write(|c| {
                // `table` is the test's constant, not input.
                c.batch_execute(&format!("LOCK TABLE {table} IN SHARE MODE"))?;
                let _ = locked_tx.send(());
                // Until the sender is dropped.
                let _ = released.recv();
                Ok(())
            });
            if let Err(e) = held {
                eprintln!("cannot lock {table}: {e}");
            }
        });
        if locked_rx.recv().is_err() {
            panic!("cannot lock table {table}");
        }
        TableLock {
            store: self.store.clone(),
            table,
            release: Some(release),
            holder: Some(holder),
        }
    }
}

/// Enables User Synchronization in `org` unless it is enabled already
/// (as an administrator accepting no caution would), so that the User
/// writes of [`create_user`] pass its gate.
///
/// # Panics
///
/// When the write fails.
pub fn enable_sync(store: &Store, org: OrgId) {
    let enabled = store.write(|c| {
        if !crate::sync::sync_enabled(c, org)? {
            crate::sync::enable_sync(c, org, "test", &[])?;
        }
        Ok(())
    });
    if let Err(e) = enabled {
        panic!("cannot enable User Synchronization: {e}");
    }
}

/// A User PATCH by the command line `test`, for the change log: who
/// [`Store::queue_user_edit`] records as making the edit.
pub fn patched_by_test() -> crate::engine::EditBy {
    crate::engine::EditBy {
        actor: Actor::cli("test"),
        event: crate::changes::Event::UserPatched,
    }
}

/// The JSON object `v` as a map of attributes.
///
/// # Panics
///
/// When `v` is not an object.
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

/// Creates a User in `org` through the store's one entry point for User
/// creates ([`Store::queue_insert_user`]), as the command line `test`:
/// behind the User Synchronization gate ([`enable_sync`]), with its
/// `user.created` in the change log. The answer is awaited in async tests
/// and [`Answer::wait`]ed for elsewhere.
pub fn create_user(store: &Store, org: OrgId, attrs: Map<String, Value>) -> Answer<UserRecord> {
    store.queue_insert_user(attrs, None, Actor::cli("test").in_org(org))
}

/// [`create_user`], with the stored password hash `password_hash` (a PHC
/// string, not a password).
pub fn create_user_with_password(
    store: &Store,
    org: OrgId,
    attrs: Map<String, Value>,
    password_hash: &str,
) -> Answer<UserRecord> {
    store.queue_insert_user(
        attrs,
        Some(password_hash.to_owned()),
        Actor::cli("test").in_org(org),
    )
}

/// SQLite and PostgreSQL; SQLite alone only when `SCIMD_TEST_SQLITE_ONLY=1`
/// opts out, and a panic saying how to get a server when
/// `TEST_DATABASE_URL` is missing ([`postgres_url`]).
pub fn backends() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    dbs.extend(TestDb::postgres());
    dbs
}

fn connect_and_migrate(url: &str) -> Store {
    let store = match Store::connect(&config(url)) {
        Ok(s) => s,
        Err(e) => panic!("cannot connect to the test database: {e}"),
    };
    if let Err(e) = store.migrate() {
        panic!("cannot migrate the test database: {e}");
    }
    store
}

/// `url` with its database name replaced by `name`, keeping the query.
fn with_database(url: &str, name: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("postgres") && !scheme.eq_ignore_ascii_case("postgresql") {
        return None;
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/scimd", "t").as_deref(),
            Some("postgres://u:p@h:5432/t")
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "t").as_deref(),
            Some("postgresql://h/t?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://h", "t").as_deref(),
            Some("postgres://h/t")
        );
        assert_eq!(with_database("mysql://h/db", "t"), None);
    }
}
