//! Provisioning health end to end, on SQLite and PostgreSQL: SCIM requests
//! through the whole app (`scimd::configure_app`), the health round that
//! each replica runs every 10 seconds (`scimd::provisioning::round`,
//! called by the test), and `GET /admin/api/v1/provisioning`. Time moves
//! on the app's injected clock; nothing waits for it.
//!
//! Covered: a cycle ends after 10 minutes of silence; a failure ratio over
//! the threshold raises a warning naming the recurring validation error,
//! once (one WARN line per transition); a revoked token's 401s and
//! synchronization's 403s are named as such; silence warns while
//! synchronization is enabled and not while it is disabled; the failed
//! requests list status, `scimType` and detail, never a token or a body;
//! two replicas' traffic is merged; the recent window is the run-time
//! settings' (`health_window_requests`, `health_window_minutes`); and
//! SCIM requests failing with 503 while PostgreSQL is unreachable are
//! named as the database's doing.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, App};
use scim_store::testing::backends;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// A password sent in a refused request: it must never be shown.
const PASSWORD: &str = "Never-Shown-9f3b2c";

/// One replica: the whole app over the test database, with its own
/// traffic record and the shared clock.
struct Replica<S> {
    app: S,
    shared: scimd::Shared,
    watch: scimd::provisioning::Watch,
}

async fn replica(
    db: &scim_store::testing::TestDb,
    clock: &scim_core::Clock,
) -> Replica<impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>>
{
    replica_on(db.url(), db.store().clone(), clock).await
}

/// A replica over `store` (connected to `url`).
async fn replica_on(
    url: &str,
    store: scim_store::Store,
    clock: &scim_core::Clock,
) -> Replica<impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>>
{
    let env = vec![("SCIMD__DATABASE__URL".to_string(), url.to_string())];
    let settings = scimd::settings::Settings::load_from(None, env).unwrap();
    let shared = scimd::Shared {
        clock: clock.clone(),
        ..settings.shared()
    };
    let app_shared = shared.clone();
    let app = test::init_service(
        App::new().configure(move |cfg| scimd::configure_app(cfg, &store, &app_shared, &settings)),
    )
    .await;
    Replica {
        app,
        shared,
        watch: scimd::provisioning::Watch::default(),
    }
}

impl<S> Replica<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(b) = body {
            req = req
                .insert_header(("Content-Type", "application/scim+json"))
                .set_payload(b.to_string());
        }
        let res = match self.app.call(req.to_request()).await {
            Ok(r) => r,
            Err(e) => ServiceResponse::new(
                test::TestRequest::default().to_http_request(),
                e.error_response(),
            ),
        };
        let status = res.status().as_u16();
        let bytes = test::read_body(res).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `PUT /admin/api/v1/settings` (`If-Match: *`): the stored settings
    /// with `changes` applied.
    async fn put_settings(&self, admin: &str, changes: Value) -> (u16, Value) {
        let (status, mut settings) = self
            .send("GET", "/admin/api/v1/settings", admin, None)
            .await;
        assert_eq!(status, 200, "{settings}");
        for key in ["version", "updated_at", "updated_by"] {
            settings.as_object_mut().unwrap().remove(key);
        }
        for (k, v) in changes.as_object().unwrap() {
            settings[k] = v.clone();
        }
        let req = test::TestRequest::put()
            .uri("/admin/api/v1/settings")
            .insert_header(("Authorization", format!("Bearer {admin}")))
            .insert_header(("If-Match", "*"))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(settings.to_string());
        let res = self.app.call(req.to_request()).await.unwrap();
        let status = res.status().as_u16();
        let bytes = test::read_body(res).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `GET /admin/api/v1/provisioning` with the admin token `admin`.
    async fn view(&self, admin: &str) -> Value {
        let (status, body) = self
            .send("GET", "/admin/api/v1/provisioning", admin, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The health round, with its log captured.
    fn round(&mut self, store: &scim_store::Store) -> String {
        let log = Log::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        let now = self.shared.clock.now();
        tracing::subscriber::with_default(subscriber, || {
            scimd::provisioning::round(store, &self.shared.health, &mut self.watch, now);
        });
        log.text()
    }
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;
    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

fn scim_token(store: &scim_store::Store, name: &str) -> (String, String) {
    let created = scim_admin::service::create_scim_token(
        store,
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::CreateTokenRequest {
            name: name.into(),
            expires_at: None,
        },
    )
    .unwrap();
    (created.token.id, created.secret)
}

fn admin_token(store: &scim_store::Store) -> String {
    scim_admin::service::create_admin_token(
        store,
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::CreateTokenRequest {
            name: "ops".into(),
            expires_at: None,
        },
    )
    .unwrap()
    .secret
}

fn set_sync(store: &scim_store::Store, enabled: bool) {
    store
        .write(|c| {
            if enabled {
                scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "cli:test", &[])
                    .map(|_| ())
            } else {
                scim_store::sync::disable_sync(c, scim_store::OrgId::DEFAULT, "cli:test", "test")
                    .map(|_| ())
            }
        })
        .unwrap();
}

fn credential<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no credential {id} in {view:#}"))
}

fn causes(view: &Value) -> Vec<String> {
    view["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["cause"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn cycles_failures_and_warnings_of_each_credential() {
    for db in backends() {
        let store = db.store();
        let clock = scim_core::Clock::system();
        let mut r = replica(&db, &clock).await;
        let admin = admin_token(store);
        let (entra_id, entra) = scim_token(store, "Entra ID");
        set_sync(store, true);

        // A first cycle: three creates, an update, a delete, one refusal.
        let mut ids = Vec::new();
        for i in 0..3 {
            let (status, body) = r
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &entra,
                    Some(json!({"schemas": [USER], "userName": format!("u{i}@contoso.com")})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "U"}]});
        let (status, _) = r
            .send(
                "PATCH",
                &format!("/scim/v2/Users/{}", ids[0]),
                &entra,
                Some(patch),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = r
            .send(
                "DELETE",
                &format!("/scim/v2/Users/{}", ids[1]),
                &entra,
                None,
            )
            .await;
        assert_eq!(status, 204);
        clock.advance(Duration::from_secs(60));
        let (status, refused) = r
            .send(
                "POST",
                "/scim/v2/Users",
                &entra,
                Some(json!({"schemas": [USER], "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 400, "{refused}");
        let log = r.round(store);
        assert!(!log.contains("WARN"), "{log}");
        let v = r.view(&admin).await;
        assert_eq!(causes(&v), Vec::<String>::new(), "{v:#}");
        let c = credential(&v, &entra_id);
        assert_eq!(c["kind"], "scim_token");
        assert_eq!(c["name"], "Entra ID");
        let cycle = &c["cycle"];
        assert_eq!(cycle["in_progress"], true);
        assert_eq!(
            (
                &cycle["requests"],
                &cycle["creates"],
                &cycle["updates"],
                &cycle["deletes"],
                &cycle["failures"]
            ),
            (&json!(6), &json!(3), &json!(1), &json!(1), &json!(1)),
            "{cycle:#}"
        );
        assert_eq!(cycle["length_secs"], 60);
        assert_eq!(c["previous_cycle"], Value::Null);
        // The failed request: status, scimType and detail, and no secret.
        let failure = &c["failures"][0];
        assert_eq!(failure["status"], 400);
        assert_eq!(failure["method"], "POST");
        assert_eq!(failure["route"], "/Users");
        assert_eq!(failure["scim_type"], refused["scimType"]);
        assert_eq!(failure["detail"], refused["detail"]);
        let text = v.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains(&entra), "{text}");

        // Eleven minutes of silence end the cycle: the next request
        // starts another, and the first becomes the previous one.
        clock.advance(Duration::from_secs(11 * 60));
        let (status, _) = r.send("GET", "/scim/v2/Users", &entra, None).await;
        assert_eq!(status, 200);
        r.round(store);
        let v = r.view(&admin).await;
        let c = credential(&v, &entra_id);
        assert_eq!(c["cycle"]["requests"], 1);
        assert_eq!(c["previous_cycle"]["requests"], 6);
        assert_eq!(c["previous_cycle"]["creates"], 3);

        // A recurring validation error: 7 refusals of 13 recent requests
        // (54% ≥ 40%) raise one warning naming it, logged once.
        for _ in 0..6 {
            let (status, _) = r
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &entra,
                    Some(json!({"schemas": [USER]})),
                )
                .await;
            assert_eq!(status, 400);
        }
        let log = r.round(store);
        assert_eq!(log.matches("provisioning at risk").count(), 1, "{log}");
        assert!(log.contains("WARN"), "{log}");
        let v = r.view(&admin).await;
        assert_eq!(causes(&v), ["validation_error"], "{v:#}");
        let w = &v["warnings"][0];
        assert_eq!(w["credential_name"], "Entra ID");
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            w["message"].as_str().unwrap().contains(detail),
            "{w:#} should name {detail}"
        );
        let c = credential(&v, &entra_id);
        assert_eq!(
            (&c["recent_requests"], &c["recent_failures"]),
            (&json!(13), &json!(7))
        );
        // The next round raises nothing new.
        let log = r.round(store);
        assert!(!log.contains("provisioning at risk"), "{log}");

        // A revoked token: its 401s are counted against it, by name.
        let (revoked_id, revoked) = scim_token(store, "Old Entra token");
        let (status, _) = r.send("GET", "/scim/v2/Users", &revoked, None).await;
        assert_eq!(status, 200);
        scim_admin::service::revoke_scim_token(
            store,
            &scim_store::changes::Actor::cli("test"),
            &revoked_id,
        )
        .unwrap();
        clock.advance(Duration::from_secs(6)); // past the token cache
        for _ in 0..5 {
            let (status, _) = r.send("GET", "/scim/v2/Users", &revoked, None).await;
            assert_eq!(status, 401);
        }
        // A token scimd never issued: counted as unknown.
        for _ in 0..5 {
            let (status, _) = r.send("GET", "/scim/v2/Users", "scimd_made-up", None).await;
            assert_eq!(status, 401);
        }
        r.round(store);
        let v = r.view(&admin).await;
        let c = credential(&v, &revoked_id);
        assert_eq!(c["warning"]["cause"], "token_revoked_or_expired", "{c:#}");
        assert_eq!(c["failures"][0]["refusal"], "revoked");
        let unknown = credential(&v, "");
        assert_eq!(unknown["kind"], "unknown");
        assert_eq!(unknown["warning"]["cause"], "unknown_token");
        assert!(!v.to_string().contains("scimd_made-up"));

        // Synchronization disabled: a credential's 403s name it, and
        // silence raises nothing while it stays disabled.
        let (sync_id, sync_token) = scim_token(store, "Staging");
        set_sync(store, false);
        for _ in 0..5 {
            let (status, _) = r.send("GET", "/scim/v2/Users", &sync_token, None).await;
            assert_eq!(status, 403);
        }
        r.round(store);
        let v = r.view(&admin).await;
        assert_eq!(
            credential(&v, &sync_id)["warning"]["cause"],
            "sync_disabled"
        );
        clock.advance(Duration::from_secs(3 * 3600));
        r.round(store);
        assert!(!causes(&r.view(&admin).await).contains(&"silence".to_owned()));

        // Enabled, three hours without a request (threshold 2 h) warn.
        set_sync(store, true);
        let log = r.round(store);
        assert!(
            log.contains("cause=\"silence\"") || log.contains("cause=silence"),
            "{log}"
        );
        let v = r.view(&admin).await;
        assert!(causes(&v).contains(&"silence".to_owned()), "{v:#}");
        let (status, _) = r.send("GET", "/scim/v2/Users", &entra, None).await;
        assert_eq!(status, 200);
        let log = r.round(store);
        assert!(log.contains("provisioning warning cleared"), "{log}");
        assert!(!causes(&r.view(&admin).await).contains(&"silence".to_owned()));
    }
}

#[actix_web::test]
async fn the_traffic_of_two_replicas_is_merged() {
    for db in backends() {
        let store = db.store();
        let clock = scim_core::Clock::system();
        let mut a = replica(&db, &clock).await;
        let mut b = replica(&db, &clock).await;
        assert_ne!(a.shared.health.replica_id(), b.shared.health.replica_id());
        let admin = admin_token(store);
        let (id, token) = scim_token(store, "Entra ID");
        set_sync(store, true);
        for (i, r) in [&a, &b, &a].into_iter().enumerate() {
            let (status, _) = r
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &token,
                    Some(json!({"schemas": [USER], "userName": format!("r{i}@contoso.com")})),
                )
                .await;
            assert_eq!(status, 201);
        }
        for _ in 0..4 {
            let (status, _) = b
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &token,
                    Some(json!({"schemas": [USER]})),
                )
                .await;
            assert_eq!(status, 400);
        }
        a.round(store);
        b.round(store);
        // Either replica's admin API shows both replicas' traffic.
        for r in [&a, &b] {
            let (status, v) = r
                .send("GET", "/admin/api/v1/provisioning", &admin, None)
                .await;
            assert_eq!(status, 200);
            let c = credential(&v, &id);
            assert_eq!(c["cycle"]["requests"], 7, "{c:#}");
            assert_eq!(c["cycle"]["creates"], 3);
            assert_eq!(c["cycle"]["failures"], 4);
            assert_eq!(c["failures"].as_array().unwrap().len(), 4);
            // 4 of 7 failed: 57% ≥ 40%.
            assert_eq!(c["warning"]["cause"], "validation_error");
        }
        // A replica's next save replaces its own rows, never the other's.
        let (status, _) = a.send("GET", "/scim/v2/Users", &token, None).await;
        assert_eq!(status, 200);
        a.round(store);
        let (_, v) = a
            .send("GET", "/admin/api/v1/provisioning", &admin, None)
            .await;
        assert_eq!(credential(&v, &id)["cycle"]["requests"], 8);
    }
}

#[actix_web::test]
async fn the_recent_window_is_a_run_time_setting() {
    for db in backends() {
        let store = db.store();
        let clock = scim_core::Clock::system();
        let mut r = replica(&db, &clock).await;
        let admin = admin_token(store);
        let (id, token) = scim_token(store, "Entra ID");
        set_sync(store, true);
        // 20 creates, then two minutes later 6 refusals.
        for i in 0..20 {
            let (status, _) = r
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &token,
                    Some(json!({"schemas": [USER], "userName": format!("w{i}@contoso.com")})),
                )
                .await;
            assert_eq!(status, 201);
        }
        clock.advance(Duration::from_secs(120));
        for _ in 0..6 {
            let (status, _) = r
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &token,
                    Some(json!({"schemas": [USER]})),
                )
                .await;
            assert_eq!(status, 400);
        }
        r.round(store);

        // The default window (the last 100 requests, or 15 minutes'):
        // 6 of 26 failed, under 40%.
        let v = r.view(&admin).await;
        assert_eq!(
            (&v["window_requests"], &v["window_minutes"]),
            (&json!(100), &json!(15))
        );
        let c = credential(&v, &id);
        assert_eq!(
            (&c["recent_requests"], &c["recent_failures"]),
            (&json!(26), &json!(6))
        );
        assert_eq!(c["warning"], Value::Null, "{c:#}");

        // Out of range: 422 naming each field, nothing changed.
        let (status, body) = r
            .put_settings(
                &admin,
                json!({"health_window_requests": 5, "health_window_minutes": 61}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let text = body.to_string();
        assert!(text.contains("health_window_requests"), "{text}");
        assert!(text.contains("health_window_minutes"), "{text}");
        assert_eq!(r.view(&admin).await["window_requests"], 100);

        // The last 10 requests, or the last minute's when more (the last
        // minute holds at most the 6 refusals): 6 of 10 failed. The
        // traffic already recorded is assessed with the new window.
        let (status, body) = r
            .put_settings(
                &admin,
                json!({"health_window_requests": 10, "health_window_minutes": 1}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (
                &body["health_window_requests"],
                &body["health_window_minutes"]
            ),
            (&json!(10), &json!(1))
        );
        let log = r.round(store);
        assert_eq!(log.matches("provisioning at risk").count(), 1, "{log}");
        assert!(log.contains("60% of the last 10 requests failed"), "{log}");
        let v = r.view(&admin).await;
        let c = credential(&v, &id);
        assert_eq!(
            (&c["recent_requests"], &c["recent_failures"]),
            (&json!(10), &json!(6))
        );
        assert_eq!(c["warning"]["cause"], "validation_error", "{c:#}");

        // The last 15 minutes hold all 26, more than 10: all of them count.
        let (status, _) = r
            .put_settings(&admin, json!({"health_window_minutes": 15}))
            .await;
        assert_eq!(status, 200);
        let v = r.view(&admin).await;
        let c = credential(&v, &id);
        assert_eq!(c["recent_requests"], 26);
        assert_eq!(c["warning"], Value::Null, "{c:#}");
        assert_eq!(causes(&v), Vec::<String>::new());
    }
}

/// Makes the database unreachable; returns what must live until the end
/// of the test.
type Cut = Box<dyn FnOnce() -> Box<dyn std::any::Any>>;

/// A store whose database becomes unreachable once `cut` is called, and
/// the URL it was opened with. Connections are opened on demand and the
/// checkout waits at most 1 ms: once cut, opening one fails at once
/// (refused), so a request gets its 503 without waiting on anything that
/// could succeed. On PostgreSQL a TCP proxy in front of the server stops
/// (`rough_edges::Proxy`); on SQLite, a database of its own whose
/// directory disappears (a volume gone) and cannot be created again.
/// `cut` returns what must live until the end of the test.
fn unreachable_store(db: &scim_store::testing::TestDb) -> (scim_store::Store, String, Cut) {
    use super::rough_edges::{host_port, Proxy};
    let connect = |url: &str| {
        scim_store::Store::connect(&scim_store::StoreConfig {
            url: url.to_owned(),
            pool_size: 2,
            connect_timeout: Duration::from_millis(1),
        })
        .unwrap()
    };
    match db.backend() {
        scim_store::Backend::Postgres => {
            let proxy = Proxy::start(host_port(db.url()));
            let url = db.url().replacen(
                &host_port(db.url()),
                &format!("127.0.0.1:{}", proxy.port),
                1,
            );
            let cut = move || -> Box<dyn std::any::Any> {
                proxy.cut();
                Box::new(proxy)
            };
            (connect(&url), url, Box::new(cut))
        }
        scim_store::Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("volume");
            let url = format!("sqlite://{}", home.join("scimd.db").display());
            // Migrated through a store that may wait for its connection (a
            // loaded machine takes more than 1 ms to open one); the test's
            // store opens the migrated database.
            scim_store::Store::connect(&scim_store::StoreConfig {
                url: url.clone(),
                pool_size: 1,
                connect_timeout: Duration::from_secs(30),
            })
            .unwrap()
            .migrate()
            .unwrap();
            let store = connect(&url);
            let cut = move || -> Box<dyn std::any::Any> {
                std::fs::rename(&home, dir.path().join("gone")).unwrap();
                // A file where the directory was: SQLite cannot create it.
                std::fs::write(&home, b"").unwrap();
                Box::new(dir)
            };
            (store, url, Box::new(cut))
        }
    }
}

/// The database becomes unreachable for one replica: its SCIM requests
/// get 503. Its own health round cannot save them, and warns from its own
/// traffic (log); saved through a replica that still reaches the database,
/// the Provisioning API's banner names the database as the likely cause.
#[actix_web::test]
async fn scim_requests_failing_while_the_database_is_unreachable_name_it() {
    for db in backends() {
        let clock = scim_core::Clock::system();
        let store = db.store();
        let admin = admin_token(store);
        let (_, token) = scim_token(store, "Entra ID");
        set_sync(store, true);
        let (lost, url, cut) = unreachable_store(&db);
        let mut a = replica_on(&url, lost.clone(), &clock).await;
        let b = replica(&db, &clock).await;
        let _gone = cut();

        for i in 0..3 {
            let (status, body) = a.send("GET", "/scim/v2/Users", &token, None).await;
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["status"], "503", "{body}");
            let (status, body) = a
                .send(
                    "POST",
                    "/scim/v2/Users",
                    &token,
                    Some(json!({"schemas": [USER], "userName": format!("d{i}@contoso.com")})),
                )
                .await;
            assert_eq!(status, 503, "{body}");
        }
        // Its traffic saved where the database is reachable: the banner.
        a.round(store);
        let v = b.view(&admin).await;
        assert_eq!(causes(&v), ["database_unavailable"], "{v:#}");
        let w = &v["warnings"][0];
        let message = w["message"].as_str().unwrap();
        assert!(
            message.contains("100% of the last 6 requests failed") && message.contains("database"),
            "{w:#}"
        );
        assert!(
            w["action"].as_str().unwrap().contains("Check the database"),
            "{w:#}"
        );
        // Without the database the token could not be checked: the
        // requests are counted as the unknown credential's.
        assert_eq!(w["credential_kind"], "unknown");
        let failures = credential(&v, "")["failures"].as_array().unwrap().clone();
        assert_eq!(failures.len(), 6);
        assert!(failures.iter().all(|f| f["status"] == 503), "{failures:#?}");
        assert!(!v.to_string().contains(&token));

        // The replica that lost the database, left to itself, warns from
        // its own traffic (log and metrics).
        a.watch = scimd::provisioning::Watch::default();
        let log = a.round(&lost);
        assert!(
            log.contains("assessed from this replica's traffic only"),
            "{log}"
        );
        assert!(
            log.contains("provisioning at risk") && log.contains("database_unavailable"),
            "{log}"
        );
    }
}

#[actix_web::test]
async fn the_round_warns_for_every_organization_naming_it() {
    for db in backends() {
        let store = db.store();
        let clock = scim_core::Clock::system();
        let mut r = replica(&db, &clock).await;
        let acme = store
            .write(|c| {
                scim_store::organizations::create_organization(
                    c,
                    "acme",
                    "Acme",
                    None,
                    &scim_store::changes::Actor::cli("test"),
                )
            })
            .unwrap()
            .id;
        let token = scim_admin::service::create_scim_token(
            store,
            &scim_store::changes::Actor::cli("test").in_org(acme),
            &scim_admin::model::CreateTokenRequest {
                name: "Acme Entra".into(),
                expires_at: None,
            },
        )
        .unwrap()
        .secret;
        store
            .write(|c| scim_store::sync::enable_sync(c, acme, "cli:test", &[]).map(|_| ()))
            .unwrap();
        // acme's identity provider sends Users without a userName; the
        // default organization has no traffic at all.
        for _ in 0..6 {
            let (status, _) = r
                .send(
                    "POST",
                    "/scim/v2/o/acme/Users",
                    &token,
                    Some(json!({"schemas": [USER]})),
                )
                .await;
            assert_eq!(status, 400);
        }
        let log = r.round(store);
        assert_eq!(log.matches("provisioning at risk").count(), 1, "{log}");
        assert!(
            log.contains("provisioning at risk in organization acme"),
            "{log}"
        );
        let raised: Vec<_> = r.watch.raised().collect();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].0, "acme");
        assert_eq!(raised[0].3, "Acme Entra");
        // The next round raises nothing new; a default-organization round
        // does not clear acme's warning.
        let log = r.round(store);
        assert!(!log.contains("provisioning"), "{log}");
    }
}
