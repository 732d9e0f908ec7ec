//! What a newcomer meets first, through the real binary: `GET /`, the log
//! on a pipe, a port already in use, invalid log settings, and `/readyz`
//! during a database outage.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scim_store::testing::TestDb;

use super::{databases, log_text, raw, run, scimd, Server};

#[test]
fn the_root_sends_browsers_to_the_console_and_clients_to_the_scim_base() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let server = Server::start(&url);
        // Chromium's navigation Accept header.
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        let (status, headers, _) = raw(
            &server,
            &format!("GET / HTTP/1.1\r\nAccept: {browser}\r\n"),
            "",
        );
        assert_eq!(status, 302, "{headers}");
        assert!(
            headers.to_ascii_lowercase().contains("location: /admin/"),
            "{headers}"
        );

        for accept in [
            "*/*",
            "application/scim+json",
            "application/json, text/html;q=0.5",
        ] {
            let (status, headers, body) = raw(
                &server,
                &format!("GET / HTTP/1.1\r\nAccept: {accept}\r\n"),
                "",
            );
            assert_eq!(status, 200, "{accept}: {headers}");
            let hint: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                hint["scim_base_url"], "http://127.0.0.1/scim/v2",
                "{accept}: {body}"
            );
            assert_eq!(hint["console"], "http://127.0.0.1/admin/");
            assert_eq!(hint["documentation"], "http://127.0.0.1/docs/");
        }
        // No Accept header at all (a bare `curl`): the JSON hint.
        assert_eq!(server.http("GET", "/", None, None).0, 200);
    }
}

#[test]
fn the_log_on_a_pipe_has_no_colours_and_the_setup_code_copies_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let mut server = Server::start_with(&url, &[("SCIMD__LOG__LEVEL", "info")]);
    assert_eq!(server.http("GET", "/healthz", None, None).0, 200);
    server.terminate();
    let log = log_text(&mut server);
    assert!(log.contains("scimd listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a piped log: {log:?}"
    );
    // The code stands alone between spaces: a double-click selects it and
    // nothing else, and it works as it is in the setup page.
    let line = log
        .lines()
        .find(|l| l.contains("one-time setup code"))
        .unwrap_or_else(|| panic!("no setup code line in {log}"));
    let code = line
        .split("one-time setup code ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(
        code.len() >= 16
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{code:?} in {line}"
    );
}

#[test]
fn a_port_in_use_stops_startup_before_anything_is_logged_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    for (url, db) in databases(dir.path()) {
        let out = run(scimd(&url)
            .env("SCIMD__LOG__LEVEL", "info")
            .env("SCIMD__SERVER__BIND", addr.to_string())
            .arg("serve"));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&addr.to_string()), "{err}");
        assert!(err.contains("server.bind"), "{err}");
        assert!(err.to_ascii_lowercase().contains("in use"), "{err}");
        // Exactly one line: the error; no "listening", no setup code.
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        // Nothing was written: the SQLite file was never created (the
        // PostgreSQL test database exists already, made by its helper).
        if db.is_none() {
            assert!(!dir.path().join("scimd.db").exists());
        }
    }
    drop(taken);
}

#[test]
fn invalid_log_settings_list_the_allowed_values() {
    let out = run(scimd("sqlite://x.db")
        .env("SCIMD__LOG__LEVEL", "loud")
        .arg("migrate"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.level"), "{err}");
    assert!(err.contains("trace, debug, info, warn, error"), "{err}");

    let out = run(scimd("sqlite://x.db")
        .env("SCIMD__LOG__FORMAT", "yaml")
        .arg("migrate"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log.format: \"yaml\" is not a log format; use \"human\" or \"json\""),
        "{err}"
    );
}

/// A TCP proxy in front of PostgreSQL that the test can cut: every open
/// connection is shut down and the port stops listening, as when the
/// database server goes away.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    open: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub(crate) fn start(upstream: String) -> Proxy {
        Self::start_on(0, upstream)
    }

    pub(crate) fn start_on(port: u16, upstream: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (open2, streams2) = (Arc::clone(&open), Arc::clone(&streams));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if !open2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut kept = streams2.lock().unwrap();
                // Cut while this one was being connected (`cut` closes
                // `open` before it takes the lock): it must not live on.
                if !open2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    break;
                }
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
            // The listener is dropped here: the port refuses connections.
        });
        Proxy {
            port,
            open,
            streams,
        }
    }

    /// Cuts every connection and stops listening.
    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        // Wakes the accept loop, which then drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Until the accept loop has let go of the port, a connection
        // would still be accepted; wait for the refusal.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the proxy did not close");
            std::thread::yield_now();
        }
    }
}

/// `host:port` of a `postgres://user:pw@host:port/db` URL.
pub(crate) fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit('@').next().unwrap();
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

#[test]
fn readyz_answers_503_at_once_while_postgres_is_down_recovers_and_the_log_stays_calm() {
    // PostgreSQL-only; skipped on purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let proxy = Proxy::start(host_port(db.url()));
    let via_proxy = db.url().replacen(
        &host_port(db.url()),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    );
    // A long connect timeout: /readyz must not wait for it.
    let mut server = Server::start_with(
        &via_proxy,
        &[
            ("SCIMD__DATABASE__CONNECT_TIMEOUT_SECS", "30"),
            ("SCIMD__LOG__LEVEL", "warn"),
        ],
    );
    assert_eq!(server.http("GET", "/readyz", None, None).0, 200);

    proxy.cut();
    // Several probes, as a load balancer sends them; each one answers 503
    // long before the 30 s connect timeout (the checkout waits at most
    // READY_CHECKOUT_TIMEOUT, 500 ms).
    for _ in 0..6 {
        let start = Instant::now();
        let (status, body) = server.http("GET", "/readyz", None, None);
        let took = start.elapsed();
        assert_eq!(status, 503, "{body}");
        assert!(took < Duration::from_secs(3), "/readyz took {took:?}");
    }
    assert_eq!(
        scimd::READY_CHECKOUT_TIMEOUT,
        Duration::from_millis(500),
        "docs/ and this test say 500 ms"
    );
    // The database comes back on the same address: readiness follows.
    // Recovery is only visible by asking; a 503 takes up to the 500 ms
    // checkout wait, which paces the questions.
    let again = Proxy::start_on(proxy.port, host_port(db.url()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.http("GET", "/readyz", None, None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 503 after the database came back"
        );
    }
    server.terminate();
    again.cut();
    let log = log_text(&mut server);
    let connect_errors = log
        .lines()
        .filter(|l| l.contains("cannot open a database connection"))
        .count();
    // r2d2 retries each missing connection every few hundred ms; one line
    // per 10 s is logged (a slow run may straddle one interval boundary).
    assert!(
        (1..=2).contains(&connect_errors),
        "{connect_errors} connection error lines:\n{log}"
    );
    // Each 503 is logged as a request line at ERROR, and how many the
    // recovery loop asks for depends on the machine's speed: the calm is
    // in the rest (no line per retry, no line per request's checkout).
    let error_lines = log
        .lines()
        .filter(|l| l.contains("ERROR") && !l.contains("path=/readyz status=503"))
        .count();
    assert!(error_lines <= 6, "{error_lines} ERROR lines:\n{log}");
    drop(proxy);
}
