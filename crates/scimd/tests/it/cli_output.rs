//! The CLI's output on a pipe whose reader has gone away (`scimd token
//! list | head -n1`, `scimd sync status | grep -q ENABLED`): the command
//! ends with status 0 and no panic, as if the reader had read everything;
//! a command that fails still fails, and says why on stderr.

use std::process::{Output, Stdio};

use super::{create_token, scimd};

/// Runs `scimd args` with standard output on a pipe whose read end is
/// closed before the process starts, so its first write fails with EPIPE.
fn into_closed_pipe(url: &str, args: &[&str], stderr: Stdio) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    scimd(url)
        .args(args)
        .stdout(writer)
        .stderr(stderr)
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap()
}

#[test]
fn a_reader_that_went_away_ends_a_command_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    create_token(&url, "Entra ID");
    for args in [
        &["token", "list"][..],
        &["token", "list", "--json"],
        &["sync", "status"],
        &["migrate"],
        &["purge"],
        &["--help"],
    ] {
        let out = into_closed_pipe(&url, args, Stdio::piped());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "scimd {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "scimd {args:?}: {stderr}");
        assert!(stderr.is_empty(), "scimd {args:?}: {stderr}");
    }
    // A command that fails still fails, with its message.
    let out = into_closed_pipe(&url, &["token", "revoke", "no-such-id"], Stdio::piped());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-id"), "{stderr}");
    // With stderr closed as well: still status 1, not a panic (101).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = into_closed_pipe(
        &url,
        &["token", "revoke", "no-such-id"],
        Stdio::from(writer),
    );
    assert_eq!(out.status.code(), Some(1));
}
