//! What scimd leaves on disk: a private SQLite database (0600, with its
//! WAL and shared-memory files, in a 0700 directory) whatever the umask,
//! and `scimd backup FILE` while the server runs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{create_token, databases, free_port, run, scimd, Server};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_and_its_wal_are_private_whatever_the_umask() {
    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = data.join("scimd.db");
        let port = free_port();
        // `serve` keeps the database open, so its -wal and -shm exist.
        let child = Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" serve")])
            .arg(env!("CARGO_BIN_EXE_scimd"))
            .env_clear()
            .env("SCIMD__DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("SCIMD__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("SCIMD__SERVER__WORKERS", "1")
            .env("SCIMD__LOG__LEVEL", super::LOG_LEVEL)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = Server::of(child, port);
        server.wait_ready();
        assert_eq!(mode(&data), 0o700, "umask {umask}: the data directory");
        for file in ["scimd.db", "scimd.db-wal", "scimd.db-shm"] {
            assert_eq!(mode(&data.join(file)), 0o600, "umask {umask}: {file}");
        }
    }
}

#[test]
fn backup_copies_the_live_sqlite_database_and_points_postgres_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    for (url, pg) in databases(dir.path()) {
        let (id, _) = create_token(&url, "before the backup");
        let server = Server::start(&url);
        let file = dir.path().join(format!("backup-{}.db", free_port()));
        let out = run(Command::new("sh")
            .args(["-c", "umask 022 && exec \"$0\" backup \"$1\""])
            .arg(env!("CARGO_BIN_EXE_scimd"))
            .arg(&file)
            .env("SCIMD__DATABASE__URL", &url)
            .env("SCIMD__LOG__LEVEL", "warn"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if pg.is_some() {
            assert!(!out.status.success());
            assert!(stderr.contains("pg_dump"), "{stderr}");
            assert!(!file.exists());
            continue;
        }
        assert!(out.status.success(), "{stderr}");
        assert_eq!(mode(&file), 0o600);
        drop(server);
        let copy = format!("sqlite://{}", file.display());
        let out = run(scimd(&copy).args(["token", "list", "--json"]));
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains(&id), "{listing}");

        // Never over an existing file; a missing database is not created.
        let out = run(scimd(&url).arg("backup").arg(&file));
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
        let missing = dir.path().join("missing.db");
        let out = run(scimd(&format!("sqlite://{}", missing.display()))
            .arg("backup")
            .arg(dir.path().join("other.db")));
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no SQLite database"));
        assert!(!missing.exists());
    }
}
