//! Built-in TLS against the real binary: HTTPS with a certificate the test
//! generates, SIGHUP swapping it for new connections while an open
//! keep-alive connection carries on, a bad file on reload keeping the
//! previous certificate, and the per-address connection cap counting TLS
//! connections.
//!
//! SQLite only: nothing here reaches the store.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{log_lines, wait_for_log, Server};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for `localhost`, written as PEM to `dir`
/// (through a rename, as a certificate renewal tool would).
fn write_certificate(dir: &Path) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("new.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("new.key"), key.serialize_pem()).unwrap();
    std::fs::rename(dir.join("new.key"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("new.crt"), dir.join("tls.crt")).unwrap();
    cert.der().clone()
}

#[expect(deprecated, reason = "scimd uses ring's provider, so does its client")]
fn client(roots: &[&CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

/// A TLS connection to the server on 127.0.0.1 from the local address
/// `from` (the connection cap counts per address).
fn connect_from(from: Ipv4Addr, port: u16, config: &Arc<ClientConfig>) -> Tls {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::clone(config), name).unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    StreamOwned::new(conn, tcp)
}

fn connect(port: u16, config: &Arc<ClientConfig>) -> Tls {
    connect_from(Ipv4Addr::LOCALHOST, port, config)
}

/// `GET /healthz` on a keep-alive connection: the status and the
/// certificate the server presented on this connection.
fn healthz(tls: &mut Tls) -> std::io::Result<(u16, CertificateDer<'static>)> {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    tls.flush()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cert = tls.conn.peer_certificates().unwrap()[0].clone();
    Ok((status, cert))
}

fn hangup(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_certificate(dir.path());
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let cert = dir.path().join("tls.crt").display().to_string();
    let key = dir.path().join("tls.key").display().to_string();
    let mut server = Server::spawn(
        &url,
        &[
            ("SCIMD__SERVER__TLS_CERT", &cert),
            ("SCIMD__SERVER__TLS_KEY", &key),
            ("SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "2"),
            ("SCIMD__LOG__LEVEL", "info"),
        ],
    );
    let lines = log_lines(&mut server);
    wait_for_log(&lines, "scimd listening");
    // The socket is bound before "listening" is logged.
    let trusts_first = client(&[&first]);
    let mut open = connect(server.port, &trusts_first);
    let (status, presented) = healthz(&mut open).unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, first);

    let second = write_certificate(dir.path());
    hangup(&server);
    wait_for_log(&lines, "TLS certificate reloaded");

    // A new connection gets the new certificate.
    let trusts_both = client(&[&first, &second]);
    let mut fresh = connect(server.port, &trusts_both);
    let (status, presented) = healthz(&mut fresh).unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, second);
    // The connection opened before the reload is still served, on the
    // session it negotiated with the first certificate.
    let (status, presented) = healthz(&mut open).unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, first);

    // The cap counts TLS connections too: `open` and `fresh` fill it, so a
    // third connection from this address is closed without an answer.
    let mut third = connect(server.port, &trusts_both);
    assert!(
        healthz(&mut third).is_err(),
        "a third TLS connection was served despite max_connections_per_address = 2"
    );
    drop((open, fresh, third));

    // A broken file on reload is logged, and the certificate in service stays.
    std::fs::write(dir.path().join("tls.crt"), "not a certificate\n").unwrap();
    hangup(&server);
    let line = wait_for_log(&lines, "TLS certificate not reloaded");
    assert!(line.contains("server.tls_cert"), "{line}");
    assert!(line.contains("holds no certificate"), "{line}");
    // From an address of its own: 127.0.0.1's closed connections leave
    // the cap only as the server notices them.
    let mut tls = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.port, &trusts_both);
    let (status, presented) = healthz(&mut tls).unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, second);
}

#[test]
fn an_unusable_certificate_stops_startup_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    write_certificate(other.path());
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let out = super::scimd(&url)
        .env("SCIMD__SERVER__BIND", "127.0.0.1:0")
        .env("SCIMD__SERVER__TLS_CERT", dir.path().join("tls.crt"))
        .env("SCIMD__SERVER__TLS_KEY", other.path().join("tls.key"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.tls_key"), "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
}

#[test]
fn sighup_without_tls_is_logged_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let mut server = Server::start_with(&url, &[("SCIMD__LOG__LEVEL", "info")]);
    let lines = log_lines(&mut server);
    hangup(&server);
    wait_for_log(&lines, "no TLS certificate configured");
    assert_eq!(server.http("GET", "/healthz", None, None).0, 200);
}
