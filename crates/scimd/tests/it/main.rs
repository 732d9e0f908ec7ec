//! Tests of the real `scimd` binary: configuration errors, the token CLI,
//! health and readiness, SCIM over a real socket, and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admins;
mod browser;
mod cli_actor;
mod cli_output;
mod copy;
mod events;
mod extensions;
mod files;
mod metrics;
mod oauth;
mod openapi;
mod organizations;
mod provisioning;
mod rate_limit;
mod replicas;
mod rough_edges;
mod slow_clients;
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn scimd(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimd"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SCIMD__DATABASE__URL", db_url)
        .env("SCIMD__AUTH__TOKEN_CACHE_TTL_SECS", "0")
        .env("SCIMD__LOG__LEVEL", "warn");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `scimd serve` child process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    /// Its log (stderr), a line at a time, read on a thread of its own so
    /// that the pipe never fills; `None` once a test took it. (In a
    /// mutex: tests share a `&Server` between threads.)
    log: Mutex<Option<Receiver<String>>>,
    /// The lines [`Server::wait_ready`] read, handed on by [`log_lines`].
    read: Vec<String>,
}

/// The log level the servers run at: quiet, except for scimd's own info
/// lines (`scimd listening`, the purge), which the tests wait for; not a
/// line per request.
const LOG_LEVEL: &str = "warn,scimd=info,scimd::logging=warn";

impl Server {
    fn start(db_url: &str) -> Server {
        Self::start_with(db_url, &[])
    }

    /// [`Server::start`] with extra environment variables.
    fn start_with(db_url: &str, env: &[(&str, &str)]) -> Server {
        let mut server = Self::spawn(db_url, env);
        server.wait_ready();
        server
    }

    /// Starts `scimd serve` without waiting for it to listen. A
    /// `SCIMD__LOG__LEVEL` in `env` gets `scimd=info` added, so that
    /// [`Server::wait_ready`] sees the `scimd listening` line.
    fn spawn(db_url: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let level = env
            .iter()
            .find(|(k, _)| *k == "SCIMD__LOG__LEVEL")
            .map_or(LOG_LEVEL.to_owned(), |(_, v)| format!("{v},scimd=info"));
        let child = scimd(db_url)
            .envs(env.iter().copied())
            .env("SCIMD__LOG__LEVEL", level)
            .env("SCIMD__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("SCIMD__SERVER__WORKERS", "2")
            .env("SCIMD__SERVER__SHUTDOWN_TIMEOUT_SECS", "10")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Server::of(child, port)
    }

    /// A server started by the test itself, with its stderr piped and
    /// scimd's info lines logged.
    fn of(mut child: Child, port: u16) -> Server {
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            port,
            log: Mutex::new(Some(rx)),
            read: Vec::new(),
        }
    }

    /// Waits until the server logs `scimd listening` (its socket is bound
    /// before that line is written), then until it answers one request:
    /// by then its signal handlers are in place.
    fn wait_ready(&mut self) {
        let lines = self
            .log
            .get_mut()
            .unwrap()
            .as_ref()
            .expect("the log was taken");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.contains("scimd listening");
                    self.read.push(line);
                    if ready {
                        break;
                    }
                }
                Err(e) => panic!("scimd did not start ({e}); its log: {:#?}", self.read),
            }
        }
        let (status, body) = self.http("GET", "/healthz", None, None);
        assert_eq!(status, 200, "{body}");
    }

    fn try_http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/scim+json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        stream.write_all(req.as_bytes())?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        Ok(parse_response(&raw))
    }

    fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        self.try_http(method, path, token, body).unwrap()
    }

    /// Sends SIGTERM and waits for the process to exit; fails (and kills
    /// it) if it is still running 30 s later.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let (exited, watched) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let late = matches!(
                watched.recv_timeout(Duration::from_secs(30)),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if late {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            late
        });
        let status = self.child.wait().unwrap();
        let _ = exited.send(());
        assert!(!watchdog.join().unwrap(), "scimd did not stop within 30 s");
        status
    }
}

/// The server's log lines, as they come, from its start: the lines
/// [`Server::wait_ready`] read, then the rest.
fn log_lines(server: &mut Server) -> Receiver<String> {
    let rest = server
        .log
        .get_mut()
        .unwrap()
        .take()
        .expect("the log was taken");
    let (tx, rx) = mpsc::channel();
    for line in server.read.drain(..) {
        tx.send(line).unwrap();
    }
    std::thread::spawn(move || {
        for line in rest {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The whole log of a server that has exited.
fn log_text(server: &mut Server) -> String {
    let mut text = String::new();
    for line in log_lines(server) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Waits for the log line containing `needle`.
fn wait_for_log(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_response(raw: &str) -> (u16, String) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Bodies may be chunked; keep only the JSON object.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b >= a => body[a..=b].to_string(),
        _ => body.to_string(),
    };
    (status, body)
}

/// The database URLs to run against: a fresh SQLite file, and a fresh
/// PostgreSQL database (`TestDb::postgres`: missing only under
/// `SCIMD_TEST_SQLITE_ONLY=1`).
fn databases(dir: &Path) -> Vec<(String, Option<scim_store::testing::TestDb>)> {
    let mut out = vec![(format!("sqlite://{}", dir.join("scimd.db").display()), None)];
    if let Some(db) = scim_store::testing::TestDb::postgres() {
        out.push((db.url().to_string(), Some(db)));
    }
    out
}

fn create_token(db_url: &str, name: &str) -> (String, String) {
    let out = run(scimd(db_url).args(["token", "create", "--name", name]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout
        .lines()
        .find(|l| l.starts_with("scimd_"))
        .expect("secret printed")
        .to_string();
    let id = stdout
        .split_whitespace()
        .nth(2)
        .expect("id printed")
        .to_string();
    (id, secret)
}

const IDP_PEM: &str = include_str!("../../../scim-admin/tests/fixtures/idp-signing.pem");

/// Configures SAML and enables User Synchronization through the CLI, as an
/// operator automating a deployment would.
fn enable_sync(db_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("idp.pem");
    std::fs::write(&pem, IDP_PEM).unwrap();
    let out = run(scimd(db_url)
        .args(["saml", "set", "--entity-id", "https://sts.windows.net/t/"])
        .args(["--sso-url", "https://login.microsoftonline.com/t/saml2"])
        .arg("--certificate")
        .arg(&pem));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(scimd(db_url).args(["sync", "enable", "--accept-cautions"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_configuration_stops_startup_naming_the_key() {
    let out = run(scimd("mysql://localhost/db").arg("migrate"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database.url"), "{err}");

    let out = run(scimd("sqlite://x.db")
        .env("SCIMD__SERVER__BIND", "nowhere")
        .arg("serve"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[maintenance]\npurge_interval_secs = 1\n").unwrap();
    let out = run(scimd("sqlite://x.db")
        .arg("--config")
        .arg(&file)
        .arg("migrate"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("maintenance.purge_interval_secs"));

    // The page sizes moved to the run-time settings: the message says so.
    std::fs::write(&file, "[scim]\nmax_page_size = 10\n").unwrap();
    let out = run(scimd("sqlite://x.db")
        .arg("--config")
        .arg(&file)
        .arg("migrate"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scim.max_page_size"), "{err}");
    assert!(err.contains("run-time settings"), "{err}");
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for (url, db) in databases(dir.path()) {
        let out = run(scimd(&url).arg("migrate"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if db.is_none() {
            // A fresh SQLite file (the PostgreSQL test database comes migrated).
            assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));
        }
        let out = run(scimd(&url).arg("migrate"));
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    }
}

#[test]
fn tokens_from_the_cli_open_the_scim_api_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let (id, secret) = create_token(&url, "Entra ID");
        enable_sync(&url);
        let out = run(scimd(&url).args(["token", "list"]));
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            listing.contains(&id) && listing.contains("Entra ID"),
            "{listing}"
        );
        assert!(!listing.contains(&secret), "the secret is never listed");

        let server = Server::start(&url);
        // Health needs no token; everything SCIM does.
        assert_eq!(server.http("GET", "/healthz", None, None).0, 200);
        assert_eq!(server.http("GET", "/readyz", None, None).0, 200);
        assert_eq!(server.http("GET", "/scim/v2/Users", None, None).0, 401);
        // Test Connection.
        let (status, body) = server.http(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22b3c1a2f9-0000-4000-8000-000000000000%22",
            Some(&secret),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["totalResults"], 0);
        let (status, body) = server.http(
            "POST",
            "/scim/v2/Users",
            Some(&secret),
            Some(r#"{"userName":"cli@example.com"}"#),
        );
        assert_eq!(status, 201, "{body}");
        // Unknown routes outside the API are SCIM 404s too.
        let (status, body) = server.http("GET", "/nope", None, None);
        assert_eq!(status, 404);
        assert!(body.contains("urn:ietf:params:scim:api:messages:2.0:Error"));

        let out = run(scimd(&url).args(["token", "revoke", &id]));
        assert!(out.status.success());
        assert_eq!(
            server.http("GET", "/scim/v2/Users", Some(&secret), None).0,
            401
        );
        let out = run(scimd(&url).args(["token", "revoke", "no-such-id"]));
        assert!(!out.status.success());
    }
}

#[test]
fn malformed_http_is_logged_as_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let mut server = Server::start(&url);
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..],
        b"GET /scim/v2/Users HTTP/1.1\r\nHost x\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    }
    // The server is still well.
    assert_eq!(server.http("GET", "/healthz", None, None).0, 200);
    assert!(server.terminate().success());
    let log = log_text(&mut server);
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(
        log.matches("client connection: stream error").count(),
        3,
        "{log}"
    );
    assert!(log.contains("WARN"), "{log}");
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body, or an
/// interim `100 Continue`), leaving the connection open.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let (_, secret) = create_token(&url, "shutdown");
    enable_sync(&url);
    // actix-server logs at info when SIGTERM starts the graceful shutdown.
    let mut server = Server::start_with(&url, &[("SCIMD__LOG__LEVEL", "warn,actix_server=info")]);
    let lines = log_lines(&mut server);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // Start a request; `Expect: 100-continue` (RFC 9110 §10.1.1) makes the
    // server say when it has read the head and started the request.
    let body = r#"{"userName":"inflight@example.com","title":"Finishing"}"#;
    let (head, tail) = body.split_at(20);
    write!(
        stream,
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    assert_eq!(read_response(&mut stream).0, 100);
    // Only half of its body, then SIGTERM.
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    wait_for_log(&lines, "starting graceful shutdown");
    // The shutdown has begun; the request in flight still completes.
    stream.write_all(tail.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (status, resp) = parse_response(&raw);
    assert_eq!(status, 201, "{raw}");
    assert!(resp.contains("inflight@example.com"));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn sync_is_switched_from_the_cli_and_takes_effect_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let (_, secret) = create_token(&url, "Entra ID");
        let out = run(scimd(&url).args(["sync", "status"]));
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains("DISABLED") && text.contains("username-matching"),
            "{text}"
        );

        let server = Server::start(&url);
        let (status, body) = server.http("GET", "/scim/v2/Users", Some(&secret), None);
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("user synchronization is disabled"), "{body}");

        // Without --accept-cautions: the cautions are printed, nothing changes.
        let out = run(scimd(&url).args(["sync", "enable"]));
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("deletes-follow-policy"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--accept-cautions"));
        // Without SAML: a clear list of what is missing.
        let out = run(scimd(&url).args(["sync", "enable", "--accept-cautions"]));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("cannot be enabled yet")
                && err.contains("saml: SAML sign-in is not configured"),
            "{err}"
        );

        // A bad certificate is refused with the field named.
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let out = run(scimd(&url)
            .args([
                "saml",
                "set",
                "--entity-id",
                "e",
                "--sso-url",
                "https://x/sso",
                "--certificate",
            ])
            .arg(&bad));
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("certificate_pem"));

        enable_sync(&url);
        let out = run(scimd(&url).args(["sync", "status", "--json"]));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["enabled"], true);
        assert!(status["enabled_by"].as_str().unwrap().starts_with("cli:"));
        let out = run(scimd(&url).args(["saml", "show"]));
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains("Microsoft Azure Federated SSO Certificate"));

        // The running server sees the switch on its next request.
        assert_eq!(
            server.http("GET", "/scim/v2/Users", Some(&secret), None).0,
            200
        );
        let out = run(scimd(&url).args(["sync", "disable"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            server
                .http("GET", "/scim/v2/ServiceProviderConfig", Some(&secret), None)
                .0,
            403
        );
    }
}

#[test]
fn admin_create_reads_the_password_from_stdin_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let mut child = scimd(&url)
        .args(["admin", "create", "--username", "root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough passphrase\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created administrator root"));

    let file = dir.path().join("pw");
    std::fs::write(&file, "short\n").unwrap();
    let out = run(scimd(&url)
        .args(["admin", "create", "--username", "second", "--password-file"])
        .arg(&file));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password: must be at least 12"));
    std::fs::write(&file, "another long passphrase\n").unwrap();
    let out = run(scimd(&url)
        .args(["admin", "create", "--username", "ROOT", "--password-file"])
        .arg(&file));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// Sends a raw HTTP/1.1 request and returns the status, the headers and
/// the body.
fn raw(server: &Server, head: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{head}Host: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let (headers, _) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let (status, body) = parse_response(&out);
    (status, headers.to_string(), body)
}

#[test]
fn admin_and_scim_credentials_never_open_each_other() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let (_, scim_secret) = create_token(&url, "Entra ID");
        enable_sync(&url);
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "a long enough passphrase\n").unwrap();
        let out = run(scimd(&url)
            .args(["admin", "create", "--username", "root", "--password-file"])
            .arg(&pw));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = Server::start(&url);

        // Sign in: a session cookie and a CSRF token.
        let (status, headers, body) = raw(
            &server,
            "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
            r#"{"username":"root","password":"a long enough passphrase"}"#,
        );
        assert_eq!(status, 200, "{body}");
        let cookie = headers
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_string();
        // An admin API token.
        let (status, _, body) = raw(
            &server,
            &format!("POST /admin/api/v1/admin-tokens HTTP/1.1\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n"),
            r#"{"name":"ci"}"#,
        );
        assert_eq!(status, 201, "{body}");
        let admin_secret = serde_json::from_str::<serde_json::Value>(&body).unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            server
                .http("GET", "/admin/api/v1/sync", Some(&admin_secret), None)
                .0,
            200
        );

        // SCIM token on the admin API: 401. Admin token or session on SCIM: 401.
        assert_eq!(
            server
                .http("GET", "/admin/api/v1/sync", Some(&scim_secret), None)
                .0,
            401
        );
        assert_eq!(
            server
                .http("GET", "/scim/v2/Users", Some(&admin_secret), None)
                .0,
            401
        );
        let (status, _, _) = raw(
            &server,
            &format!("GET /scim/v2/Users HTTP/1.1\r\nCookie: {cookie}\r\n"),
            "",
        );
        assert_eq!(status, 401);
        assert_eq!(
            server
                .http("GET", "/scim/v2/Users", Some(&scim_secret), None)
                .0,
            200
        );

        // Disabling through the admin API takes effect on the next SCIM request.
        let (status, _, _) = raw(
            &server,
            &format!("POST /admin/api/v1/sync/disable HTTP/1.1\r\nAuthorization: Bearer {admin_secret}\r\n"),
            "",
        );
        assert_eq!(status, 200);
        assert_eq!(
            server
                .http("GET", "/scim/v2/Users", Some(&scim_secret), None)
                .0,
            403
        );

        // The documents and Swagger UI are for administrators only.
        assert_eq!(server.http("GET", "/docs/", None, None).0, 303);
        assert_eq!(
            server.http("GET", "/docs/", Some(&admin_secret), None).0,
            200
        );
        assert_eq!(
            server
                .http("GET", "/scim/v2/openapi.json", Some(&scim_secret), None)
                .0,
            401
        );
        let (status, body) = server.http("GET", "/scim/v2/openapi.json", Some(&admin_secret), None);
        assert_eq!(status, 200);
        assert!(body.contains("scimd SCIM 2.0 API"));
        assert_eq!(
            server
                .http("GET", "/admin/api/openapi.json", Some(&admin_secret), None)
                .0,
            200
        );
    }
}

#[test]
fn the_setup_code_is_logged_once_while_no_admin_exists() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let mut server = Server::start(&url);
    let (_, body) = server.http("GET", "/admin/api/v1/setup", None, None);
    assert!(body.contains("\"required\":true"), "{body}");
    server.terminate();
    let log = log_text(&mut server);
    assert_eq!(log.matches("one-time setup code ").count(), 1, "{log}");
    assert!(log.contains("WARN"), "{log}");
}

/// Creates the user `live` and `n` soft-deleted ones (policy `soft`
/// first, User Synchronization enabled), and returns the store.
fn soft_deleted_users(url: &str, n: usize) -> scim_store::Store {
    use scim_store::settings::{get_runtime_settings, update_runtime_settings, Deprovisioning};
    let store = scim_store::Store::connect(&scim_store::StoreConfig {
        url: url.to_owned(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    store.migrate().unwrap();
    let current = store
        .read(|c| get_runtime_settings(c, scim_store::OrgId::DEFAULT))
        .unwrap();
    let mut values = current.values.clone();
    values.deprovisioning = Deprovisioning::Soft;
    store
        .write(|c| {
            update_runtime_settings(
                c,
                scim_store::OrgId::DEFAULT,
                &values,
                current.version,
                "test",
            )
        })
        .unwrap();
    scim_store::testing::enable_sync(&store, scim_store::OrgId::DEFAULT);
    let live = serde_json::json!({"userName": "live"});
    scim_store::testing::create_user(
        &store,
        scim_store::OrgId::DEFAULT,
        live.as_object().unwrap().clone(),
    )
    .wait()
    .unwrap();
    soft_delete_new_users(&store, "gone", n);
    store
}

/// Creates `n` users named `prefix{i}`, all queued before the first is
/// awaited, then soft-deletes them in one transaction.
fn soft_delete_new_users(store: &scim_store::Store, prefix: &str, n: usize) {
    let created: Vec<_> = (0..n)
        .map(|i| {
            let attrs = serde_json::json!({"userName": format!("{prefix}{i}")});
            let attrs = attrs.as_object().unwrap().clone();
            scim_store::testing::create_user(store, scim_store::OrgId::DEFAULT, attrs)
        })
        .collect();
    let ids: Vec<String> = created.into_iter().map(|u| u.wait().unwrap().id).collect();
    store
        .write(|c| {
            for id in &ids {
                scim_store::soft_delete_user(c, scim_store::OrgId::DEFAULT, id, None)?;
            }
            Ok(())
        })
        .unwrap();
}

/// Sets the retention period as the admin API does.
fn set_retention(store: &scim_store::Store, days: i32) {
    use scim_store::settings::{get_runtime_settings, update_runtime_settings};
    let current = store
        .read(|c| get_runtime_settings(c, scim_store::OrgId::DEFAULT))
        .unwrap();
    let mut values = current.values.clone();
    values.soft_delete_retention_days = days;
    store
        .write(|c| {
            update_runtime_settings(
                c,
                scim_store::OrgId::DEFAULT,
                &values,
                current.version,
                "test",
            )
        })
        .unwrap();
}

/// Records `n` change log rows at `at` (as the SCIM API would).
fn changes_at(store: &scim_store::Store, at: &str, n: usize) {
    use scim_store::changes::{record, Actor, Event, NewChange};
    let rows: Vec<NewChange> = (0..n)
        .map(|i| NewChange::new(Event::UserCreated, "User", Some(&format!("u{i}"))))
        .collect();
    store
        .write(|c| record(c, &Actor::cli("test"), at, &rows))
        .unwrap();
}

#[test]
fn purge_from_the_cli_removes_expired_soft_deleted_users() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let store = soft_deleted_users(&url, 3);
        let created = store
            .read(|c| scim_store::changes::read_after(c, 0, 10))
            .unwrap()
            .len();
        // Past the change log's retention (90 days), and within it.
        changes_at(&store, "2000-01-01T00:00:00.000Z", 2);
        changes_at(&store, &scim_core::datetime::now(), 1);
        // Within the retention period (30 days): nothing to purge.
        let out = run(scimd(&url).arg("purge"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "purged 0 soft-deleted users\npurged 2 change log entries past the retention"
        );
        let left = store
            .read(|c| scim_store::changes::read_after(c, 0, 10))
            .unwrap();
        assert_eq!(left.len(), created + 1, "{url}");
        assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 3);
        // The retention period is read at purge time.
        set_retention(&store, 0);
        let out = run(scimd(&url).arg("purge"));
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "purged 3 soft-deleted users\npurged 0 change log entries past the retention",
            "{url}"
        );
        assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 0);
        assert_eq!(store.read(scim_store::count_users).unwrap(), 1);
    }
}

#[test]
fn serve_purges_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let store = soft_deleted_users(&url, 2);
        set_retention(&store, 0);
        changes_at(&store, "2000-01-01T00:00:00.000Z", 3);
        // The first run is at startup.
        let mut server =
            Server::start_with(&url, &[("SCIMD__MAINTENANCE__PURGE_INTERVAL_SECS", "60")]);
        let lines = log_lines(&mut server);
        let line = wait_for_log(&lines, "purged soft-deleted users");
        assert!(line.contains("purged=2"), "{line}");
        let line = wait_for_log(&lines, "purged expired change log entries");
        assert!(line.contains("purged=3"), "{line}");
        assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 0);
        assert_eq!(store.read(scim_store::count_users).unwrap(), 1);
        assert!(server.terminate().success());
    }
}

/// The committed SCIM OpenAPI document (hand-written in
/// crates/scim-admin/src/openapi/scim.rs) and the routes the binary serves
/// must agree: every documented operation is served, and on every
/// documented path the methods it does not document are refused (404/405).
#[test]
fn the_scim_openapi_document_matches_the_served_routes() {
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/openapi/scim.json")).unwrap();
    assert_eq!(spec["servers"][0]["url"], "/scim/v2");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let _ = run(scimd(&url).arg("migrate"));
    enable_sync(&url);
    let (_, secret) = create_token(&url, "spec");
    let server = Server::start(&url);
    let created = |path: &str, body: &str| {
        let (status, body) = server.http("POST", path, Some(&secret), Some(body));
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let paths = spec["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, ops) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            // Fresh resources for each call: a DELETE must find something.
            let user = created(
                "/scim/v2/Users",
                &format!(r#"{{"userName":"u{checked}@example.com"}}"#),
            );
            let group = created(
                "/scim/v2/Groups",
                &format!(r#"{{"displayName":"g{checked}"}}"#),
            );
            checked += 1;
            let concrete = path
                .replace("/Users/{id}", &format!("/Users/{user}"))
                .replace("/Groups/{id}", &format!("/Groups/{group}"))
                .replace("/ResourceTypes/{name}", "/ResourceTypes/User")
                .replace(
                    "/Schemas/{id}",
                    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
                );
            assert!(!concrete.contains('{'), "unhandled parameter in {path}");
            let body = match method {
                "post" if path.ends_with(".search") => Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}"#.to_owned()),
                "post" if path == "/Bulk" => Some(format!(r#"{{"Operations":[{{"method":"POST","path":"/Users","bulkId":"b","data":{{"userName":"b{checked}@example.com"}}}}]}}"#)),
                "post" | "put" if path.starts_with("/Users") => Some(format!(r#"{{"userName":"n{checked}@example.com"}}"#)),
                "post" | "put" => Some(format!(r#"{{"displayName":"n{checked}"}}"#)),
                "patch" => Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"externalId","value":"x"}]}"#.to_owned()),
                _ => None,
            };
            let (status, answer) = server.http(
                &method.to_uppercase(),
                &format!("/scim/v2{concrete}"),
                Some(&secret),
                body.as_deref(),
            );
            if ops.get(method).is_some() {
                assert!(
                    (200..300).contains(&status),
                    "{method} {path} is documented but answered {status}: {answer}"
                );
                let documented = ops[method]["responses"]
                    .as_object()
                    .unwrap()
                    .contains_key(&status.to_string());
                assert!(
                    documented,
                    "{method} {path} answered {status}, which the document does not list"
                );
            } else {
                assert!(
                    status == 404 || status == 405,
                    "{method} {path} is not documented but answered {status}: {answer}"
                );
            }
        }
    }
    assert!(checked >= 50);
}

/// The change a request makes is recorded with the request id scimd
/// returns in `X-Request-Id` (its own, or the caller's when it is plain),
/// the client's address and the token, by name and id.
#[test]
fn the_change_log_records_the_request_id_scimd_returns() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let (token, secret) = create_token(&url, "Entra ID");
    enable_sync(&url);
    let server = Server::start(&url);
    let create = |name: &str, extra: &str| {
        let (status, headers, body) = raw(
            &server,
            &format!(
                "POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {secret}\r\n\
                 Content-Type: application/scim+json\r\n{extra}"
            ),
            &format!(r#"{{"userName":"{name}"}}"#),
        );
        assert_eq!(status, 201, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let request_id = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-request-id")
                    .then(|| v.trim().to_owned())
            })
            .expect("X-Request-Id returned");
        (id, request_id)
    };
    let (first, generated) = create("first@example.com", "");
    let (second, given) = create("second@example.com", "X-Request-Id: idp-42\r\n");
    assert_eq!(given, "idp-42");
    let store = scim_store::Store::connect(&scim_store::StoreConfig {
        url: url.clone(),
        pool_size: 1,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    let rows = store
        .read(|c| scim_store::changes::read_after(c, 0, 100))
        .unwrap();
    let created: Vec<_> = rows.iter().filter(|r| r.event == "user.created").collect();
    assert_eq!(created.len(), 2, "{rows:?}");
    for (row, (id, request_id)) in created.iter().zip([(first, generated), (second, given)]) {
        assert_eq!(row.resource_id.as_deref(), Some(id.as_str()));
        assert_eq!(row.request_id.as_deref(), Some(request_id.as_str()));
        assert_eq!(row.client_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.actor_kind, "scim_token");
        assert_eq!(row.actor_id.as_deref(), Some(token.as_str()));
        assert_eq!(row.actor_name.as_deref(), Some("Entra ID"));
    }
}
