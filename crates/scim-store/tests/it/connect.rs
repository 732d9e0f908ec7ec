use std::time::Duration;

use scim_store::testing::{backends, postgres_url};
use scim_store::{Backend, Store, StoreConfig, StoreError};

fn config(url: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(5),
    }
}

#[test]
fn unknown_scheme_is_refused_by_name_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let url = format!("mysql://root:hunter2@{}", path.display());
    match Store::connect(&config(&url)) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("\"mysql\""), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!path.exists());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn sqlite_creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/scimd.db");
    let store = Store::connect(&config(&format!("sqlite://{}", path.display()))).unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().unwrap();
    assert!(path.exists());
    // The short form works too.
    let store = Store::connect(&config(&format!("sqlite:{}", path.display()))).unwrap();
    store.ping().unwrap();
}

#[test]
fn sqlite_connections_get_the_pragmas() {
    use diesel::connection::SimpleConnection;
    let db = scim_store::testing::TestDb::sqlite();
    // foreign_keys = ON: an index row for a missing user is refused.
    let err = db
        .store()
        .write(|conn| {
            conn.batch_execute(
                "INSERT INTO user_values (user_id, attr, idx) VALUES ('nobody', 'title', 0)",
            )
            .map_err(StoreError::from)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    let wal =
        std::path::Path::new(db.url().trim_start_matches("sqlite://")).with_extension("db-wal");
    assert!(wal.exists(), "journal_mode = WAL");
    // page_size = 1024 for a new database: the file header (offset 16,
    // big-endian u16) or, before the first checkpoint, the WAL header
    // (offset 8, big-endian u32) says so.
    let main = std::fs::read(db.url().trim_start_matches("sqlite://")).unwrap();
    let page_size = if main.len() >= 100 {
        u32::from(u16::from_be_bytes([main[16], main[17]]))
    } else {
        let wal = std::fs::read(&wal).unwrap();
        u32::from_be_bytes([wal[8], wal[9], wal[10], wal[11]])
    };
    assert_eq!(page_size, 1024);
}

#[test]
fn bad_postgres_password_surfaces_the_real_error() {
    // Skipped on purpose only under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(url) = postgres_url() else {
        return;
    };
    // Replace the password with a wrong one.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let bad = format!("{scheme}://{user}:definitely-wrong@{host}");
    match Store::connect(&config(&bad)) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("password authentication failed"), "{msg}");
            assert!(!msg.contains("definitely-wrong"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ping_and_backend_on_every_backend() {
    for db in backends() {
        db.store().ping().unwrap();
        assert_eq!(db.store().backend(), db.backend());
    }
}

#[test]
fn pool_checkout_timeout_is_unavailable() {
    for db in backends() {
        let store = Store::connect(&StoreConfig {
            url: db.url().to_owned(),
            pool_size: 1,
            connect_timeout: Duration::from_millis(300),
        })
        .unwrap();
        // The only connection is held by the outer closure.
        let inner = store.read(|_| Ok(store.read(|_| Ok(())))).unwrap();
        assert!(
            matches!(inner, Err(StoreError::Unavailable(_))),
            "{}: {inner:?}",
            db.backend()
        );
        let inner = store.write(|_| Ok(store.write(|_| Ok(())))).unwrap();
        assert!(
            matches!(inner, Err(StoreError::Unavailable(_))),
            "{}: {inner:?}",
            db.backend()
        );
        // Released connections are usable again.
        store.ping().unwrap();
        store.write(|_| Ok(())).unwrap();
    }
}

/// PostgreSQL: the server process behind the pool's one connection is
/// terminated (a database restart, a failover): the requests that find
/// the dead connection get `Unavailable` (503, retry later), the create
/// batch's fallback of running each write alone on it included, never
/// `Internal`; and the store goes on with a new connection.
#[test]
fn a_lost_postgres_connection_is_unavailable_then_replaced() {
    use diesel::prelude::*;
    use scim_store::changes::Actor;
    // PostgreSQL-only (SQLite has no connection to lose); skipped on
    // purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(db) = scim_store::testing::TestDb::postgres() else {
        return;
    };
    db.store()
        .write(|c| {
            scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "cli:test", &[])
                .map(|_| ())
        })
        .unwrap();
    let store = Store::connect(&StoreConfig {
        pool_size: 1,
        ..config(db.url())
    })
    .unwrap();
    let create = |name: &str| {
        store
            .queue_insert_user(
                crate::attrs(serde_json::json!({ "userName": name })),
                None,
                Actor::cli("test"),
            )
            .wait()
    };
    create("before").unwrap();
    // Every other server process of this database, waited for until it
    // has exited (PostgreSQL 14+: the second argument, in ms).
    let terminated: Vec<bool> = db
        .store()
        .read(|c| {
            Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ))
            .load(c)?)
        })
        .unwrap();
    assert!(terminated.iter().any(|t| *t), "{terminated:?}");
    let during = create("during");
    assert!(
        matches!(during, Err(StoreError::Unavailable(_))),
        "{during:?}"
    );
    // The dead connection is gone from the pool: the next write and read
    // open a new one.
    create("after").unwrap();
    store.ping().unwrap();
}

/// Set in the child processes of
/// `a_process_ends_cleanly_while_postgresql_connections_are_being_opened`.
const EXIT_WHILE_CONNECTING: &str = "SCIMD_TEST_EXIT_WHILE_CONNECTING";

/// r2d2 opens connections on threads of its own, so a process can end
/// while one is being opened. OpenSSL's and Kerberos's exit-time clean-up
/// then pulled libpq's state from under that thread: the process crashed
/// after its work was done (SIGSEGV, or an abort), about 1 exit in 7 here
/// without `connection::pg_establish`'s precautions. This test runs itself
/// as a child process, whose threads keep opening connections while the
/// test harness returns; every child must exit cleanly.
#[test]
fn a_process_ends_cleanly_while_postgresql_connections_are_being_opened() {
    let Some(url) = postgres_url() else {
        return;
    };
    if std::env::var_os(EXIT_WHILE_CONNECTING).is_some() {
        let (opened, first) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let url = url.clone();
            let opened = opened.clone();
            std::thread::spawn(move || loop {
                let _ = scim_store::connection::pg_establish(&url);
                let _ = opened.send(());
            });
        }
        // Every thread is connecting by the time the process ends.
        for _ in 0..4 {
            first.recv().unwrap();
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for run in 0..40 {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "connect::a_process_ends_cleanly_while_postgresql_connections_are_being_opened",
                "--test-threads=1",
            ])
            .env(EXIT_WHILE_CONNECTING, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child {run} ended with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
