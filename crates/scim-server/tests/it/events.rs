//! SCIM events over real HTTP, on both backends: SETs pushed to a real
//! receiver (a small actix server on 127.0.0.1 inside the test) and
//! polled through the real endpoints, their signatures verified with the
//! published JWKS. Time moves by the injected clock; nothing sleeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{test, web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use scim_server::events::push::{Deliverer, Ran};
use scim_server::events::{Events, EventsConfig};
use scim_store::changes::{record, Actor, Event, NewChange};
use scim_store::events::streams::{self, CreatedStream};
use scim_store::events::{Alg, Delivery, EventType, Mode, NewStream};
use scim_store::testing::{backends, TestDb};
use scim_store::Store;
use serde_json::{json, Value};

/// What the receiver saw of one push.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    token: String,
}

/// Called with each push's number (from 1) before it is answered.
type OnPush = Arc<Mutex<Option<Box<dyn FnMut(usize) + Send>>>>;

/// A push receiver on 127.0.0.1: answers each push with the next scripted
/// status and body (202 once the script is empty) and keeps what it got.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    on_push: OnPush,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start() -> Receiver {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::default();
        let on_push: OnPush = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (s, sc, op) = (seen.clone(), script.clone(), on_push.clone());
        let server = HttpServer::new(move || {
            let (seen, script, on_push) = (s.clone(), sc.clone(), op.clone());
            App::new().route(
                "/events",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let (seen, script, on_push) = (seen.clone(), script.clone(), on_push.clone());
                    async move {
                        let h = |name| {
                            req.headers()
                                .get(name)
                                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                        };
                        seen.lock().unwrap().push(Seen {
                            authorization: h(header::AUTHORIZATION),
                            content_type: h(header::CONTENT_TYPE),
                            accept: h(header::ACCEPT),
                            token: String::from_utf8(body.to_vec()).unwrap(),
                        });
                        let pushes = seen.lock().unwrap().len();
                        if let Some(f) = on_push.lock().unwrap().as_mut() {
                            f(pushes);
                        }
                        let (status, body) = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or((202, String::new()));
                        let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap());
                        if (300..400).contains(&status) {
                            // Back to itself: a followed redirect would show as a second push.
                            res.insert_header((header::LOCATION, "/events"));
                        }
                        res.content_type("application/json").body(body)
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/events"),
            seen,
            script,
            on_push,
            handle,
        }
    }

    /// Runs `f` with each push's number (counted from the receiver's
    /// start) before answering it.
    fn on_push(&self, f: impl FnMut(usize) + Send + 'static) {
        *self.on_push.lock().unwrap() = Some(Box::new(f));
    }

    fn then(&self, status: u16, body: &str) {
        self.script
            .lock()
            .unwrap()
            .push_back((status, body.to_owned()));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn config(allow_private: bool) -> EventsConfig {
    EventsConfig {
        issuer: "https://scim.example.com".into(),
        allow_private_receivers: allow_private,
        retry_base: Duration::from_secs(10),
        retry_max: Duration::from_secs(60),
        failing_after: 3,
        long_poll_wait: Duration::from_secs(600),
        ..EventsConfig::default()
    }
}

fn events(db: &TestDb, config: EventsConfig) -> (Events, scim_core::Clock) {
    let clock = scim_core::Clock::system();
    (
        Events::new(db.store().clone(), config, clock.clone()),
        clock,
    )
}

/// The settings of a push stream to `url`: full events of every type.
fn push_settings(url: &str, alg: Alg) -> NewStream {
    NewStream {
        name: "app".into(),
        delivery: Delivery::Push,
        endpoint_url: Some(url.into()),
        authorization: Some("Bearer receiver-secret".into()),
        audience: "https://app.example.com".into(),
        issuer: None,
        event_types: vec![],
        resource_types: vec![],
        mode: Mode::Full,
        alg,
    }
}

fn push_stream(store: &Store, url: &str, alg: Alg) -> CreatedStream {
    stream_in(store, scim_store::OrgId::DEFAULT, push_settings(url, alg))
}

/// Pauses (`true`) or resumes (`false`) the stream, as the admin API does.
fn set_paused(store: &Store, created: &CreatedStream, paused: bool) {
    let stream = store
        .write(|c| streams::set_paused(c, &created.stream.id, paused))
        .unwrap();
    assert_eq!(stream.paused, paused);
}

fn poll_stream(store: &Store) -> CreatedStream {
    let new = NewStream {
        name: "poller".into(),
        delivery: Delivery::Poll,
        endpoint_url: None,
        authorization: None,
        audience: "https://app.example.com".into(),
        issuer: None,
        event_types: vec![],
        resource_types: vec!["User".into()],
        mode: Mode::Notice,
        alg: Alg::EdDsa,
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
}

/// Records one change of `event` to the user `id`, as a SCIM write would.
fn change(store: &Store, event: Event, id: &str) {
    change_of(store, event, "User", id);
}

/// Records one change of `event` to the `resource_type` (`User` or
/// `Group`) `id`, as a SCIM write would.
fn change_of(store: &Store, event: Event, resource_type: &str, id: &str) {
    let data = match resource_type {
        "Group" => {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id, "displayName": id})
        }
        _ => {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": format!("{id}@example.com")})
        }
    };
    store
        .write(|c| {
            record(
                c,
                &Actor::cli("tests").with_request(Some(format!("req-{id}")), None),
                &scim_core::datetime::now(),
                &[NewChange::new(event, resource_type, Some(id))
                    .version(1)
                    .data(data.to_string())],
            )
        })
        .unwrap();
}

/// Runs the deliverer until nothing is due.
async fn drain(deliverer: &Deliverer) {
    while deliverer.run_once().await.unwrap() == Ran::Delivered {}
}

async fn get_jwks(events: &Events, created: &CreatedStream) -> Value {
    let ev = events.clone();
    let svc = test::init_service(App::new().configure(move |cfg| ev.configure(cfg))).await;
    let req = test::TestRequest::get()
        .uri(&format!("/events/{}/jwks", created.stream.id))
        .insert_header((
            header::AUTHORIZATION,
            format!("Bearer {}", created.receiver_token),
        ))
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    test::read_body_json(res).await
}

/// The `sub_id.uri` of each SET `receiver` got after its first `from`,
/// each verified with the stream's published JWKS.
async fn pushed_subjects(
    receiver: &Receiver,
    events: &Events,
    created: &CreatedStream,
    from: usize,
) -> Vec<String> {
    let jwks = get_jwks(events, created).await;
    receiver
        .seen()
        .split_off(from)
        .iter()
        .map(|s| {
            verify(&s.token, &jwks)["sub_id"]["uri"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The (event URI, `sub_id.uri`) of each SET `receiver` got after its
/// first `from`, each verified with the stream's published JWKS.
async fn pushed_events(
    receiver: &Receiver,
    events: &Events,
    created: &CreatedStream,
    from: usize,
) -> Vec<(String, String)> {
    let jwks = get_jwks(events, created).await;
    receiver
        .seen()
        .split_off(from)
        .iter()
        .map(|s| {
            let claims = verify(&s.token, &jwks);
            (
                event_names(std::slice::from_ref(&claims)).remove(0),
                claims["sub_id"]["uri"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Verifies a SET against the JWKS and returns its claims.
fn verify(token: &str, jwks: &Value) -> Value {
    verify_issued(token, jwks, "https://scim.example.com")
}

/// Verifies a SET of the issuer `iss` against the JWKS and returns its
/// claims.
fn verify_issued(token: &str, jwks: &Value, iss: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let kid = header.kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"));
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &validation(header.alg, iss),
    )
    .unwrap()
    .claims
}

/// How a SET of the issuer `iss` signed with `alg` is validated: for the
/// tests' audience, without `exp` (a SET has none).
fn validation(alg: Algorithm, iss: &str) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_audience(&["https://app.example.com"]);
    validation.set_issuer(&[iss]);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation
}

/// Verifies an HS256 SET with a stream's shared secret (as returned at
/// its creation or key rotation) and returns its claims, or why it does
/// not verify.
fn verify_shared(token: &str, secret: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    assert_eq!(header.alg, Algorithm::HS256);
    // As docs/EVENTS.md tells the application: the secret as it is.
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation(Algorithm::HS256, "https://scim.example.com"),
    )
    .map(|d| d.claims)
}

fn event_names(claims: &[Value]) -> Vec<String> {
    claims
        .iter()
        .map(|c| {
            c["events"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect()
}

#[actix_web::test]
async fn pushed_sets_arrive_in_order_and_verify_with_the_jwks() {
    let receiver = Receiver::start();
    for db in backends() {
        for alg in [Alg::Es256, Alg::EdDsa] {
            let (events, _) = events(&db, config(true));
            let deliverer = Deliverer::new(events.clone()).unwrap();
            let created = push_stream(db.store(), &receiver.url, alg);
            let before = receiver.seen().len();
            change(db.store(), Event::UserCreated, "u1");
            change(db.store(), Event::UserPatched, "u1");
            change(db.store(), Event::UserSuspended, "u1");
            change(db.store(), Event::UserDeleted, "u1");
            drain(&deliverer).await;
            let seen = receiver.seen().split_off(before);
            assert_eq!(seen.len(), 4, "{:?}", db.backend());
            let jwks = get_jwks(&events, &created).await;
            let claims: Vec<Value> = seen.iter().map(|s| verify(&s.token, &jwks)).collect();
            assert_eq!(
                event_names(&claims),
                [
                    "urn:ietf:params:scim:event:prov:create:full",
                    "urn:ietf:params:scim:event:prov:patch:full",
                    "urn:ietf:params:scim:event:prov:deactivate",
                    "urn:ietf:params:scim:event:prov:delete",
                ]
            );
            assert_eq!(claims[0]["sub_id"]["uri"], "/Users/u1");
            assert_eq!(claims[0]["txn"], "req-u1");
            assert_eq!(
                claims[0]["events"]["urn:ietf:params:scim:event:prov:create:full"]["data"]
                    ["userName"],
                "u1@example.com"
            );
            for s in &seen {
                assert_eq!(s.authorization.as_deref(), Some("Bearer receiver-secret"));
                assert_eq!(s.content_type.as_deref(), Some("application/secevent+jwt"));
                assert_eq!(s.accept.as_deref(), Some("application/json"));
            }
            let status = db
                .store()
                .read(|c| {
                    let s = streams::find_stream(c, &created.stream.id)?;
                    streams::stream_status(c, &s, 3)
                })
                .unwrap();
            assert_eq!((status.lag, status.state), (0, "active"));

            // Replay from a cursor: the last two again, same jti.
            let from = claims[1]["jti"]
                .as_str()
                .unwrap()
                .rsplit_once(':')
                .unwrap()
                .1;
            let from: i64 = from.parse().unwrap();
            db.store()
                .write(|c| streams::replay_from_position(c, &created.stream.id, from))
                .unwrap();
            drain(&deliverer).await;
            let again: Vec<Value> = receiver
                .seen()
                .split_off(before + 4)
                .iter()
                .map(|s| verify(&s.token, &jwks))
                .collect();
            assert_eq!(
                again.iter().map(|c| c["jti"].clone()).collect::<Vec<_>>(),
                claims[2..]
                    .iter()
                    .map(|c| c["jti"].clone())
                    .collect::<Vec<_>>()
            );
            // Key rotation: the new key signs, the old one is still published.
            db.store()
                .write(|c| {
                    scim_store::events::keys::rotate_key(
                        c,
                        &created.stream.id,
                        &scim_core::datetime::now(),
                    )
                })
                .unwrap();
            change(db.store(), Event::UserCreated, "u2");
            drain(&deliverer).await;
            let jwks = get_jwks(&events, &created).await;
            assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
            let last = receiver.seen().pop().unwrap();
            assert_eq!(verify(&last.token, &jwks)["sub_id"]["uri"], "/Users/u2");
            assert_ne!(
                jsonwebtoken::decode_header(&last.token).unwrap().kid,
                jsonwebtoken::decode_header(&seen[0].token).unwrap().kid
            );
            assert!(
                verify(&seen[0].token, &jwks).is_object(),
                "old SETs still verify"
            );
            db.store()
                .write(|c| streams::delete_stream(c, &created.stream.id))
                .unwrap();
        }
    }
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn failures_are_retried_with_backoff_and_nothing_is_lost_or_reordered() {
    let receiver = Receiver::start();
    for db in backends() {
        let (events, clock) = events(&db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = push_stream(db.store(), &receiver.url, Alg::Es256);
        let id = created.stream.id.clone();
        let before = receiver.seen().len();
        for _ in 0..3 {
            receiver.then(500, "");
        }
        change(db.store(), Event::UserCreated, "a");
        change(db.store(), Event::UserCreated, "b");
        change(db.store(), Event::UserPatched, "a");
        let status = |db: &TestDb| {
            db.store()
                .read(|c| {
                    let s = streams::find_stream(c, &id)?;
                    Ok((s.clone(), streams::stream_status(c, &s, 3)?))
                })
                .unwrap()
        };
        for attempt in 1..=3 {
            assert_eq!(
                deliverer.run_once().await.unwrap(),
                Ran::Delivered,
                "attempt {attempt}"
            );
            let (stream, st) = status(&db);
            assert_eq!(stream.failures, attempt);
            assert_eq!(
                stream.last_error.as_deref(),
                Some("HTTP 500 (202 expected)")
            );
            assert_eq!(st.lag, 3, "nothing moved past");
            assert!(st.oldest_pending_at.is_some());
            assert_eq!(st.state, if attempt >= 3 { "failing" } else { "active" });
            // In backoff: not due until the clock passes next_attempt_at.
            assert_eq!(deliverer.run_once().await.unwrap(), Ran::NothingDue);
            clock.advance(Duration::from_secs(61));
        }
        drain(&deliverer).await;
        let jtis = pushed_subjects(&receiver, &events, &created, before).await;
        assert_eq!(
            jtis,
            ["/Users/a", "/Users/a", "/Users/a", "/Users/a", "/Users/b", "/Users/a"],
            "the first SET retried, then the rest in order"
        );
        let (stream, st) = status(&db);
        assert_eq!((stream.failures, st.lag, st.state), (0, 0, "active"));

        // A redirect is not followed; a huge answer is read up to the cap
        // (64 KiB): its RFC 8935 error, after a megabyte of padding, is
        // never seen.
        receiver.then(307, "");
        receiver.then(
            400,
            &format!(
                r#"{{"pad":"{}","err":"invalid_audience","description":"past the cap"}}"#,
                "x".repeat(1 << 20)
            ),
        );
        change(db.store(), Event::UserPatched, "b");
        let seen_before = receiver.seen().len();
        assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
        assert_eq!(
            receiver.seen().len(),
            seen_before + 1,
            "the redirect was not followed"
        );
        let (stream, _) = status(&db);
        assert_eq!(
            stream.last_error.as_deref(),
            Some("HTTP 307 (202 expected)")
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
        let (stream, _) = status(&db);
        assert_eq!(
            stream.last_error.as_deref(),
            Some("HTTP 400 without an RFC 8935 error")
        );
        clock.advance(Duration::from_secs(61));
        drain(&deliverer).await;
        let before = receiver.seen().len();

        // A permanent rejection (RFC 8935 §2.3) is recorded and skipped.
        receiver.then(
            400,
            r#"{"err":"invalid_audience","description":"not for us"}"#,
        );
        change(db.store(), Event::UserDeleted, "b");
        change(db.store(), Event::UserDeleted, "a");
        drain(&deliverer).await;
        let (stream, st) = status(&db);
        assert_eq!(st.lag, 0);
        assert!(
            stream
                .last_error
                .as_deref()
                .unwrap()
                .contains("invalid_audience: not for us"),
            "{:?}",
            stream.last_error
        );
        assert_eq!(receiver.seen().len(), before + 2);
        db.store()
            .write(|c| streams::delete_stream(c, &id))
            .unwrap();
    }
    receiver.handle.stop(false).await;
}

/// A receiver on 127.0.0.1 that takes one connection per answer, writes
/// that answer's bytes once the request has begun (none: it never
/// answers) and then holds the connection, reading, until the client
/// closes it.
fn stalling_receiver(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        for answer in answers {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            // Once the request has begun: an answer before it is a
            // protocol error to the client, not a slow receiver.
            if matches!(conn.read(&mut buf), Ok(n) if n > 0) {
                conn.write_all(answer.as_bytes()).unwrap();
            }
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    (url, thread)
}

/// Ends the test run with `what` unless the returned guard is dropped
/// within 10 minutes: a test whose paused clock has no timer left to
/// fire would otherwise hang.
fn watchdog(what: &'static str) -> std::sync::mpsc::Sender<()> {
    let (guard, watched) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(Duration::from_secs(600))
        {
            eprintln!("{what}");
            std::process::exit(1);
        }
    });
    guard
}

/// Waits for `thread` (a [`stalling_receiver`]) to end, off the runtime's
/// thread: the client's connections close on the runtime.
async fn joined(thread: std::thread::JoinHandle<()>) {
    actix_web::rt::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}

#[actix_web::test]
async fn a_receiver_that_never_answers_is_given_up_on_at_the_timeout() {
    // Tokio's clock is paused: a timer that is all the runtime waits for
    // fires at once, and `elapsed` reads the time that would have passed.
    // (No timer of the test's own: while the deliverer waits for the
    // store's threads, the paused clock would jump to it.) A delivery that
    // never gave up would hang; the watchdog fails the run instead.
    tokio::time::pause();
    let _watchdog = watchdog("a delivery to a silent receiver never gave up");
    let timeout = Duration::from_secs(7);
    for db in backends() {
        let (url, thread) = stalling_receiver(vec!["", ""]);
        let (events, clock) = events(
            &db,
            EventsConfig {
                push_timeout: timeout,
                ..config(true)
            },
        );
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = push_stream(db.store(), &url, Alg::Es256);
        change(db.store(), Event::UserCreated, "slow");
        for attempt in 1..=2 {
            let started = tokio::time::Instant::now();
            assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
            let waited = started.elapsed();
            assert!(
                waited >= timeout && waited < timeout + Duration::from_secs(1),
                "attempt {attempt}: gave up after {waited:?}, not at the {timeout:?} timeout"
            );
            let (stream, status) = db
                .store()
                .read(|c| {
                    let s = streams::find_stream(c, &created.stream.id)?;
                    let st = streams::stream_status(c, &s, 3)?;
                    Ok((s, st))
                })
                .unwrap();
            assert_eq!(stream.failures, attempt);
            assert_eq!(status.lag, 1, "attempt {attempt}: nothing moved past");
            let error = stream.last_error.unwrap_or_default();
            assert!(error.contains("timed out"), "attempt {attempt}: {error}");
            clock.advance(Duration::from_secs(61));
        }
        // scimd closed both connections (the receiver's reads ended):
        // nothing is left hanging.
        joined(thread).await;
        db.store()
            .write(|c| streams::delete_stream(c, &created.stream.id))
            .unwrap();
    }
}

#[actix_web::test]
async fn an_answer_whose_body_stalls_is_read_only_until_the_timeout() {
    // The push client and body reader the deliverer uses, against a
    // receiver that answers 400 and then stalls in its body.
    let (url, thread) = stalling_receiver(vec![
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"err\"",
    ]);
    let _watchdog = watchdog("a stalled body was read past the timeout");
    let timeout = Duration::from_secs(7);
    let client = scim_server::events::receiver::client(true, timeout).unwrap();
    // The status line and headers arrive in real time; then the clock is
    // paused, and the stalled body's read ends at the exchange's deadline.
    let response = client.post(&url).body("a SET").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let body = scim_server::events::receiver::read_capped(response, 64 * 1024).await;
    let waited = started.elapsed();
    assert!(
        waited > timeout - Duration::from_secs(1) && waited < timeout + Duration::from_millis(10),
        "the body was read for {waited:?}, not until the {timeout:?} timeout"
    );
    assert_eq!(body, br#"{"err""#, "what came before the stall is kept");
    assert_eq!(
        scim_server::events::push::classify(400, &body),
        scim_server::events::push::Outcome::Failed("HTTP 400 without an RFC 8935 error".into())
    );
    // The client closed the connection once it gave up.
    joined(thread).await;
}

#[actix_web::test]
async fn private_receivers_are_refused_unless_allowed() {
    let receiver = Receiver::start();
    let port = receiver
        .url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for db in backends() {
        let (events, clock) = events(&db, config(false));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let before = receiver.seen().len();
        for url in [
            receiver.url.clone(),
            format!("http://localhost:{port}/events"),
            format!("http://[::ffff:127.0.0.1]:{port}/events"),
        ] {
            let created = push_stream(db.store(), &url, Alg::Es256);
            change(db.store(), Event::UserCreated, "x");
            assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
            let stream = db
                .store()
                .read(|c| streams::find_stream(c, &created.stream.id))
                .unwrap();
            let error = stream.last_error.unwrap_or_default();
            assert!(error.contains("receiver address refused"), "{url}: {error}");
            assert_eq!(stream.failures, 1);
            db.store()
                .write(|c| streams::delete_stream(c, &created.stream.id))
                .unwrap();
            clock.advance(Duration::from_secs(120));
        }
        assert_eq!(
            receiver.seen().len(),
            before,
            "nothing reached the receiver"
        );
    }
    receiver.handle.stop(false).await;
}

async fn poll(
    svc: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    created: &CreatedStream,
    body: Value,
) -> (StatusCode, Value) {
    let req = test::TestRequest::default()
        .method(Method::POST)
        .uri(&format!("/events/{}/poll", created.stream.id))
        .insert_header((
            header::AUTHORIZATION,
            format!("Bearer {}", created.receiver_token),
        ))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_string())
        .to_request();
    let res = test::call_service(svc, req).await;
    let status = res.status();
    (status, test::read_body_json(res).await)
}

#[actix_web::test]
async fn polling_acknowledges_and_long_polls() {
    // Were `returnImmediately: false` ignored, the long poll below would
    // answer at once and the write would wait for a waiting poll forever.
    let _watchdog = watchdog("the long poll never waited");
    for db in backends() {
        let (events, _) = events(&db, config(true));
        let ev = events.clone();
        let svc = test::init_service(App::new().configure(move |cfg| ev.configure(cfg))).await;
        let created = poll_stream(db.store());
        change(db.store(), Event::UserCreated, "p1");
        change(db.store(), Event::UserPatched, "p1");
        change(db.store(), Event::UserDeleted, "p1");
        let (status, body) = poll(
            &svc,
            &created,
            json!({"maxEvents": 2, "returnImmediately": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["moreAvailable"], true);
        let sets = body["sets"].as_object().unwrap();
        assert_eq!(sets.len(), 2);
        let jwks = get_jwks(&events, &created).await;
        let mut jtis: Vec<&String> = sets.keys().collect();
        jtis.sort_by_key(|j| j.rsplit_once(':').unwrap().1.parse::<i64>().unwrap());
        let first = verify(sets[jtis[0]].as_str().unwrap(), &jwks);
        assert_eq!(
            first["events"]["urn:ietf:params:scim:event:prov:create:notice"]["attributes"],
            json!(["id", "userName"])
        );
        // Acknowledge both: the third comes, and nothing more.
        let (_, body) = poll(
            &svc,
            &created,
            json!({"ack": [jtis[0], jtis[1]], "maxEvents": 10, "returnImmediately": true}),
        )
        .await;
        let sets = body["sets"].as_object().unwrap();
        assert_eq!(sets.len(), 1, "{body}");
        assert_eq!(body["moreAvailable"], false);
        let third = sets.keys().next().unwrap().clone();
        // Report it in error: it is not sent again, and the error is kept.
        let (_, body) = poll(
            &svc,
            &created,
            json!({"setErrs": {third.clone(): {"err": "invalid_request", "description": "unknown user"}}, "returnImmediately": true}),
        )
        .await;
        assert_eq!(body["sets"], json!({}));
        let stream = db
            .store()
            .read(|c| streams::find_stream(c, &created.stream.id))
            .unwrap();
        assert!(stream.last_error.unwrap().contains("unknown user"));

        // Long-poll: waits until a change is committed, then answers it.
        let waiting = poll(
            &svc,
            &created,
            json!({"maxEvents": 10, "returnImmediately": false}),
        );
        let write = async {
            while events.long_polls_waiting() == 0 {
                actix_web::rt::task::yield_now().await;
            }
            change(db.store(), Event::UserCreated, "p2");
            events.changed();
        };
        let ((status, body), ()) = futures_util::join!(waiting, write);
        assert_eq!(status, StatusCode::OK);
        let sets = body["sets"].as_object().unwrap();
        assert_eq!(sets.len(), 1, "{body}");
        let claims = verify(sets.values().next().unwrap().as_str().unwrap(), &jwks);
        assert_eq!(claims["sub_id"]["uri"], "/Users/p2");

        // A wrong token, a bad body.
        let mut wrong = created.clone();
        wrong.receiver_token = "scimd_rcv_wrong".into();
        let (status, body) = poll(&svc, &wrong, json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["err"], "authentication_failed");
        let (status, body) = poll(&svc, &created, json!({"maxEvents": -1})).await;
        assert_eq!(
            (status, body["err"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        let (status, _) = poll(&svc, &created, json!({"bogus": 1})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

#[actix_web::test]
async fn a_long_poll_with_nothing_to_send_answers_empty_when_its_wait_is_over() {
    // Tokio's clock is paused: the wait's timer fires at once, and
    // `elapsed` reads the time that would have passed.
    tokio::time::pause();
    let _watchdog = watchdog("a long poll never answered");
    for db in backends() {
        let wait = Duration::from_secs(45);
        let (events, _) = events(
            &db,
            EventsConfig {
                long_poll_wait: wait,
                ..config(true)
            },
        );
        let ev = events.clone();
        let svc = test::init_service(App::new().configure(move |cfg| ev.configure(cfg))).await;
        let created = poll_stream(db.store());
        // RFC 8936 §2.4: `returnImmediately` is false unless sent.
        for body in [
            json!({"maxEvents": 10, "returnImmediately": false}),
            json!({"maxEvents": 10}),
        ] {
            let started = tokio::time::Instant::now();
            let (status, answer) = poll(&svc, &created, body.clone()).await;
            let waited = started.elapsed();
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer, json!({"sets": {}, "moreAvailable": false}));
            assert!(
                waited >= wait && waited < wait + Duration::from_secs(1),
                "{body}: answered after {waited:?}, not at the end of the {wait:?} wait"
            );
            assert_eq!(events.long_polls_waiting(), 0, "the poll left no waiter");
        }
        let started = tokio::time::Instant::now();
        let (status, answer) = poll(
            &svc,
            &created,
            json!({"maxEvents": 10, "returnImmediately": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["sets"], json!({}));
        assert_eq!(started.elapsed(), Duration::ZERO, "answered at once");
    }
}

#[actix_web::test]
async fn an_entra_cycle_produces_exactly_the_expected_events_in_order() {
    let receiver = Receiver::start();
    for app in crate::TestApp::all() {
        let (events, _) = events(&app.db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = push_stream(app.db.store(), &receiver.url, Alg::Es256);
        let before = receiver.seen().len();
        let user = app
            .create_user(crate::entra_user("alice@contoso.com"))
            .await;
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let res = app
            .patch(
                &format!("/scim/v2/Users/{user}"),
                patch(json!([{"op": "Replace", "path": "title", "value": "Manager"}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = app
            .patch(
                &format!("/scim/v2/Users/{user}"),
                patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = app
            .post("/scim/v2/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "externalId": "sales-1"}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let group = res.body["id"].as_str().unwrap().to_owned();
        let res = app
            .patch(
                &format!("/scim/v2/Groups/{group}"),
                patch(json!([{"op": "Add", "path": "members", "value": [{"value": user}]}])),
            )
            .await;
        assert!(res.status.is_success(), "{}", res.body);
        let res = app.delete(&format!("/scim/v2/Users/{user}")).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
        drain(&deliverer).await;
        let jwks = get_jwks(&events, &created).await;
        let got: Vec<(String, String)> = receiver
            .seen()
            .split_off(before)
            .iter()
            .map(|s| {
                let c = verify(&s.token, &jwks);
                let name = c["events"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                (
                    name.trim_start_matches("urn:ietf:params:scim:event:prov:")
                        .to_owned(),
                    c["sub_id"]["uri"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let u = format!("/Users/{user}");
        let g = format!("/Groups/{group}");
        let want: Vec<(String, String)> = [
            ("create:full", &u),
            ("patch:full", &u),
            ("patch:full", &u),
            ("deactivate", &u),
            ("create:notice", &g),
            ("patch:notice", &g),
            ("patch:notice", &g),
            ("delete", &u),
        ]
        .iter()
        .map(|(e, s)| (e.to_string(), s.to_string()))
        .collect();
        assert_eq!(got, want, "{}", app.backend());
    }
    receiver.handle.stop(false).await;
}

/// Creates `new` as a stream of the organization `org`.
fn stream_in(store: &Store, org: scim_store::OrgId, new: NewStream) -> CreatedStream {
    store
        .write(|c| streams::create_stream(c, org, &new, &scim_core::datetime::now()))
        .unwrap()
}

/// Records one change of `event` to the user `id` in the organization
/// `org`, as a SCIM write there would.
fn change_in(store: &Store, org: scim_store::OrgId, event: Event, id: &str) {
    store
        .write(|c| {
            record(
                c,
                &Actor::cli("tests").in_org(org),
                &scim_core::datetime::now(),
                &[NewChange::new(event, "User", Some(id)).version(1)],
            )
        })
        .unwrap();
}

#[actix_web::test]
async fn each_organizations_streams_carry_only_its_changes_in_order() {
    let receivers = [Receiver::start(), Receiver::start()];
    for db in backends() {
        let store = db.store();
        let acme = store
            .write(|c| {
                scim_store::organizations::create_organization(
                    c,
                    "acme",
                    "Acme",
                    None,
                    &Actor::cli("tests"),
                )
            })
            .unwrap()
            .id;
        let orgs = [scim_store::OrgId::DEFAULT, acme];
        let issuers = [
            "https://scim.example.com",
            "https://scim.example.com/scim/v2/o/acme",
        ];
        let (events, _) = events(&db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let ev = events.clone();
        let svc = test::init_service(App::new().configure(move |cfg| ev.configure(cfg))).await;
        let mut pushed = Vec::new();
        let mut polled = Vec::new();
        for (org, receiver) in orgs.iter().zip(&receivers) {
            let mut push = NewStream {
                name: "app".into(),
                delivery: Delivery::Push,
                endpoint_url: Some(receiver.url.clone()),
                authorization: None,
                audience: "https://app.example.com".into(),
                issuer: None,
                event_types: vec![],
                resource_types: vec![],
                mode: Mode::Notice,
                alg: Alg::Es256,
            };
            pushed.push(stream_in(store, *org, push.clone()));
            push.delivery = Delivery::Poll;
            push.endpoint_url = None;
            polled.push(stream_in(store, *org, push));
        }
        let before: Vec<usize> = receivers.iter().map(|r| r.seen().len()).collect();
        // Interleaved: default, acme, default, acme…
        for i in 0..3 {
            for (n, org) in orgs.iter().enumerate() {
                change_in(store, *org, Event::UserCreated, &format!("o{n}-u{i}"));
            }
        }
        drain(&deliverer).await;
        for (n, receiver) in receivers.iter().enumerate() {
            let jwks = get_jwks(&events, &pushed[n]).await;
            let uris: Vec<String> = receiver
                .seen()
                .split_off(before[n])
                .iter()
                .map(|s| {
                    let claims = verify_issued(&s.token, &jwks, issuers[n]);
                    claims["sub_id"]["uri"].as_str().unwrap().to_owned()
                })
                .collect();
            assert_eq!(
                uris,
                (0..3)
                    .map(|i| format!("/Users/o{n}-u{i}"))
                    .collect::<Vec<_>>(),
                "{:?} pushed to organization {n}",
                db.backend()
            );
            // Past the other organization's changes too: nothing pending.
            let status = store
                .read(|c| {
                    let s = streams::find_stream(c, &pushed[n].stream.id)?;
                    streams::stream_status(c, &s, 3)
                })
                .unwrap();
            assert_eq!(status.lag, 0, "{:?}", db.backend());
            assert_eq!(status.oldest_pending_at, None);

            let (status, body) = poll(
                &svc,
                &polled[n],
                json!({"maxEvents": 10, "returnImmediately": true}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let jwks = get_jwks(&events, &polled[n]).await;
            let mut sets: Vec<(i64, Value)> = body["sets"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(jti, set)| {
                    let position = jti.rsplit_once(':').unwrap().1.parse().unwrap();
                    (
                        position,
                        verify_issued(set.as_str().unwrap(), &jwks, issuers[n]),
                    )
                })
                .collect();
            sets.sort_by_key(|(p, _)| *p);
            let uris: Vec<&str> = sets
                .iter()
                .map(|(_, c)| c["sub_id"]["uri"].as_str().unwrap())
                .collect();
            assert_eq!(
                uris,
                (0..3)
                    .map(|i| format!("/Users/o{n}-u{i}"))
                    .collect::<Vec<_>>(),
                "{:?} polled by organization {n}",
                db.backend()
            );
            // Acknowledged, the cursor moves past the other
            // organization's changes too.
            let jtis: Vec<String> = body["sets"].as_object().unwrap().keys().cloned().collect();
            let (_, body) = poll(
                &svc,
                &polled[n],
                json!({"ack": jtis, "maxEvents": 10, "returnImmediately": true}),
            )
            .await;
            assert_eq!(body["sets"], json!({}));
            let status = store
                .read(|c| {
                    let s = streams::find_stream(c, &polled[n].stream.id)?;
                    streams::stream_status(c, &s, 3)
                })
                .unwrap();
            assert_eq!(status.lag, 0, "{:?}", db.backend());
        }
        // Replayed from the start: the organization's own changes again,
        // and only to its receiver.
        let before: Vec<usize> = receivers.iter().map(|r| r.seen().len()).collect();
        store
            .write(|c| streams::replay_from_position(c, &pushed[1].stream.id, 0))
            .unwrap();
        drain(&deliverer).await;
        assert_eq!(receivers[1].seen().len() - before[1], 3);
        assert_eq!(receivers[0].seen().len(), before[0]);
    }
    for r in receivers {
        r.handle.stop(false).await;
    }
}

/// The cursor moves once per batch of pushes, not after each SET (a write
/// each), and also once half the lease has gone by mid-batch (which
/// extends the lease); a failure keeps what was answered before it.
#[actix_web::test]
async fn the_cursor_moves_once_per_batch_and_when_half_the_lease_has_gone() {
    let receiver = Receiver::start();
    for db in backends() {
        let (events, clock) = events(&db, config(true));
        let lease = events.config().lease;
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = push_stream(db.store(), &receiver.url, Alg::Es256);
        let id = created.stream.id.clone();
        let start = created.stream.cursor;
        let first = receiver.seen().len();
        for user in ["a", "b", "c", "d"] {
            change(db.store(), Event::UserPatched, user);
        }
        let positions = db
            .store()
            .read(|c| scim_store::changes::read_after(c, start, 10))
            .unwrap();
        let positions: Vec<i64> = positions.iter().map(|c| c.position).collect();
        assert_eq!(positions.len(), 4);
        let stream_now = {
            let (store, id) = (db.store().clone(), id.clone());
            move || store.read(|c| streams::find_stream(c, &id)).unwrap()
        };
        // The stream's cursor as each push arrives; the clock passes half
        // the lease while the second is answered.
        let cursors: Arc<Mutex<Vec<i64>>> = Arc::default();
        {
            let (cursors, clock, stream_now) = (cursors.clone(), clock.clone(), stream_now.clone());
            receiver.on_push(move |n| {
                cursors.lock().unwrap().push(stream_now().cursor);
                if n == first + 2 {
                    clock.advance(lease / 2 + Duration::from_secs(1));
                }
            });
        }
        assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
        assert_eq!(
            *cursors.lock().unwrap(),
            [start, start, positions[1], positions[1]],
            "unmoved during the batch but once half the lease had gone, after the second SET"
        );
        let stream = stream_now();
        assert_eq!((stream.cursor, stream.failures), (positions[3], 0));

        // 202, 202, then 500: the cursor keeps the two answered.
        receiver.on_push(|_| {});
        for user in ["e", "f", "g"] {
            change(db.store(), Event::UserPatched, user);
        }
        receiver.then(202, "");
        receiver.then(202, "");
        receiver.then(500, "");
        assert_eq!(deliverer.run_once().await.unwrap(), Ran::Delivered);
        let stream = stream_now();
        let all = db
            .store()
            .read(|c| scim_store::changes::read_after(c, positions[3], 10))
            .unwrap();
        assert_eq!(stream.cursor, all[1].position, "past e and f, not g");
        assert_eq!(stream.failures, 1);
        clock.advance(Duration::from_secs(61));
        drain(&deliverer).await;
        assert_eq!(stream_now().cursor, all[2].position);
        let pushed = pushed_subjects(&receiver, &events, &created, first).await;
        assert_eq!(
            pushed,
            [
                "/Users/a", "/Users/b", "/Users/c", "/Users/d", "/Users/e", "/Users/f", "/Users/g",
                "/Users/g"
            ],
            "each SET once, the failed one again"
        );
        receiver.on_push(|_| {});
    }
}

#[actix_web::test]
async fn hs256_sets_verify_with_the_shared_secret_and_after_rotation_only_with_the_new_one() {
    let receiver = Receiver::start();
    for db in backends() {
        let (events, _) = events(&db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = push_stream(db.store(), &receiver.url, Alg::Hs256);
        let secret = created
            .shared_secret
            .clone()
            .expect("an HS256 stream's secret is returned at its creation");
        assert_eq!(
            get_jwks(&events, &created).await,
            json!({"keys": []}),
            "a shared secret is never published"
        );
        let before = receiver.seen().len();
        change(db.store(), Event::UserCreated, "h1");
        change(db.store(), Event::UserPatched, "h1");
        drain(&deliverer).await;
        let seen = receiver.seen().split_off(before);
        let claims: Vec<Value> = seen
            .iter()
            .map(|s| verify_shared(&s.token, &secret).unwrap())
            .collect();
        assert_eq!(
            event_names(&claims),
            [
                "urn:ietf:params:scim:event:prov:create:full",
                "urn:ietf:params:scim:event:prov:patch:full",
            ],
            "{:?}",
            db.backend()
        );
        assert!(claims.iter().all(|c| c["sub_id"]["uri"] == "/Users/h1"));

        // Rotation returns a new secret, which signs from then on.
        let (_, rotated) = db
            .store()
            .write(|c| {
                scim_store::events::keys::rotate_key(
                    c,
                    &created.stream.id,
                    &scim_core::datetime::now(),
                )
            })
            .unwrap();
        let rotated = rotated.expect("rotating an HS256 stream returns its new secret");
        assert_ne!(rotated, secret);
        change(db.store(), Event::UserDeleted, "h1");
        drain(&deliverer).await;
        let last = receiver.seen().pop().unwrap();
        assert_eq!(receiver.seen().len(), before + 3);
        let claims = verify_shared(&last.token, &rotated).unwrap();
        assert_eq!(
            event_names(&[claims]),
            ["urn:ietf:params:scim:event:prov:delete"]
        );
        let old = verify_shared(&last.token, &secret).unwrap_err();
        assert_eq!(
            old.kind(),
            &jsonwebtoken::errors::ErrorKind::InvalidSignature,
            "the old secret no longer verifies"
        );
        assert_ne!(
            jsonwebtoken::decode_header(&last.token).unwrap().kid,
            jsonwebtoken::decode_header(&seen[0].token).unwrap().kid
        );
        db.store()
            .write(|c| streams::delete_stream(c, &created.stream.id))
            .unwrap();
    }
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn a_paused_push_stream_delivers_nothing_and_its_backlog_in_order_once_resumed() {
    let receivers = [Receiver::start(), Receiver::start()];
    for db in backends() {
        let store = db.store();
        let (events, _) = events(&db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let paused = push_stream(store, &receivers[0].url, Alg::Es256);
        set_paused(store, &paused, true);
        let before: Vec<usize> = receivers.iter().map(|r| r.seen().len()).collect();
        change(store, Event::UserCreated, "q1");
        change(store, Event::UserCreated, "q2");
        assert_eq!(
            deliverer.run_once().await.unwrap(),
            Ran::NoStreams,
            "{:?}: a paused stream is not delivered",
            db.backend()
        );
        // Beside an active stream that is due, still nothing for it.
        let active = push_stream(store, &receivers[1].url, Alg::Es256);
        change(store, Event::UserDeleted, "q1");
        drain(&deliverer).await;
        assert_eq!(
            pushed_subjects(&receivers[1], &events, &active, before[1]).await,
            ["/Users/q1"],
            "{:?}: the active stream delivered",
            db.backend()
        );
        assert_eq!(
            receivers[0].seen().len(),
            before[0],
            "{:?}: nothing reached the paused stream's receiver",
            db.backend()
        );
        let status = store
            .read(|c| {
                let s = streams::find_stream(c, &paused.stream.id)?;
                streams::stream_status(c, &s, 3)
            })
            .unwrap();
        assert_eq!((status.lag, status.state), (3, "paused"));

        set_paused(store, &paused, false);
        drain(&deliverer).await;
        let got = pushed_events(&receivers[0], &events, &paused, before[0]).await;
        let want = [
            ("urn:ietf:params:scim:event:prov:create:full", "/Users/q1"),
            ("urn:ietf:params:scim:event:prov:create:full", "/Users/q2"),
            ("urn:ietf:params:scim:event:prov:delete", "/Users/q1"),
        ]
        .map(|(e, s)| (e.to_owned(), s.to_owned()));
        assert_eq!(got, want, "{:?}: the backlog, in order", db.backend());
        for created in [paused, active] {
            store
                .write(|c| streams::delete_stream(c, &created.stream.id))
                .unwrap();
        }
    }
    for r in receivers {
        r.handle.stop(false).await;
    }
}

#[actix_web::test]
async fn a_paused_poll_stream_answers_no_events_until_resumed() {
    for db in backends() {
        let (events, _) = events(&db, config(true));
        let ev = events.clone();
        let svc = test::init_service(App::new().configure(move |cfg| ev.configure(cfg))).await;
        let created = poll_stream(db.store());
        change(db.store(), Event::UserCreated, "r1");
        change(db.store(), Event::UserPatched, "r1");
        set_paused(db.store(), &created, true);
        let ask = json!({"maxEvents": 10, "returnImmediately": true});
        let (status, body) = poll(&svc, &created, ask.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"sets": {}, "moreAvailable": false}),
            "{:?}: paused",
            db.backend()
        );

        set_paused(db.store(), &created, false);
        let (status, body) = poll(&svc, &created, ask).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let jwks = get_jwks(&events, &created).await;
        let mut sets: Vec<(i64, Value)> = body["sets"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(jti, set)| {
                let position = jti.rsplit_once(':').unwrap().1.parse().unwrap();
                (position, verify(set.as_str().unwrap(), &jwks))
            })
            .collect();
        sets.sort_by_key(|(p, _)| *p);
        let claims: Vec<Value> = sets.into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            event_names(&claims),
            [
                "urn:ietf:params:scim:event:prov:create:notice",
                "urn:ietf:params:scim:event:prov:patch:notice",
            ],
            "{:?}: resumed",
            db.backend()
        );
        assert!(claims.iter().all(|c| c["sub_id"]["uri"] == "/Users/r1"));
    }
}

#[actix_web::test]
async fn a_push_stream_delivers_exactly_its_selected_event_and_resource_types_in_order() {
    let receiver = Receiver::start();
    for db in backends() {
        let store = db.store();
        let (events, _) = events(&db, config(true));
        let deliverer = Deliverer::new(events.clone()).unwrap();
        let created = stream_in(
            store,
            scim_store::OrgId::DEFAULT,
            NewStream {
                event_types: vec![EventType::Create, EventType::Delete],
                resource_types: vec!["User".into()],
                ..push_settings(&receiver.url, Alg::Es256)
            },
        );
        let before = receiver.seen().len();
        change_of(store, Event::UserCreated, "User", "s1");
        change_of(store, Event::GroupCreated, "Group", "g1");
        change_of(store, Event::UserPatched, "User", "s1");
        change_of(store, Event::UserSuspended, "User", "s1");
        change_of(store, Event::UserCreated, "User", "s2");
        change_of(store, Event::UserReplaced, "User", "s2");
        change_of(store, Event::GroupDeleted, "Group", "g1");
        change_of(store, Event::UserDeleted, "User", "s1");
        change_of(store, Event::UserActivated, "User", "s2");
        drain(&deliverer).await;
        let got = pushed_events(&receiver, &events, &created, before).await;
        let want = [
            ("urn:ietf:params:scim:event:prov:create:full", "/Users/s1"),
            ("urn:ietf:params:scim:event:prov:create:full", "/Users/s2"),
            ("urn:ietf:params:scim:event:prov:delete", "/Users/s1"),
        ]
        .map(|(e, s)| (e.to_owned(), s.to_owned()));
        assert_eq!(got, want, "{:?}", db.backend());
        // Past what it does not select too: nothing pending.
        let status = store
            .read(|c| {
                let s = streams::find_stream(c, &created.stream.id)?;
                streams::stream_status(c, &s, 3)
            })
            .unwrap();
        assert_eq!(status.lag, 0, "{:?}", db.backend());
        store
            .write(|c| streams::delete_stream(c, &created.stream.id))
            .unwrap();
    }
    receiver.handle.stop(false).await;
}
