//! HTTP tests of the admin API through the real actix routes, on SQLite
//! and PostgreSQL (`TEST_DATABASE_URL`; see `scim_store::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod activity;
mod admins;
mod console;
mod extensions;
mod organizations;
mod roles;
mod saml_sign_in;
mod streams;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{test, App};
use scim_admin::{AdminApi, AdminConfig};
use scim_store::testing::{backends, TestDb};
use serde_json::{json, Value};

const PEM: &str = include_str!("../fixtures/idp-signing.pem");
const PASSWORD: &str = "correct horse battery staple";

struct Res {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

impl Res {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a request authenticates.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

impl Auth {
    fn describe(&self) -> &'static str {
        match self {
            Auth::None => "no credentials",
            Auth::Bearer(_) => "a bearer token that is not an admin token",
            Auth::Session { .. } => "a forged session",
        }
    }
}

struct TestApp {
    db: TestDb,
    api: AdminApi,
}

impl TestApp {
    fn new(db: TestDb) -> Self {
        Self::with_config(db, |_| {})
    }

    /// With the admin settings changed by `f`.
    fn with_config(db: TestDb, f: impl FnOnce(&mut AdminConfig)) -> Self {
        let mut config = AdminConfig {
            session_ttl: time::Duration::hours(1),
            ..AdminConfig::default()
        };
        f(&mut config);
        let api = AdminApi::new(db.store().clone(), config);
        TestApp { db, api }
    }

    async fn service(
        &self,
    ) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
    {
        let api = self.api.clone();
        test::init_service(App::new().configure(move |cfg| api.configure(cfg))).await
    }

    async fn send(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Res {
        self.send_with(method, path, auth, body, |r| r).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
        extra: impl FnOnce(test::TestRequest) -> test::TestRequest,
    ) -> Res {
        let req = extra(request(method, path, auth, body));
        let svc = self.service().await;
        call(&svc, req).await
    }
}

/// Builds a request as [`TestApp::send`] does.
fn request(method: Method, path: &str, auth: &Auth, body: Option<Value>) -> test::TestRequest {
    let mut req = test::TestRequest::default()
        .method(method)
        .uri(path)
        .peer_addr("192.0.2.1:40000".parse().unwrap());
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {t}")));
        }
        Auth::Session { cookie, csrf } => {
            req = req.insert_header((header::COOKIE, format!("scimd_admin_session={cookie}")));
            if let Some(c) = csrf {
                req = req.insert_header(("X-CSRF-Token", c.clone()));
            }
        }
    }
    if let Some(b) = body {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(b.to_string());
    }
    req
}

/// Sends `req` to an app built by [`TestApp::service`].
async fn call(
    svc: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    req: test::TestRequest,
) -> Res {
    let res = match svc.call(req.to_request()).await {
        Ok(r) => r,
        Err(e) => ServiceResponse::new(
            test::TestRequest::default().to_http_request(),
            e.error_response(),
        ),
    };
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Res {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// Creates the first admin through the CLI's service and signs in.
    async fn signed_in(&self) -> Auth {
        create_root(self).await;
        let res = self
            .send(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(json!({"username": "root", "password": PASSWORD})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        Auth::Session {
            cookie: cookie_value(&res).unwrap(),
            csrf: Some(res.body["csrf_token"].as_str().unwrap().to_string()),
        }
    }
}

/// Creates the administrator `root` (what `scimd admin create` does).
async fn create_root(app: &TestApp) {
    scim_admin::service::create_admin(
        app.db.store(),
        &app.api.config().password_hasher,
        &scim_store::changes::Actor::cli("test"),
        "root",
        PASSWORD,
    )
    .await
    .unwrap();
}

fn cookie_value(res: &Res) -> Option<String> {
    let set = res.header("set-cookie")?;
    let first = set.split(';').next()?;
    first
        .strip_prefix("scimd_admin_session=")
        .map(str::to_owned)
}

fn assert_error(res: &Res, status: u16, code: &str) {
    assert_eq!(res.status.as_u16(), status, "{}", res.body);
    assert_eq!(res.body["error"], code, "{}", res.body);
    assert_eq!(res.body["status"], status, "{}", res.body);
    assert!(res.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn field_names(res: &Res) -> Vec<String> {
    res.body["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The operations of the admin OpenAPI document that need no
/// administrator: health, first-run setup, signing in, and the OAuth
/// protocol endpoints (their clients authenticate with client secrets, or
/// not at all). The document leaves `security` off exactly these; every
/// other operation must answer 401 without credentials.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("GET", "/admin/api/v1/setup"),
    ("POST", "/admin/api/v1/setup"),
    ("POST", "/admin/api/v1/session"),
];

/// Every operation of the admin OpenAPI document (`admin_openapi`, the
/// one served at /admin/api/openapi.json): its method, its path with each
/// `{parameter}` filled in, and whether the document requires credentials
/// for it (a non-empty `security`, the operation's own or else the
/// document's).
fn documented_operations() -> Vec<(Method, String, String, bool)> {
    let doc = serde_json::to_value(scim_admin::openapi::admin_openapi()).unwrap();
    let default_security = doc.get("security").cloned().unwrap_or(Value::Null);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            if !op.is_object() || !op["responses"].is_object() {
                continue;
            }
            let security = op.get("security").unwrap_or(&default_security);
            let protected = security.as_array().is_some_and(|s| !s.is_empty());
            let mut uri = String::new();
            let mut rest = path.as_str();
            while let Some((before, after)) = rest.split_once('{') {
                uri.push_str(before);
                uri.push('x');
                rest = after.split_once('}').unwrap().1;
            }
            uri.push_str(rest);
            ops.push((m, path.clone(), uri, protected));
        }
    }
    ops
}

#[actix_web::test]
async fn every_documented_operation_needs_admin_credentials_unless_public() {
    let ops = documented_operations();
    let mut public: Vec<(String, String)> = ops
        .iter()
        .filter(|(_, _, _, protected)| !protected)
        .map(|(m, path, _, _)| (m.to_string(), path.clone()))
        .collect();
    public.sort();
    let mut expected: Vec<(String, String)> = PUBLIC
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        public, expected,
        "the operations the admin OpenAPI document leaves public (no `security`)"
    );
    let protected: Vec<_> = ops.iter().filter(|op| op.3).collect();
    // The OAuth client and grant routes are among them.
    assert!(
        protected
            .iter()
            .filter(|(_, path, _, _)| path.starts_with("/admin/api/v1/oauth-"))
            .count()
            >= 6,
        "{protected:?}"
    );
    for db in backends() {
        let app = TestApp::new(db);
        let (_, scim_secret) = app
            .db
            .store()
            .write(|c| scim_store::create_token(c, "idp", None))
            .unwrap();
        let svc = app.service().await;
        for (method, path, uri, _) in &protected {
            for auth in [
                Auth::None,
                Auth::Bearer(scim_secret.clone()),
                Auth::Bearer("scimd_admin_wrong".into()),
                Auth::Session {
                    cookie: "forged".into(),
                    csrf: Some("x".into()),
                },
            ] {
                let req = request(method.clone(), uri, &auth, Some(json!({})));
                let res = call(&svc, req).await;
                let what = format!("{method} {path} with {}", auth.describe());
                assert_eq!(res.status, 401, "{what}: {}", res.body);
                assert_error(&res, 401, "unauthorized");
                assert!(res.header("www-authenticate").is_some(), "{what}");
            }
        }
    }
}

#[actix_web::test]
async fn first_run_setup_creates_the_first_admin_once() {
    for db in backends() {
        let app = TestApp::new(db);
        let res = app
            .send(Method::GET, "/admin/api/v1/setup", &Auth::None, None)
            .await;
        assert_eq!(res.body["required"], true);
        let code = scim_admin::service::issue_setup_code(app.db.store(), time::Duration::hours(1))
            .unwrap()
            .unwrap();
        let setup = |code: &str, password: &str| json!({"code": code, "username": "first", "password": password});
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/setup",
                &Auth::None,
                Some(setup("wrong", PASSWORD)),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(field_names(&res), ["code"]);
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/setup",
                &Auth::None,
                Some(setup(&code, "short")),
            )
            .await;
        assert_eq!(field_names(&res), ["password"]);
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/setup",
                &Auth::None,
                Some(setup(&code, PASSWORD)),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["username"], "first");
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/setup",
                &Auth::None,
                Some(setup(&code, PASSWORD)),
            )
            .await;
        assert_error(&res, 409, "conflict");
        let res = app
            .send(Method::GET, "/admin/api/v1/setup", &Auth::None, None)
            .await;
        assert_eq!(res.body["required"], false);
        // The new admin signs in.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(json!({"username": "FIRST", "password": PASSWORD})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
}

#[actix_web::test]
async fn sessions_use_strict_http_only_cookies_and_csrf() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let Auth::Session { cookie, csrf } = auth.clone() else {
            unreachable!()
        };
        // The cookie's attributes, over plain HTTP and behind a TLS proxy.
        let login = json!({"username": "root", "password": PASSWORD});
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(login.clone()),
            )
            .await;
        let set = res.header("set-cookie").unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "{set}");
        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(login),
                |r| r.insert_header(("X-Forwarded-Proto", "https")),
            )
            .await;
        assert!(res.header("set-cookie").unwrap().contains("Secure"));

        let res = app
            .send(Method::GET, "/admin/api/v1/session", &auth, None)
            .await;
        assert_eq!(res.body["username"], "root");
        assert_eq!(res.body["csrf_token"].as_str(), csrf.as_deref());

        // Reads need no CSRF token; state changes do.
        let no_csrf = Auth::Session {
            cookie: cookie.clone(),
            csrf: None,
        };
        let wrong_csrf = Auth::Session {
            cookie: cookie.clone(),
            csrf: Some("wrong".into()),
        };
        assert_eq!(
            app.send(Method::GET, "/admin/api/v1/sync", &no_csrf, None)
                .await
                .status,
            200
        );
        for bad in [&no_csrf, &wrong_csrf] {
            let res = app
                .send(Method::POST, "/admin/api/v1/sync/disable", bad, None)
                .await;
            assert_error(&res, 403, "csrf_failed");
            let res = app
                .send(
                    Method::POST,
                    "/admin/api/v1/scim-tokens",
                    bad,
                    Some(json!({"name": "x"})),
                )
                .await;
            assert_error(&res, 403, "csrf_failed");
        }
        assert!(app
            .db
            .store()
            .read(|c| scim_store::list_tokens(c, scim_store::OrgId::DEFAULT))
            .unwrap()
            .is_empty());
        let res = app
            .send(Method::POST, "/admin/api/v1/sync/disable", &auth, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);

        // Logout ends the session.
        let res = app
            .send(Method::DELETE, "/admin/api/v1/session", &no_csrf, None)
            .await;
        assert_error(&res, 403, "csrf_failed");
        let res = app
            .send(Method::DELETE, "/admin/api/v1/session", &auth, None)
            .await;
        assert_eq!(res.status, 204);
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &auth, None)
            .await;
        assert_error(&res, 401, "unauthorized");
    }
}

#[actix_web::test]
async fn logins_are_limited_per_account_and_address() {
    for db in backends() {
        let app = TestApp::new(db);
        create_root(&app).await;
        let wrong = json!({"username": "root", "password": "not the password"});
        for _ in 0..5 {
            let res = app
                .send(
                    Method::POST,
                    "/admin/api/v1/session",
                    &Auth::None,
                    Some(wrong.clone()),
                )
                .await;
            assert_error(&res, 401, "unauthorized");
            assert!(res.header("set-cookie").is_none());
        }
        let right = json!({"username": "root", "password": PASSWORD});
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(right),
            )
            .await;
        assert_error(&res, 429, "too_many_requests");
        // Until the first failure leaves the 900 s window.
        let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
        assert!((800..=900).contains(&retry), "{retry}");
        // Someone else's failures never refuse the right password from an
        // address without failures.
        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(json!({"username": "root", "password": PASSWORD})),
                |r| r.peer_addr("198.51.100.20:40000".parse().unwrap()),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
}

#[actix_web::test]
async fn sync_needs_every_caution_and_saml_and_is_logged() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &auth, None)
            .await;
        assert_eq!(res.body["enabled"], false);
        let ids: Vec<String> = res.body["cautions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(res.body["prerequisites"][0]["id"], "saml-configured");
        assert_eq!(res.body["prerequisites"][0]["satisfied"], false);

        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/sync/enable",
                &auth,
                Some(json!({"accepted_cautions": [ids[0]]})),
            )
            .await;
        assert_error(&res, 422, "sync_not_ready");
        assert_eq!(res.body["missing_cautions"], json!(ids[1..]));
        assert_eq!(
            res.body["missing_prerequisites"],
            json!(["saml-configured"])
        );
        assert!(field_names(&res).contains(&"saml".to_string()));
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/sync/enable",
                &auth,
                Some(json!({"accepted": []})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        // A body that does not fit its type names the field at fault.
        assert_eq!(field_names(&res), ["accepted"]);
        let message = res.body["fields"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("unknown field `accepted`"), "{message}");
        for (body, field, says) in [
            (
                json!({"name": 5}),
                "name",
                "invalid type: integer `5`, expected a string",
            ),
            (json!({"expires_at": null}), "name", "is required"),
            (
                json!({"name": "x", "expires_at": 20270101}),
                "expires_at",
                "invalid type",
            ),
        ] {
            let res = app
                .send(Method::POST, "/admin/api/v1/scim-tokens", &auth, Some(body))
                .await;
            assert_error(&res, 422, "validation_failed");
            assert_eq!(field_names(&res), [field], "{:?}", res.body);
            let message = res.body["fields"][0]["message"].as_str().unwrap();
            assert!(message.contains(says), "{message}");
            assert!(!message.contains("line 1"), "{message}");
        }

        // SAML: invalid input is per field; valid input is described.
        let res = app
            .send(
                Method::PUT,
                "/admin/api/v1/saml",
                &auth,
                Some(json!({"entity_id": "", "sso_url": "http://idp", "certificate_pem": "junk"})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(
            field_names(&res),
            ["entity_id", "sso_url", "certificate_pem"]
        );
        // In plain words, not x509-parser's `Der(UnexpectedTag { … })`.
        let message = res.body["fields"][2]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "not an X.509 certificate: the data decodes, but not to a certificate"
            ),
            "{message}"
        );
        let res = app
            .send(
                Method::PUT,
                "/admin/api/v1/saml",
                &auth,
                Some(json!({"metadata_xml": "<nope"})),
            )
            .await;
        assert_eq!(field_names(&res), ["metadata_xml"]);
        let res = app
            .send(
                Method::PUT,
                "/admin/api/v1/saml",
                &auth,
                Some(json!({
                    "entity_id": "https://sts.windows.net/t/",
                    "sso_url": "https://login.microsoftonline.com/t/saml2",
                    "certificate_pem": PEM
                })),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(
            res.body["certificate"]["subject"],
            "CN=Microsoft Azure Federated SSO Certificate"
        );
        assert_eq!(
            res.body["certificate"]["sha256_fingerprint"]
                .as_str()
                .unwrap()
                .len(),
            95
        );
        assert!(res.body["certificate"]["not_after"]
            .as_str()
            .unwrap()
            .starts_with("2126"));
        assert_eq!(res.body["updated_by"], "admin:root");

        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/sync/enable",
                &auth,
                Some(json!({"accepted_cautions": ids})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["enabled"], true);
        assert_eq!(res.body["enabled_by"], "admin:root");
        assert!(res.body["cautions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["accepted"] == true));
        assert!(app
            .db
            .store()
            .read(|c| scim_store::sync::sync_enabled(c, scim_store::OrgId::DEFAULT))
            .unwrap());

        let res = app
            .send(Method::POST, "/admin/api/v1/sync/disable", &auth, None)
            .await;
        assert_eq!(res.body["enabled"], false);
        let res = app
            .send(Method::GET, "/admin/api/v1/sync/events", &auth, None)
            .await;
        let events = res.body.as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["action"], "disabled");
        assert_eq!(events[1]["action"], "enabled");
        assert_eq!(events[1]["actor"], "admin:root");
    }
}

#[actix_web::test]
async fn settings_are_guarded_by_etags() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(Method::GET, "/admin/api/v1/settings", &auth, None)
            .await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body["deprovisioning"], "hard");
        let etag = res.header("etag").unwrap().to_string();
        let update = json!({
            "deprovisioning": "soft", "soft_delete_retention_days": 30,
            "default_page_size": 100, "max_page_size": 1000
        });
        let res = app
            .send(
                Method::PUT,
                "/admin/api/v1/settings",
                &auth,
                Some(update.clone()),
            )
            .await;
        assert_error(&res, 428, "precondition_required");
        let put = |etag: String, body: Value| {
            let auth = auth.clone();
            let app = &app;
            async move {
                app.send_with(
                    Method::PUT,
                    "/admin/api/v1/settings",
                    &auth,
                    Some(body),
                    |r| r.insert_header((header::IF_MATCH, etag)),
                )
                .await
            }
        };
        let res = put(etag.clone(), json!({"deprovisioning": "sometimes", "soft_delete_retention_days": 1, "default_page_size": 1, "max_page_size": 1})).await;
        assert_error(&res, 422, "validation_failed");
        let res = put(etag.clone(), json!({"deprovisioning": "soft", "soft_delete_retention_days": 0, "default_page_size": 5, "max_page_size": 2})).await;
        assert_eq!(
            field_names(&res),
            ["soft_delete_retention_days", "default_page_size"]
        );
        let res = put(etag.clone(), update.clone()).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["deprovisioning"], "soft");
        let new_etag = res.header("etag").unwrap().to_string();
        assert_ne!(new_etag, etag);
        // A second admin still holding the old ETag is refused.
        let res = put(etag, update.clone()).await;
        assert_error(&res, 412, "precondition_failed");
        let res = put(new_etag, update).await;
        assert_eq!(res.status, 200);
    }
}

#[actix_web::test]
async fn scim_and_admin_tokens_are_managed_and_kept_apart() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &auth,
                Some(json!({"name": " "})),
            )
            .await;
        assert_eq!(field_names(&res), ["name"]);
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &auth,
                Some(json!({"name": "Entra", "expires_at": "yesterday"})),
            )
            .await;
        assert_eq!(field_names(&res), ["expires_at"]);
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &auth,
                Some(json!({"name": "Entra", "expires_at": "2999-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let scim_secret = res.body["secret"].as_str().unwrap().to_string();
        let scim_id = res.body["token"]["id"].as_str().unwrap().to_string();
        assert_eq!(res.body["token"]["state"], "active");
        let now = scim_core::datetime::now();
        assert!(app
            .db
            .store()
            .read(|c| scim_store::authenticate_token(c, &scim_secret, &now))
            .unwrap()
            .is_some());
        let res = app
            .send(Method::GET, "/admin/api/v1/scim-tokens", &auth, None)
            .await;
        assert_eq!(res.body[0]["name"], "Entra");
        assert!(!res.body.to_string().contains(&scim_secret));

        // An admin API token for automation.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admin-tokens",
                &auth,
                Some(json!({"name": "ci"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let admin_secret = res.body["secret"].as_str().unwrap().to_string();
        let admin_id = res.body["token"]["id"].as_str().unwrap().to_string();
        assert!(admin_secret.starts_with("scimd_admin_"));
        let bearer = Auth::Bearer(admin_secret.clone());
        // No CSRF for bearer tokens: they are not sent automatically by browsers.
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/scim-tokens/{scim_id}"),
                &bearer,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        let res = app
            .send(
                Method::DELETE,
                "/admin/api/v1/scim-tokens/nope",
                &bearer,
                None,
            )
            .await;
        assert_error(&res, 404, "not_found");
        assert!(app
            .db
            .store()
            .read(|c| scim_store::authenticate_token(c, &scim_secret, &now))
            .unwrap()
            .is_none());
        // The admin token is not a SCIM token.
        assert!(app
            .db
            .store()
            .read(|c| scim_store::authenticate_token(c, &admin_secret, &now))
            .unwrap()
            .is_none());
        let res = app
            .send(Method::GET, "/admin/api/v1/admin-tokens", &bearer, None)
            .await;
        assert_eq!(res.body[0]["created_by"], "admin:root");
        assert!(res.body[0]["last_used_at"].is_string());
        let res = app
            .send(Method::GET, "/admin/api/v1/session", &bearer, None)
            .await;
        assert_error(&res, 401, "unauthorized");
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admin-tokens/{admin_id}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &bearer, None)
            .await;
        assert_error(&res, 401, "unauthorized");
    }
}

#[actix_web::test]
async fn openapi_documents_and_swagger_ui_are_served_offline() {
    let app = TestApp::new(TestDb::sqlite());
    let res = app.send(Method::GET, "/docs", &Auth::None, None).await;
    assert_eq!(res.status, 308);
    assert_eq!(res.header("location"), Some("/docs/"));
    // Administrators only: signed-out browsers go to the sign-in page, and
    // the documents answer 401 (a SCIM token does not open them either).
    let res = app.send(Method::GET, "/docs/", &Auth::None, None).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/admin/login?next=%2Fdocs%2F"));
    let (_, scim_secret) = app
        .db
        .store()
        .write(|c| scim_store::create_token(c, "idp", None))
        .unwrap();
    for path in ["/admin/api/openapi.json", "/scim/v2/openapi.json"] {
        for auth in [Auth::None, Auth::Bearer(scim_secret.clone())] {
            let res = app.send(Method::GET, path, &auth, None).await;
            assert_error(&res, 401, "unauthorized");
        }
    }
    let session = app.signed_in().await;
    let created = scim_admin::service::create_admin_token(
        app.db.store(),
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::CreateTokenRequest {
            name: "ci".into(),
            expires_at: None,
        },
    )
    .unwrap();
    let token = Auth::Bearer(created.secret);
    let res = app
        .send(Method::GET, "/admin/api/openapi.json", &token, None)
        .await;
    assert_eq!(res.status, 200);
    let res = app.send(Method::GET, "/docs/", &session, None).await;
    assert_eq!(res.status, 200);
    let html = res.body.as_str().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let res = app
        .send(Method::GET, "/docs/swagger-initializer.js", &session, None)
        .await;
    let js = res.body.as_str().unwrap();
    assert!(
        js.contains("\"validatorUrl\":\"none\"") || js.contains("validatorUrl"),
        "{js}"
    );
    assert!(js.contains("/admin/api/openapi.json") && js.contains("/scim/v2/openapi.json"));
    // The spec picker names both documents plainly.
    assert!(
        js.contains(r#""name": "Admin API""#) && js.contains(r#""name": "SCIM 2.0 API""#),
        "{js}"
    );
    // "Try it out" with the session: the interceptor adds the session's
    // CSRF token to state-changing requests.
    assert!(
        js.contains("requestInterceptor: scimdRequestInterceptor,")
            && js.contains("async function scimdRequestInterceptor(req)")
            && js.contains(r#"req.headers["X-CSRF-Token"] = session.csrf_token"#)
            && js.contains(r#"fetch("/admin/api/v1/session""#),
        "{js}"
    );
    assert!(!js.contains("https://"), "no external URL: {js}");
    let res = app
        .send(Method::GET, "/admin/api/openapi.json", &session, None)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["info"]["title"], "scimd admin API");
    let res = app
        .send(Method::GET, "/scim/v2/openapi.json", &session, None)
        .await;
    assert_eq!(res.status, 200);
    assert!(res.body["paths"]["/Users/{id}"]["patch"].is_object());
    let res = app
        .send(Method::GET, "/admin/api/v1/nope", &Auth::None, None)
        .await;
    assert_error(&res, 404, "not_found");
}

/// What PostgreSQL refuses and SQLite takes (NUL, index keys over about
/// 2.7 KB) gets the same answer on both, never a 500: sign-in with such a
/// username, and ids holding NUL in the paths of the admin API.
#[actix_web::test]
async fn hostile_names_and_ids_get_the_same_answers_on_every_backend() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let long = "r".repeat(5_000);
        for username in ["ro\u{0}ot", long.as_str()] {
            let res = app
                .send(
                    Method::POST,
                    "/admin/api/v1/session",
                    &Auth::None,
                    Some(json!({"username": username, "password": "not the password"})),
                )
                .await;
            assert_error(&res, 401, "unauthorized");
        }
        for path in [
            "/admin/api/v1/scim-tokens/a%00b",
            "/admin/api/v1/admin-tokens/a%00b",
            "/admin/api/v1/oauth-clients/a%00b",
            "/admin/api/v1/oauth-grants/a%00b",
        ] {
            let res = app.send(Method::DELETE, path, &auth, None).await;
            assert_error(&res, 404, "not_found");
        }
    }
}
