//! Event delivery throughput and lag, measured against a running
//! `scimd serve` (scripts/bench-events.sh starts it): this program runs a
//! push receiver on 127.0.0.1 (HTTP/1.1 keep-alive, answers 202), creates
//! a push stream to it, records changes into the database with scim-store
//! (as SCIM writes do) and measures when each SET arrives.
//!
//! - throughput: `--events N` changes recorded back to back (100 per
//!   transaction); events/s from the first commit to the last arrival;
//! - lag of another process's writes: `--paced M` changes, one every
//!   `1 / --rate` seconds; commit to arrival, p50 and p99. These writes
//!   come from another process (as another replica's would), so scimd
//!   sees them at its next look (`events.poll_interval_millis`);
//! - lag of SCIM writes through scimd (with `--scim BASE --token T`): `M`
//!   PATCHes of one user through scimd's SCIM API at the same pace, which
//!   wake the deliverer at once; from sending the PATCH to the SET's
//!   arrival, p50 and p99: what an application behind scimd waits for an
//!   identity provider's change.
//!
//! - `--hold SECS` instead: only the stream and its receiver, for SECS
//!   seconds, while something else writes (scripts/bench-events.sh runs
//!   `wrk` PATCHes); then how many SETs arrived of the changes committed
//!   after the stream's start.
//!
//! `cargo run --release --example events_bench -- --db URL --events 2000 --paced 100 --rate 20 [--scim http://127.0.0.1:8080 --token scimd_…]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scim_store::changes::{record, Actor, Event, NewChange};
use scim_store::events::streams;
use scim_store::events::{Alg, Delivery, Mode, NewStream};
use scim_store::{Store, StoreConfig};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// The change-log position in a SET's `jti`.
fn position(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["jti"].as_str()?.rsplit_once(':')?.1.parse().ok()
}

/// A keep-alive HTTP/1.1 receiver: every SET's position and arrival.
fn receiver() -> (String, mpsc::Receiver<(i64, Instant)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/events",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let at = Instant::now();
                    if let Some(p) = position(&String::from_utf8_lossy(&body)) {
                        let _ = tx.send((p, at));
                    }
                    if stream
                        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

/// Records `n` user changes in one transaction; returns their positions.
fn record_changes(store: &Store, from: usize, n: usize) -> Vec<i64> {
    store
        .write(|c| {
            let before = scim_store::changes::last_position(c)?;
            let changes: Vec<NewChange> = (from..from + n)
                .map(|i| {
                    let id = format!("bench-{i}");
                    NewChange::new(Event::UserPatched, "User", Some(&id))
                        .version(2)
                        .detail(serde_json::json!({"paths": ["title"]}))
                        .data(format!(
                            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{id}","userName":"{id}@example.com","title":"Engineer","active":true}}"#
                        ))
                })
                .collect();
            record(c, &Actor::cli("bench"), &scim_core::datetime::now(), &changes)?;
            let after = scim_store::changes::last_position(c)?;
            Ok(((before + 1)..=after).collect())
        })
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    let db = arg("--db", "");
    let events: usize = arg("--events", "2000").parse().unwrap();
    let paced: usize = arg("--paced", "100").parse().unwrap();
    let rate: f64 = arg("--rate", "20").parse().unwrap();
    let store = Store::connect(&StoreConfig {
        url: db,
        pool_size: 2,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    let (url, arrivals) = receiver();
    let new = NewStream {
        name: "bench".into(),
        delivery: Delivery::Push,
        endpoint_url: Some(url),
        authorization: None,
        audience: "https://bench.example.com".into(),
        issuer: None,
        event_types: vec![],
        resource_types: vec![],
        mode: Mode::Full,
        alg: Alg::Es256,
    };
    let created = store
        .write(|c| {
            streams::create_stream(
                c,
                scim_store::OrgId::DEFAULT,
                &new,
                &scim_core::datetime::now(),
            )
        })
        .unwrap();
    let deadline = Duration::from_secs(600);

    let hold: u64 = arg("--hold", "0").parse().unwrap();
    if hold > 0 {
        let end = Instant::now() + Duration::from_secs(hold);
        let mut got = 0;
        while arrivals
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .is_ok()
        {
            got += 1;
        }
        let last = store.read(scim_store::changes::last_position).unwrap();
        println!(
            "BENCH hold received={got} written={}",
            last - created.stream.cursor
        );
        return;
    }

    // Throughput: a burst.
    let start = Instant::now();
    let mut wanted = 0;
    for from in (0..events).step_by(100) {
        wanted += record_changes(&store, from, 100.min(events - from)).len();
    }
    let written = start.elapsed();
    let mut last = start;
    let mut got = 0;
    while got < wanted {
        let (_, at) = arrivals
            .recv_timeout(deadline)
            .expect("SETs stopped arriving");
        got += 1;
        last = at;
    }
    let burst = last.duration_since(start);
    let throughput = wanted as f64 / burst.as_secs_f64();

    // Lag: paced single changes.
    let mut committed: HashMap<i64, Instant> = HashMap::new();
    let mut lags = Vec::with_capacity(paced);
    let every = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let (done_tx, done_rx) = mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.len() < paced {
            match arrivals.recv_timeout(deadline) {
                Ok(a) => seen.push(a),
                Err(_) => break,
            }
        }
        let _ = done_tx.send((seen, arrivals));
    });
    let mut next = Instant::now();
    for i in 0..paced {
        let positions = record_changes(&store, events + i, 1);
        committed.insert(positions[0], Instant::now());
        next += every;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let (seen, arrivals) = done_rx.recv().unwrap();
    collector.join().unwrap();
    for (p, at) in seen {
        if let Some(c) = committed.get(&p) {
            lags.push(at.saturating_duration_since(*c));
        }
    }
    lags.sort();
    let (p50, p99) = (percentile(&lags, 0.5), percentile(&lags, 0.99));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut line = format!(
        "BENCH events burst={wanted} written_ms={} delivered_ms={} throughput={throughput:.0} paced={} rate={rate} lag_p50_ms={:.1} lag_p99_ms={:.1}",
        written.as_millis(),
        burst.as_millis(),
        lags.len(),
        ms(p50),
        ms(p99)
    );
    let scim = arg("--scim", "");
    if !scim.is_empty() {
        let mut lags = api_lags(
            &scim,
            &arg("--token", ""),
            paced,
            every,
            &arrivals,
            deadline,
        );
        lags.sort();
        line.push_str(&format!(
            " api_paced={} api_lag_p50_ms={:.1} api_lag_p99_ms={:.1}",
            lags.len(),
            ms(percentile(&lags, 0.5)),
            ms(percentile(&lags, 0.99))
        ));
    }
    println!("{line}");
}

/// `n` PATCHes of one user through scimd's SCIM API at `base`, one every
/// `every`: for each, the time from sending it to its SET's arrival.
fn api_lags(
    base: &str,
    token: &str,
    n: usize,
    every: Duration,
    arrivals: &mpsc::Receiver<(i64, Instant)>,
    deadline: Duration,
) -> Vec<Duration> {
    let client = reqwest::blocking::Client::new();
    let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let res = client
            .request(method, format!("{base}/scim/v2{path}"))
            .bearer_auth(token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json::<serde_json::Value>().unwrap()
    };
    let user = send(
        reqwest::Method::POST,
        "/Users",
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("events-bench-{}", std::process::id()),
        }),
    );
    let id = user["id"].as_str().unwrap().to_owned();
    // Its create's SET.
    arrivals
        .recv_timeout(deadline)
        .expect("no SET for the user created");
    let mut lags = Vec::with_capacity(n);
    let mut next = Instant::now();
    for i in 0..n {
        let sent = Instant::now();
        send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": format!("Title {i}")}],
            }),
        );
        let (_, at) = arrivals
            .recv_timeout(deadline)
            .expect("SETs stopped arriving");
        lags.push(at.saturating_duration_since(sent));
        next += every;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    lags
}
