//! SCIM events pushed by the real `scimd serve` to a real receiver on
//! 127.0.0.1: a `kill -9` in the middle of a push loses nothing (after a
//! restart every event arrives at least once), and two replicas on one
//! PostgreSQL deliver each event once in the normal case.
//!
//! Changes are recorded into the database with scim-store directly while
//! scimd runs (delivery reads the change log, whoever wrote it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scim_store::changes::{record, Actor, Event, NewChange};
use scim_store::events::streams;
use scim_store::events::{Alg, Delivery, Mode, NewStream};
use scim_store::{Store, StoreConfig};
use serde_json::Value;

use super::{databases, Server};

/// How long to wait for the receiver to get what it expects: generous,
/// for a busy machine (a bound, not a pause: each arrival ends the wait).
const DEADLINE: Duration = Duration::from_secs(60);

/// A push receiver on 127.0.0.1 (a thread per connection): answers 202,
/// except that the push numbered `hold_at` (counting from 1) is held
/// unanswered, announced on `held`.
struct Receiver_ {
    url: String,
    /// The position of every SET received, in arrival order.
    got: Receiver<i64>,
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

/// The change_log position in a SET's `jti` (`<stream>:<position>`).
fn position(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let jti = claims["jti"].as_str().unwrap();
    jti.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn start_receiver(hold_at: usize) -> (Receiver_, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/events",
        listener.local_addr().unwrap().port()
    );
    let (got_tx, got) = mpsc::channel::<i64>();
    let (held_tx, held) = mpsc::channel::<()>();
    let count = Arc::new(AtomicUsize::new(0));
    let held_tx = Arc::new(Mutex::new(held_tx));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (got_tx, count, held_tx): (Sender<i64>, _, _) =
                (got_tx.clone(), count.clone(), held_tx.clone());
            std::thread::spawn(move || {
                let Some(token) = read_request(&mut stream) else {
                    return;
                };
                let n = count.fetch_add(1, Ordering::AcqRel) + 1;
                if n == hold_at {
                    // Never answered: the sender dies with it.
                    let _ = held_tx.lock().unwrap().send(());
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest);
                    return;
                }
                let _ = got_tx.send(position(&token));
                let _ = stream.write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (Receiver_ { url, got }, held)
}

fn open(url: &str) -> Store {
    let store = Store::connect(&StoreConfig {
        url: url.to_owned(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    store.migrate().unwrap();
    store
}

fn push_stream(store: &Store, url: &str) -> String {
    let new = NewStream {
        name: "app".into(),
        delivery: Delivery::Push,
        endpoint_url: Some(url.into()),
        authorization: None,
        audience: "https://app.example.com".into(),
        issuer: None,
        event_types: vec![],
        resource_types: vec![],
        mode: Mode::Full,
        alg: Alg::Es256,
    };
    store
        .write(|c| {
            streams::create_stream(
                c,
                scim_store::OrgId::DEFAULT,
                &new,
                &scim_core::datetime::now(),
            )
        })
        .unwrap()
        .stream
        .id
}

/// Records `n` user creations, one transaction each; returns their positions.
fn record_users(store: &Store, from: usize, n: usize) -> Vec<i64> {
    (from..from + n)
        .map(|i| {
            store
                .write(|c| {
                    let id = format!("user-{i}");
                    record(
                        c,
                        &Actor::cli("tests"),
                        &scim_core::datetime::now(),
                        &[NewChange::new(Event::UserCreated, "User", Some(&id))
                            .data(format!(r#"{{"id":"{id}","userName":"{id}"}}"#))],
                    )?;
                    scim_store::changes::last_position(c)
                })
                .unwrap()
        })
        .collect()
}

/// Receives until every position of `want` has arrived; returns how many
/// times each arrived.
fn receive_all(got: &Receiver<i64>, want: &[i64]) -> BTreeMap<i64, usize> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    while !want.iter().all(|p| seen.contains_key(p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match got.recv_timeout(left) {
            Ok(p) => *seen.entry(p).or_default() += 1,
            Err(e) => panic!("missing events ({e}): got {seen:?}, want {want:?}"),
        }
    }
    seen
}

const ENV: &[(&str, &str)] = &[
    ("SCIMD__EVENTS__ALLOW_PRIVATE_RECEIVERS", "true"),
    ("SCIMD__EVENTS__POLL_INTERVAL_MILLIS", "20"),
    ("SCIMD__EVENTS__RETRY_BASE_MILLIS", "20"),
    ("SCIMD__EVENTS__RETRY_MAX_SECS", "1"),
    ("SCIMD__EVENTS__PUSH_TIMEOUT_SECS", "1"),
    ("SCIMD__EVENTS__LEASE_SECS", "2"),
];

#[test]
fn a_kill_9_in_the_middle_of_a_push_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let store = open(&url);
        // The 5th push is held unanswered; scimd is killed while it waits.
        let (receiver, held) = start_receiver(5);
        push_stream(&store, &receiver.url);
        let mut want = record_users(&store, 0, 10);
        let mut server = Server::start_with(&url, ENV);
        want.extend(record_users(&store, 10, 10));
        held.recv_timeout(DEADLINE)
            .expect("a push reached the receiver");
        let pid = server.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        server.child.wait().unwrap();
        drop(server);
        want.extend(record_users(&store, 20, 5));
        // On PostgreSQL the restarted process (a new owner) takes the
        // stream over once the killed one's lease (2 s here) has ended;
        // on SQLite at once.
        let _server = Server::start_with(&url, ENV);
        let seen = receive_all(&receiver.got, &want);
        assert!(
            want.iter().all(|p| seen.get(p).copied().unwrap_or(0) >= 1),
            "{url}: every event at least once: {seen:?}"
        );
        // In position order: the receiver saw them ascending, apart from
        // the one re-sent after the restart.
        assert_eq!(seen.len(), want.len(), "{seen:?}");
    }
}

#[test]
fn two_replicas_deliver_each_event_once() {
    let Some(db) = scim_store::testing::TestDb::postgres() else {
        return;
    };
    let url = db.url().to_owned();
    let store = open(&url);
    let (receiver, _held) = start_receiver(usize::MAX);
    push_stream(&store, &receiver.url);
    let a = Server::start_with(&url, ENV);
    let b = Server::start_with(&url, ENV);
    let want = record_users(&store, 0, 60);
    let mut seen = receive_all(&receiver.got, &want);
    // A last event: delivery is in order, so once it arrived any repeat
    // of the others in the normal case would have too.
    let sentinel = record_users(&store, 60, 1);
    for (p, n) in receive_all(&receiver.got, &sentinel) {
        *seen.entry(p).or_default() += n;
    }
    assert_eq!(seen.len(), 61);
    assert!(
        seen.values().all(|&n| n == 1),
        "an event arrived twice: {seen:?}"
    );
    drop((a, b));
}

#[test]
fn a_scim_write_wakes_the_deliverer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let store = open(&url);
        let (receiver, _held) = start_receiver(usize::MAX);
        push_stream(&store, &receiver.url);
        super::enable_sync(&url);
        let (_, token) = super::create_token(&url, "entra");
        // The deliverer would look again only after 5 minutes: the SET can
        // only come this fast because the write woke it.
        let mut env = ENV.to_vec();
        env.retain(|(k, _)| *k != "SCIMD__EVENTS__POLL_INTERVAL_MILLIS");
        env.push(("SCIMD__EVENTS__POLL_INTERVAL_MILLIS", "300000"));
        let server = Server::start_with(&url, &env);
        let (status, body) = server.http(
            "POST",
            "/scim/v2/Users",
            Some(&token),
            Some(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"woken@example.com"}"#),
        );
        assert_eq!(status, 201, "{body}");
        let last = store.read(scim_store::changes::last_position).unwrap();
        let seen = receive_all(&receiver.got, &[last]);
        assert_eq!(seen.get(&last), Some(&1), "{url}");
        drop(server);
    }
}
