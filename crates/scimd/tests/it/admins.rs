//! `scimd admin …` through the real binary, on SQLite and PostgreSQL:
//! managing administrators, the last enabled one, and lifting a lockout
//! that the running server logged.

use std::io::Write;
use std::process::{Output, Stdio};

use super::{databases, log_text, raw, run, scimd, Server};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `scimd admin ARGS` with `stdin` on standard input (not a
/// terminal: the password is read from it, not prompted for).
fn admin_with_stdin(url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = scimd(url)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn admin(url: &str, args: &[&str]) -> Output {
    run(scimd(url).arg("admin").args(args))
}

fn sign_in(server: &Server, username: &str, password: &str) -> u16 {
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    raw(
        server,
        "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
        &body,
    )
    .0
}

#[test]
fn admin_commands_manage_administrators_but_never_the_last() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        ok(&admin_with_stdin(
            &url,
            &["create", "--username", "root"],
            "root's long passphrase\n",
        ));
        ok(&admin_with_stdin(
            &url,
            &["create", "--username", "alice"],
            "alice's long passphrase\n",
        ));
        let list = ok(&admin(&url, &["list"]));
        assert!(list.starts_with("USERNAME"), "{list}");
        assert_eq!(list.matches("enabled").count(), 2, "{list}");
        let json: serde_json::Value =
            serde_json::from_str(&ok(&admin(&url, &["list", "--json"]))).unwrap();
        assert_eq!(json[1]["username"], "alice");

        assert!(ok(&admin(&url, &["disable", "ALICE"])).contains("Disabled administrator alice"));
        let err = refused(&admin(&url, &["disable", "root"]));
        assert!(err.contains("last enabled administrator"), "{err}");
        let err = refused(&admin(&url, &["delete", "root"]));
        assert!(err.contains("last enabled administrator"), "{err}");
        assert!(ok(&admin(&url, &["list"])).contains("disabled"));
        ok(&admin(&url, &["enable", "alice"]));
        ok(&admin(&url, &["delete", "alice"]));
        let err = refused(&admin(&url, &["delete", "alice"]));
        assert!(err.contains("no administrator named \"alice\""), "{err}");

        let err = refused(&admin_with_stdin(
            &url,
            &["reset-password", "root"],
            "short\n",
        ));
        assert!(err.contains("password: must be at least 12"), "{err}");
        let out = ok(&admin_with_stdin(
            &url,
            &["reset-password", "root"],
            "root's new long passphrase\n",
        ));
        assert!(
            out.contains("Set a new password for administrator root"),
            "{out}"
        );
        let err = refused(&admin(&url, &["unlock"]));
        assert!(
            err.contains("required arguments were not provided"),
            "{err}"
        );
    }
}

/// Five wrong passwords lock `root` out from the test's address: the
/// server logs it at WARN (without the password), `scimd admin list`
/// shows it, and `scimd admin unlock root` lifts it at once.
#[test]
fn a_lockout_is_logged_shown_and_lifted_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        ok(&admin_with_stdin(
            &url,
            &["create", "--username", "root"],
            "root's long passphrase\n",
        ));
        let mut server = Server::start(&url);
        for _ in 0..5 {
            assert_eq!(sign_in(&server, "root", "a wrong guess 1234"), 401);
        }
        assert_eq!(sign_in(&server, "root", "root's long passphrase"), 429);
        let list = ok(&admin(&url, &["list"]));
        assert!(list.contains("127.0.0.1"), "{list}");
        let out = ok(&admin(&url, &["unlock", "root"]));
        assert!(out.contains("5 failed sign-ins forgotten"), "{out}");
        assert_eq!(sign_in(&server, "root", "root's long passphrase"), 200);
        // The address cap's unlock, for an address without failures.
        let out = ok(&admin(&url, &["unlock", "--address", "203.0.113.9"]));
        assert!(out.contains("0 failed sign-ins forgotten"), "{out}");
        server.terminate();
        let log = log_text(&mut server);
        let locked: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("sign-in locked for this account"))
            .collect();
        assert_eq!(locked.len(), 1, "{log}");
        assert!(
            locked[0].contains("WARN") && locked[0].contains("127.0.0.1"),
            "{log}"
        );
        assert!(!log.contains("a wrong guess"), "{log}");
    }
}

/// On a terminal (a pseudo-terminal the test opens; util-linux's `setsid
/// -c` makes it scimd's controlling terminal), `scimd admin create`
/// prompts for the password twice and does not echo it. Each answer is
/// typed once its prompt is shown and the terminal's echo is off, as a
/// person would type it.
#[test]
fn admin_create_prompts_without_echo_on_a_terminal() {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use rustix::termios::{tcgetattr, LocalModes};
    use std::io::Read;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut master = std::fs::File::from(master);
    let mut keyboard = master.try_clone().unwrap();
    // scimd's environment, as `scimd()` sets it.
    let mut child = std::process::Command::new("setsid")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SCIMD__DATABASE__URL", &url)
        .env("SCIMD__LOG__LEVEL", "warn")
        .args(["-c", env!("CARGO_BIN_EXE_scimd")])
        .args(["admin", "create", "--username", "tty"])
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal.try_clone().unwrap()))
        .spawn()
        .expect("util-linux's `setsid`");
    let mut seen = Vec::new();
    let mut read_until = |text: &str| {
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains(text) {
            assert_eq!(
                master.read(&mut byte).unwrap(),
                1,
                "{}",
                String::from_utf8_lossy(&seen)
            );
            seen.push(byte[0]);
        }
    };
    // The prompt is written just before the echo is turned off: wait for
    // that state, which the terminal reports.
    let echo_off = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tcgetattr(&terminal)
            .unwrap()
            .local_modes
            .contains(LocalModes::ECHO)
        {
            assert!(Instant::now() < deadline, "the echo stayed on");
            std::thread::yield_now();
        }
    };
    read_until("New password for tty: ");
    echo_off();
    keyboard.write_all(b"a secret tty passphrase\n").unwrap();
    read_until("The same password again: ");
    echo_off();
    keyboard.write_all(b"a secret tty passphrase\n").unwrap();
    read_until("Created administrator tty");
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&seen);
    assert!(!shown.contains("a secret tty passphrase"), "{shown}");
    assert!(ok(&admin(&url, &["list"])).contains("tty"));
}

/// Roles from the shell: an organization administrator created with
/// `--role organization --org`, given and losing organizations with
/// `grant` and `revoke`, made an instance administrator with `role`; the
/// last instance administrator keeps its role.
#[test]
fn admin_roles_are_set_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        ok(&admin_with_stdin(
            &url,
            &["create", "--username", "root"],
            "root's long passphrase\n",
        ));
        for slug in ["acme", "globex"] {
            ok(&run(
                scimd(&url).args(["org", "create", slug, "--name", slug])
            ));
        }
        let out = ok(&admin_with_stdin(
            &url,
            &[
                "create",
                "--username",
                "olga",
                "--role",
                "organization",
                "--org",
                "acme",
            ],
            "olga's long passphrase\n",
        ));
        assert!(
            out.contains("an organization administrator of acme"),
            "{out}"
        );
        let out = ok(&admin(&url, &["grant", "olga", "--org", "globex"]));
        assert!(
            out.contains("organization administrator of acme, globex"),
            "{out}"
        );
        let out = ok(&admin(&url, &["revoke", "olga", "--org", "acme"]));
        assert!(
            out.contains("organization administrator of globex"),
            "{out}"
        );
        let err = refused(&admin(&url, &["revoke", "olga", "--org", "globex"]));
        assert!(err.contains("at least one organization"), "{err}");
        let err = refused(&admin(&url, &["grant", "olga", "--org", "nope"]));
        assert!(err.contains("no organization \"nope\""), "{err}");
        let list = ok(&admin(&url, &["list"]));
        assert!(list.contains("organization: globex"), "{list}");
        let err = refused(&admin(&url, &["role", "root", "organization"]));
        assert!(err.contains("last enabled administrator"), "{err}");
        let out = ok(&admin(&url, &["role", "olga", "instance"]));
        assert!(
            out.contains("olga is now an instance administrator"),
            "{out}"
        );
        let err = refused(&admin(&url, &["grant", "olga", "--org", "acme"]));
        assert!(err.contains("instance administrator"), "{err}");
    }
}
