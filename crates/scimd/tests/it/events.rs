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
/// unanswered, its position announced on `held`.
struct Receiver_ {
    url: String,
    /// Every SET answered 202, in arrival order (scimd pushes one at a
    /// time and waits for the answer, which is sent after this).
    got: Receiver<Arrival>,
}

/// A SET as the receiver got it: its change_log position (from its `jti`)
/// and the resource it names (its `sub_id.uri`, e.g. `/Users/user-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arrival {
    position: i64,
    resource: String,
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

/// A SET's change_log position (from its `jti`, `<stream>:<position>`)
/// and the resource it names.
fn arrival(token: &str) -> Arrival {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let jti = claims["jti"].as_str().unwrap();
    Arrival {
        position: jti.rsplit_once(':').unwrap().1.parse().unwrap(),
        resource: claims["sub_id"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn start_receiver(hold_at: usize) -> (Receiver_, Receiver<i64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/events",
        listener.local_addr().unwrap().port()
    );
    let (got_tx, got) = mpsc::channel::<Arrival>();
    let (held_tx, held) = mpsc::channel::<i64>();
    let count = Arc::new(AtomicUsize::new(0));
    let held_tx = Arc::new(Mutex::new(held_tx));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (got_tx, count, held_tx): (Sender<Arrival>, _, _) =
                (got_tx.clone(), count.clone(), held_tx.clone());
            std::thread::spawn(move || {
                let Some(token) = read_request(&mut stream) else {
                    return;
                };
                let set = arrival(&token);
                let n = count.fetch_add(1, Ordering::AcqRel) + 1;
                if n == hold_at {
                    // Never answered: the sender dies with it.
                    let _ = held_tx.lock().unwrap().send(set.position);
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest);
                    return;
                }
                let _ = got_tx.send(set);
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
fn receive_all(got: &Receiver<Arrival>, want: &[i64]) -> BTreeMap<i64, usize> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    while !want.iter().all(|p| seen.contains_key(p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match got.recv_timeout(left) {
            Ok(a) => *seen.entry(a.position).or_default() += 1,
            Err(e) => panic!("missing events ({e}): got {seen:?}, want {want:?}"),
        }
    }
    seen
}

/// Every SET received, in arrival order, until every position of `want`
/// has arrived or [`DEADLINE`] has passed (then the caller's assertions
/// name what is missing).
fn arrivals(got: &Receiver<Arrival>, want: &[i64]) -> Vec<Arrival> {
    let deadline = Instant::now() + DEADLINE;
    let mut out: Vec<Arrival> = Vec::new();
    while !want.iter().all(|p| out.iter().any(|a| a.position == *p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match got.recv_timeout(left) {
            Ok(a) => out.push(a),
            Err(_) => break,
        }
    }
    out
}

/// The resources [`record_changes`] changes, in turn.
const RESOURCES: usize = 4;

/// Records the changes numbered `from..from + n`, one transaction each:
/// change `i` is of `/Users/user-{i % RESOURCES}`, its creation for the
/// first change of each user, a replacement (a new `displayName`) after.
/// Returns each change's position and resource, in the order recorded.
fn record_changes(store: &Store, from: usize, n: usize) -> Vec<(i64, String)> {
    (from..from + n)
        .map(|i| {
            let id = format!("user-{}", i % RESOURCES);
            let round = i / RESOURCES;
            let event = if round == 0 {
                Event::UserCreated
            } else {
                Event::UserReplaced
            };
            let position = store
                .write(|c| {
                    record(
                        c,
                        &Actor::cli("tests"),
                        &scim_core::datetime::now(),
                        &[NewChange::new(event, "User", Some(&id))
                            .version(round as i64 + 1)
                            .data(format!(
                                r#"{{"id":"{id}","userName":"{id}","displayName":"v{round}"}}"#
                            ))],
                    )?;
                    scim_store::changes::last_position(c)
                })
                .unwrap();
            (position, format!("/Users/{id}"))
        })
        .collect()
}

const ENV: &[(&str, &str)] = &[
    ("SCIMD__EVENTS__ALLOW_PRIVATE_RECEIVERS", "true"),
    ("SCIMD__EVENTS__POLL_INTERVAL_MILLIS", "20"),
    ("SCIMD__EVENTS__RETRY_BASE_MILLIS", "20"),
    ("SCIMD__EVENTS__RETRY_MAX_SECS", "1"),
    ("SCIMD__EVENTS__PUSH_TIMEOUT_SECS", "1"),
    ("SCIMD__EVENTS__LEASE_SECS", "2"),
];

/// After a `kill -9` in the middle of a push and a restart, every event
/// arrives at least once, and for each resource the first arrival of each
/// of its events comes in the order the resource changed (repeats of a
/// SET already received are allowed: delivery is at least once).
#[test]
fn a_kill_9_in_the_middle_of_a_push_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let store = open(&url);
        // The 5th push is held unanswered; scimd is killed while it waits.
        let (receiver, held) = start_receiver(5);
        push_stream(&store, &receiver.url);
        // Four users, each changed 6 or 7 times, their changes interleaved
        // and spread over before the start, during the first run and
        // after the kill.
        let mut recorded = record_changes(&store, 0, 10);
        let mut server = Server::start_with(&url, ENV);
        recorded.extend(record_changes(&store, 10, 10));
        let held_at = held
            .recv_timeout(DEADLINE)
            .expect("a push reached the receiver");
        let pid = server.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        server.child.wait().unwrap();
        drop(server);
        recorded.extend(record_changes(&store, 20, 5));
        // On PostgreSQL the restarted process (a new owner) takes the
        // stream over once the killed one's lease (2 s here) has ended;
        // on SQLite at once.
        let _server = Server::start_with(&url, ENV);
        let want: Vec<i64> = recorded.iter().map(|(p, _)| *p).collect();
        let resource_of: BTreeMap<i64, &str> =
            recorded.iter().map(|(p, r)| (*p, r.as_str())).collect();
        let got = arrivals(&receiver.got, &want);

        // Nothing else, and each SET names the resource of its change.
        for a in &got {
            assert_eq!(
                resource_of.get(&a.position).copied(),
                Some(a.resource.as_str()),
                "{url}: a SET for an unknown change or the wrong resource: {a:?}"
            );
        }
        // The first arrival of each event, in arrival order.
        let mut first: Vec<&Arrival> = Vec::new();
        for a in &got {
            if !first.iter().any(|f| f.position == a.position) {
                first.push(a);
            }
        }
        // Every event at least once, the held one included.
        let missing: Vec<i64> = want
            .iter()
            .copied()
            .filter(|p| !first.iter().any(|f| f.position == *p))
            .collect();
        assert!(
            missing.is_empty(),
            "{url}: events lost: {missing:?} (held {held_at}); got {got:?}"
        );
        assert!(want.contains(&held_at), "{url}: held {held_at}");
        // Per resource, first arrivals in the resource's change order.
        for r in 0..RESOURCES {
            let resource = format!("/Users/user-{r}");
            let changed: Vec<i64> = recorded
                .iter()
                .filter(|(_, res)| *res == resource)
                .map(|(p, _)| *p)
                .collect();
            let delivered: Vec<i64> = first
                .iter()
                .filter(|a| a.resource == resource)
                .map(|a| a.position)
                .collect();
            assert!(changed.len() >= 6, "{changed:?}");
            assert_eq!(
                delivered, changed,
                "{url}: {resource} delivered out of order (held {held_at}); got {got:?}"
            );
        }
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
