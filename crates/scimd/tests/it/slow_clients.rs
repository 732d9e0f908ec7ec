//! Slow clients against the real binary: request bodies that trickle in
//! (bounded memory, `/healthz` unaffected, 408 at `server.body_timeout_secs`
//! in the format of each API) and the per-address connection cap
//! (`server.max_connections_per_address`).
//!
//! These run on SQLite only: no body here ever reaches the store (the
//! requests are refused before it), so no storage behaviour is tested and
//! the backend does not matter.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{create_token, enable_sync, parse_response, Server};

const MIB: u64 = 1024 * 1024;

/// A field of /proc/PID/status, in bytes (`VmRSS`, `VmHWM`).
fn vm_bytes(server: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/PID/status"));
    kib * 1024
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Sends a request head declaring `content_length` bytes and only the
/// first bytes of the body.
fn start_slow_request(stream: &mut TcpStream, head: &str, content_length: usize, first: &str) {
    write!(
        stream,
        "{head}Host: 127.0.0.1\r\nContent-Length: {content_length}\r\n\r\n{first}"
    )
    .unwrap();
}

/// Reads a response until the server closes the connection: a response
/// that leaves the connection open fails on the read timeout.
fn read_until_closed(stream: &mut TcpStream) -> (u16, String, String) {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("the server neither answered and closed, nor closed: {e}"));
    let out = String::from_utf8_lossy(&out).into_owned();
    let head = out.split_once("\r\n\r\n").map_or(&*out, |(h, _)| h);
    let head = head.to_ascii_lowercase();
    let (status, body) = parse_response(&out);
    (status, head, body)
}

/// Reads one response (head and `Content-Length` body) off a kept-alive
/// connection.
fn read_one_response(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return parse_response(&text).0;
            }
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed mid-response");
        buf.extend_from_slice(chunk.get(..n).unwrap());
    }
}

/// Whether a connection from `from` gets an answer to `GET /healthz`
/// (`false`: the server closed it without one).
fn admitted_from(server: &Server, from: Ipv4Addr) -> bool {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .unwrap_or_else(|e| panic!("binding {from}: {e}"));
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], server.port)).into())
        .unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) if out.is_empty() => false,
        Ok(_) => {
            assert_eq!(parse_response(&String::from_utf8_lossy(&out)).0, 200);
            true
        }
        Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
        Err(e) => panic!("GET /healthz from {from}: {e}"),
    }
}

#[test]
fn slow_bodies_pin_no_memory_leave_healthz_answering_and_get_408() {
    const CLIENTS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let (_, token) = create_token(&url, "idp");
    enable_sync(&url);
    let server = Server::start_with(
        &url,
        &[
            // Long enough that every slow request is still waiting when
            // /healthz is asked below; the test then waits this long for
            // the 408s.
            ("SCIMD__SERVER__BODY_TIMEOUT_SECS", "5"),
            ("SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "0"),
            // As deployed: the token is checked against the database once,
            // not by 200 blocking threads at once.
            ("SCIMD__AUTH__TOKEN_CACHE_TTL_SECS", "60"),
        ],
    );
    // A user created and read: the pools, the token check and the JSON
    // reader have all run once before the baseline is taken.
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"warm@example.com"}"#;
    let (status, body) = server.http("POST", "/scim/v2/Users", Some(&token), Some(user));
    assert_eq!(status, 201, "{body}");
    let (status, _) = server.http("GET", "/scim/v2/Users", Some(&token), None);
    assert_eq!(status, 200);
    let baseline = vm_bytes(&server, "VmRSS:");

    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\n"
    );
    let mut slow: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = connect(&server);
            start_slow_request(&mut stream, &head, 1_000_000, r#"{"schemas":"#);
            stream
        })
        .collect();

    // Health answers while the slow requests wait for their bodies.
    let (status, _) = server.http("GET", "/healthz", None, None);
    assert_eq!(status, 200);
    let held = vm_bytes(&server, "VmRSS:");
    for stream in &slow {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let pending = stream.peek(&mut byte);
        assert!(
            matches!(&pending, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "a slow request was answered before /healthz: {pending:?}"
        );
        stream.set_nonblocking(false).unwrap();
    }

    // At the deadline each gets a SCIM 408, and its connection is closed.
    for stream in &mut slow {
        let (status, head, body) = read_until_closed(stream);
        assert_eq!(status, 408, "{head}\n{body}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(head.contains("application/scim+json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], "408");
        assert!(body["detail"].as_str().unwrap().contains("5 seconds"));
    }
    // The peak covers the whole time the requests were held.
    let peak = vm_bytes(&server, "VmHWM:");
    println!(
        "RSS: baseline {} KiB, held {} KiB, peak {} KiB ({CLIENTS} slow bodies)",
        baseline / 1024,
        held / 1024,
        peak / 1024
    );
    assert!(
        held < baseline + 30 * MIB,
        "RSS grew from {baseline} to {held} bytes while {CLIENTS} slow bodies were held"
    );
    assert!(
        peak < baseline + 30 * MIB,
        "RSS peaked at {peak} bytes from a baseline of {baseline} with {CLIENTS} slow bodies"
    );
}

#[test]
fn a_late_body_gets_408_in_the_format_of_its_api() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let (_, token) = create_token(&url, "idp");
    enable_sync(&url);
    let server = Server::start_with(
        &url,
        &[
            ("SCIMD__SERVER__BODY_TIMEOUT_SECS", "1"),
            ("SCIMD__SERVER__MAX_BODY_BYTES", "2048"),
        ],
    );

    // The size limit holds on the form routes too (actix's own default
    // would have taken this body and waited for it).
    let mut large = connect(&server);
    start_slow_request(
        &mut large,
        "POST /oauth/token HTTP/1.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        4096,
        "grant_type=",
    );
    let (status, head, _) = read_until_closed(&mut large);
    assert_eq!(status, 413, "{head}");

    let mut scim = connect(&server);
    start_slow_request(
        &mut scim,
        &format!("PATCH /scim/v2/Users/x HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\n"),
        100,
        "{",
    );
    let mut admin = connect(&server);
    start_slow_request(
        &mut admin,
        "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
        100,
        r#"{"username":"#,
    );
    let mut oauth = connect(&server);
    start_slow_request(
        &mut oauth,
        "POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        100,
        "grant_type=",
    );

    let (status, head, body) = read_until_closed(&mut scim);
    assert_eq!(status, 408, "{head}\n{body}");
    assert!(head.contains("connection: close"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "408");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did not arrive within 1 seconds"),
        "{body}"
    );

    for stream in [&mut admin, &mut oauth] {
        let (status, head, body) = read_until_closed(stream);
        assert_eq!(status, 408, "{head}\n{body}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(head.contains("application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], 408);
        assert_eq!(body["error"], "request_timeout");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }

    // A prompt body is unaffected.
    let (status, _) = server.http("GET", "/scim/v2/Users", Some(&token), None);
    assert_eq!(status, 200);
}

#[test]
fn the_connection_cap_refuses_one_more_from_an_address_until_one_closes() {
    const CAP: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let server = Server::start_with(
        &url,
        &[
            ("SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "4"),
            // The held requests below must outlast the test.
            ("SCIMD__SERVER__BODY_TIMEOUT_SECS", "600"),
        ],
    );
    // CAP connections, each answered once (so the server has counted it)
    // and then held by a request whose body has not arrived.
    let body = "grant_type=client_credentials";
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut stream = connect(&server);
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            assert_eq!(read_one_response(&mut stream), 200);
            start_slow_request(
                &mut stream,
                "POST /oauth/token HTTP/1.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                body.len(),
                "grant_type=",
            );
            stream
        })
        .collect();

    let local = Ipv4Addr::new(127, 0, 0, 1);
    assert!(
        !admitted_from(&server, local),
        "connection {} from one address was admitted",
        CAP + 1
    );
    // The cap is per address: another one is still served.
    assert!(admitted_from(&server, Ipv4Addr::new(127, 0, 0, 2)));

    // One held request completes; the server answers and closes it.
    let first = held.first_mut().unwrap();
    first
        .write_all(body.get("grant_type=".len()..).unwrap().as_bytes())
        .unwrap();
    let (status, head, _) = read_until_closed(first);
    assert!((400..500).contains(&status), "{head}");
    // The client sees the close just before the server's worker drops the
    // connection and frees its place: ask until it is admitted (a refusal
    // is answered at once, so this waits on the server, never on a clock).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refusals = 0;
    while !admitted_from(&server, local) {
        refusals += 1;
        assert!(
            Instant::now() < deadline,
            "no place freed after a connection closed ({refusals} refusals)"
        );
    }
    drop(held);
}
