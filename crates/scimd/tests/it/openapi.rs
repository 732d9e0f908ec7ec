//! Both OpenAPI documents, as scimd serves them, against scimd itself:
//! every operation is sent through the whole app (`scimd::configure_app`:
//! admin API, OAuth endpoints, health and SCIM API) with its request
//! examples, on SQLite and PostgreSQL, and each answer must have a
//! documented success status and match that response's schema (JSON
//! Schema 2020-12, as OpenAPI 3.1 uses, with `$ref`s resolved to the
//! document's components). Every operation that documents 401 is also
//! sent without credentials and its answer checked the same way; the SCIM
//! API's 401, 415 and 404 answers must equal the documented examples; and
//! every documented response example must match its own schema.
//!
//! The examples name made-up ids, codes and secrets (the `EXAMPLE_*`
//! constants of `scim_admin::openapi`); each request gets fresh state of
//! its own (users, a group, tokens, an OAuth client, code and refresh
//! token), and those values are replaced by the real ones.

use std::collections::BTreeMap;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{test, App};
use scim_admin::openapi::{public, scim as scim_doc};
use scim_store::testing::{backends, TestDb};
use serde_json::{json, Value};

/// One request as sent and its answer.
struct Res {
    status: u16,
    headers: header::HeaderMap,
    body: Value,
}

/// The whole app, in process.
trait AppService:
    Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

impl<S> AppService for S where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

struct Harness<S> {
    db: TestDb,
    app: S,
    scim_token: String,
    admin_token: Option<String>,
    session: Option<(String, String)>,
    admin_id: Option<String>,
    setup_code: Option<String>,
    counter: usize,
}

async fn harness(db: TestDb) -> Harness<impl AppService> {
    harness_with(db, scimd::settings::Settings::shared).await
}

/// [`harness`] with the process-wide parts `shared` builds.
async fn harness_with(
    db: TestDb,
    shared: impl FnOnce(&scimd::settings::Settings) -> scimd::Shared,
) -> Harness<impl AppService> {
    let env = vec![("SCIMD__DATABASE__URL".to_string(), db.url().to_string())];
    let settings = scimd::settings::Settings::load_from(None, env).unwrap();
    let store = db.store().clone();
    let shared = shared(&settings);
    let app = test::init_service(
        App::new().configure(move |cfg| scimd::configure_app(cfg, &store, &shared, &settings)),
    )
    .await;
    let scim_token = scim_admin::service::create_scim_token(
        db.store(),
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::CreateTokenRequest {
            name: "Entra ID".into(),
            expires_at: None,
        },
    )
    .unwrap()
    .secret;
    let setup_code =
        scim_admin::service::issue_setup_code(db.store(), time::Duration::hours(1)).unwrap();
    Harness {
        db,
        app,
        scim_token,
        admin_token: None,
        session: None,
        admin_id: None,
        setup_code,
        counter: 0,
    }
}

impl<S: AppService> Harness<S> {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Res {
        let mut req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .peer_addr("192.0.2.7:40000".parse().unwrap());
        for (k, v) in headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        if let Some(b) = body {
            req = req.set_payload(b);
        }
        let res = match self.app.call(req.to_request()).await {
            Ok(r) => r,
            Err(e) => ServiceResponse::new(
                test::TestRequest::default().to_http_request(),
                e.error_response(),
            ),
        };
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = test::read_body(res).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    fn scim_auth(&self) -> Vec<(String, String)> {
        vec![(
            "Authorization".into(),
            format!("Bearer {}", self.scim_token),
        )]
    }

    /// A SCIM resource created for one request; returns its id.
    async fn scim_create(&self, path: &str, body: Value) -> String {
        let mut headers = self.scim_auth();
        headers.push(("Content-Type".into(), "application/scim+json".into()));
        let res = self
            .send("POST", path, &headers, Some(body.to_string()))
            .await;
        assert_eq!(res.status, 201, "{path}: {}", res.body);
        res.body["id"].as_str().unwrap().to_owned()
    }

    /// Fresh SCIM state for one request: two users (the first with a work
    /// email, as Entra ID creates them) and a group holding the first.
    async fn scim_state(&mut self) -> BTreeMap<String, String> {
        self.counter += 1;
        let n = self.counter;
        let user = self
            .scim_create(
                "/scim/v2/Users",
                json!({
                    "userName": format!("prereq{n}@contoso.com"),
                    "name": {"givenName": "Pre", "familyName": "Req"},
                    "emails": [{"type": "work", "primary": true, "value": format!("prereq{n}@contoso.com")}],
                    "active": true
                }),
            )
            .await;
        let member = self
            .scim_create(
                "/scim/v2/Users",
                json!({"userName": format!("member{n}@contoso.com")}),
            )
            .await;
        let group = self
            .scim_create(
                "/scim/v2/Groups",
                json!({"displayName": format!("Prereq {n}"), "members": [{"value": user}]}),
            )
            .await;
        BTreeMap::from([
            (scim_doc::EXAMPLE_USER_ID.to_owned(), user),
            (scim_doc::EXAMPLE_MEMBER_ID.to_owned(), member),
            (scim_doc::EXAMPLE_GROUP_ID.to_owned(), group),
        ])
    }

    /// Fresh admin state for one request: tokens, an OAuth client with an
    /// unused code and a live refresh token, and the session's CSRF token.
    fn admin_state(&mut self) -> BTreeMap<String, String> {
        self.counter += 1;
        let n = self.counter;
        let store = self.db.store();
        let mut out = BTreeMap::new();
        if let Some(code) = &self.setup_code {
            out.insert(
                scim_admin::openapi::EXAMPLE_SETUP_CODE.to_owned(),
                code.clone(),
            );
        }
        if let Some((_, csrf)) = &self.session {
            out.insert(public::EXAMPLE_CSRF.to_owned(), csrf.clone());
        }
        let token = |name: &str| scim_admin::model::CreateTokenRequest {
            name: format!("{name} {n}"),
            expires_at: None,
        };
        let scim = scim_admin::service::create_scim_token(
            store,
            &scim_store::changes::Actor::cli("test"),
            &token("scim"),
        )
        .unwrap();
        out.insert("{scim-token}".into(), scim.token.id);
        let admin = scim_admin::service::create_admin_token(
            store,
            &scim_store::changes::Actor::cli("test"),
            &token("admin"),
        )
        .unwrap();
        out.insert("{admin-token}".into(), admin.token.id);
        // An event stream with a retired key (rotated once), for the
        // event-stream paths.
        let now = scim_core::datetime::now();
        let (stream, retired) = store
            .write(|c| {
                let created = scim_store::events::streams::create_stream(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &scim_store::events::NewStream {
                        name: format!("app {n}"),
                        delivery: scim_store::events::Delivery::Poll,
                        endpoint_url: None,
                        authorization: None,
                        audience: "https://crm.example.com".into(),
                        issuer: None,
                        event_types: vec![],
                        resource_types: vec![],
                        mode: scim_store::events::Mode::Full,
                        alg: scim_store::events::Alg::Es256,
                    },
                    &now,
                )?;
                let first = scim_store::events::keys::signing_key(c, &created.stream.id)?;
                scim_store::events::keys::rotate_key(c, &created.stream.id, &now)?;
                Ok((created.stream.id, first.kid))
            })
            .unwrap();
        out.insert("{event-stream}".into(), stream);
        out.insert("{event-key}".into(), retired);
        // A custom schema extension to remove (or remove an attribute of),
        // standing in for the examples' `…:Example:2.0:User`; the one the
        // previous operation left is removed first.
        let example = "urn:ietf:params:scim:schemas:extension:Example:2.0:User";
        let urn = format!("urn:ietf:params:scim:schemas:extension:Example{n}:2.0:User");
        let def = scim_core::extensions::ExtensionDef::from_json(&serde_json::json!({
            "id": urn,
            "attributes": [{"name": "CustomAttribute", "type": "string"}, {"name": "costCenter", "type": "string"}]
        }))
        .unwrap();
        store
            .write(|c| {
                for old in scim_store::scim::extensions::list_extensions(c)? {
                    if old.id.contains(":Example") {
                        scim_store::scim::extensions::delete_extension(c, &old.id)?;
                    }
                }
                scim_store::scim::extensions::create_extension(c, &def, "test")
            })
            .unwrap();
        out.insert(example.into(), urn);
        // The organization the examples change or delete (`globex`; the
        // create example makes `acme`).
        store
            .write(|c| {
                if scim_store::organizations::find_organization(c, "globex")?.is_none() {
                    scim_store::organizations::create_organization(
                        c,
                        "globex",
                        "Globex",
                        None,
                        &scim_store::changes::Actor::cli("test"),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        store.invalidate_organizations();
        let Some(admin_id) = self.admin_id.clone() else {
            return out;
        };
        // An administrator to disable, enable, unlock, reset or delete
        // (never the signed-in one, nor the last); only once setup has
        // created the first.
        let other = store
            .write(|c| scim_store::admin::insert_admin(c, &format!("other{n}"), "unused"))
            .unwrap();
        out.insert("{admin}".into(), other.id);
        let client = scim_admin::oauth::service::create_client(
            store,
            &scim_store::changes::Actor::cli("test"),
            &scim_admin::oauth::model::CreateClientRequest {
                name: format!("Entra {n}"),
                redirect_uris: vec![public::EXAMPLE_REDIRECT_URI.into()],
                scopes: None,
            },
        )
        .unwrap();
        let client_id = client.client.client_id.clone();
        let authorize = |c: &mut scim_store::DbConnection| {
            scim_store::oauth::create_authorization(
                c,
                &scim_store::oauth::NewAuthorization {
                    client_id: &client_id,
                    redirect_uri: public::EXAMPLE_REDIRECT_URI,
                    scope: "scim",
                    code_challenge: Some(public::EXAMPLE_CHALLENGE),
                    admin_id: &admin_id,
                    admin_username: "alice",
                },
                time::OffsetDateTime::now_utc(),
                time::Duration::minutes(5),
            )
        };
        let (grant, code, refresh) = store
            .write(|c| {
                let (grant, code) = authorize(c)?;
                let (_, other) = authorize(c)?;
                let tokens = scim_store::oauth::exchange_code(
                    c,
                    &client_id,
                    &other,
                    Some(public::EXAMPLE_REDIRECT_URI),
                    Some(public::EXAMPLE_VERIFIER),
                    time::OffsetDateTime::now_utc(),
                    scim_store::oauth::TokenLifetimes {
                        access: time::Duration::hours(1),
                        refresh: time::Duration::days(1),
                    },
                )?
                .unwrap();
                Ok((grant, code, tokens.refresh_token))
            })
            .unwrap();
        out.insert(public::EXAMPLE_CLIENT_ID.to_owned(), client_id);
        out.insert(
            public::EXAMPLE_CLIENT_SECRET.to_owned(),
            client.client_secret,
        );
        out.insert(public::EXAMPLE_CODE.to_owned(), code);
        out.insert(public::EXAMPLE_REFRESH_TOKEN.to_owned(), refresh);
        out.insert("{grant}".into(), grant);
        out
    }
}

/// One documented operation.
struct Operation {
    method: String,
    path: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                op: op.clone(),
            });
        }
    }
    out
}

/// A validator of `schema`, whose `$ref`s point into `doc`'s components.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::new(&root).unwrap()
}

fn check_schema(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the answer does not match the documented schema: {errors:?}\n{instance:#}"
    );
}

fn replace_all(s: &str, state: &BTreeMap<String, String>) -> String {
    state
        .iter()
        .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
}

/// The request examples of an operation: (name, content type, body); one
/// entry without a body when it takes none.
fn request_examples(op: &Value) -> Vec<(String, Option<(String, String)>)> {
    let Some(content) = op["requestBody"]["content"].as_object() else {
        return vec![("no body".into(), None)];
    };
    let (media, c) = content.iter().next().unwrap();
    let encode = |v: &Value| match v {
        Value::String(s) if media.ends_with("x-www-form-urlencoded") => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    if let Some(ex) = c.get("example") {
        out.push(("example".into(), Some((media.clone(), encode(ex)))));
    }
    for (name, ex) in c["examples"].as_object().into_iter().flatten() {
        out.push((name.clone(), Some((media.clone(), encode(&ex["value"])))));
    }
    assert!(!out.is_empty(), "a request body without an example: {op}");
    out
}

/// The real value of a path parameter.
fn path_param(path: &str, param: &Value, state: &BTreeMap<String, String>) -> String {
    if let Some(ex) = param["example"].as_str() {
        return replace_all(ex, state);
    }
    let key = if path.contains("/scim-tokens/") {
        "{scim-token}"
    } else if path.contains("/admin-tokens/") {
        "{admin-token}"
    } else if path.contains("/admins/") {
        "{admin}"
    } else if path.contains("/oauth-grants/") {
        "{grant}"
    } else if path.contains("/event-streams/") && param["name"] == "kid" {
        "{event-key}"
    } else if path.contains("/event-streams/") {
        "{event-stream}"
    } else if path.contains("/oauth-clients/") {
        public::EXAMPLE_CLIENT_ID
    } else {
        panic!("{path}: no value for {param}")
    };
    state[key].clone()
}

fn uri_of(base: &str, op: &Operation, state: &BTreeMap<String, String>) -> String {
    let mut path = op.path.clone();
    let mut query = Vec::new();
    for p in op.op["parameters"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap();
        match p["in"].as_str().unwrap() {
            "path" => path = path.replace(&format!("{{{name}}}"), &path_param(&op.path, p, state)),
            "query" => {
                if let Some(ex) = p.get("example") {
                    let v = match ex {
                        Value::String(s) => replace_all(s, state),
                        other => other.to_string(),
                    };
                    query.push(format!(
                        "{name}={}",
                        form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                    ));
                }
            }
            _ => {}
        }
    }
    let mut uri = format!("{base}{path}");
    if !query.is_empty() {
        uri = format!("{uri}?{}", query.join("&"));
    }
    uri
}

/// Checks an answer against the operation's documented response for its
/// status (which must be documented, and `success` or not as asked).
fn check_answer(doc: &Value, op: &Operation, res: &Res, success: bool, what: &str) {
    let code = res.status.to_string();
    let documented = &op.op["responses"][&code];
    assert!(
        documented.is_object(),
        "{what}: {code} is not documented: {:#}",
        res.body
    );
    assert_eq!(
        res.status < 400,
        success,
        "{what}: unexpected {code}: {:#}",
        res.body
    );
    let Some(content) = documented["content"].as_object() else {
        return;
    };
    let (media, c) = content.iter().next().unwrap();
    let got = res
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        got.starts_with(media.as_str()),
        "{what}: Content-Type {got:?}, documented {media}"
    );
    if media.ends_with("json") {
        check_schema(doc, &c["schema"], &res.body, what);
    }
}

/// A SCIM error answer: its status, and a body equal to the documented
/// example of that status.
fn check_error(doc: &Value, op: &Operation, res: &Res, status: u16, what: &str) {
    assert_eq!(res.status, status, "{what}: {}", res.body);
    check_answer(doc, op, res, false, what);
    let example =
        &op.op["responses"][status.to_string()]["content"]["application/scim+json"]["example"];
    assert_eq!(&res.body, example, "{what}: the documented example differs");
}

/// Every documented response example matches its own schema; a SCIM
/// error example's `status` is the status it documents.
fn check_response_examples(doc: &Value) {
    for op in operations(doc) {
        for (code, response) in op.op["responses"].as_object().unwrap() {
            for (media, c) in response["content"].as_object().into_iter().flatten() {
                let Some(example) = c.get("example") else {
                    continue;
                };
                let what = format!("{} {} {code} example", op.method, op.path);
                if media.ends_with("json") {
                    check_schema(doc, &c["schema"], example, &what);
                }
                if media == "application/scim+json" && code.starts_with(['4', '5']) {
                    assert_eq!(example["status"], code.as_str(), "{what}");
                }
            }
        }
    }
}

/// The order the admin document's operations are sent in: setup and
/// sign-in first, SAML before enabling synchronization, disabling before
/// enabling again (the SCIM document needs it enabled), sign-out last.
fn admin_order(op: &Operation) -> u8 {
    match (op.method.as_str(), op.path.as_str()) {
        ("POST", "/admin/api/v1/setup") => 0,
        ("POST", "/admin/api/v1/session") => 1,
        ("PUT", "/admin/api/v1/saml") => 2,
        ("POST", "/admin/api/v1/sync/disable") => 3,
        ("POST", "/admin/api/v1/sync/enable") => 4,
        ("DELETE", "/admin/api/v1/session") => 9,
        _ => 5,
    }
}

async fn admin_document(h: &mut Harness<impl AppService>) -> usize {
    let res = h.send("GET", "/admin/api/openapi.json", &[], None).await;
    assert_eq!(res.status, 401, "the documents need an administrator");
    // Sign in as the test's own administrator only to read the document;
    // the setup example creates `alice`.
    let reader = scim_admin::service::create_admin_token(
        h.db.store(),
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::CreateTokenRequest {
            name: "reader".into(),
            expires_at: None,
        },
    )
    .unwrap()
    .secret;
    let auth = vec![("Authorization".to_string(), format!("Bearer {reader}"))];
    let doc = h
        .send("GET", "/admin/api/openapi.json", &auth, None)
        .await
        .body;
    check_response_examples(&doc);
    let mut ops = operations(&doc);
    ops.sort_by_key(admin_order);
    let mut sent = 0;
    for op in &ops {
        for (name, body) in request_examples(&op.op) {
            let what = format!("admin {} {} ({name})", op.method, op.path);
            let state = h.admin_state();
            let uri = uri_of("", op, &state);
            let security = op.op["security"].to_string();
            let mut headers = Vec::new();
            if security.contains("admin_token") {
                let token = h.admin_token.clone().unwrap_or_else(|| reader.clone());
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            } else if let Some((cookie, csrf)) = &h.session {
                headers.push(("Cookie".into(), format!("scimd_admin_session={cookie}")));
                headers.push(("X-CSRF-Token".into(), csrf.clone()));
            }
            if op.path == "/admin/api/v1/settings" && op.method == "PUT" {
                let current = h
                    .send("GET", "/admin/api/v1/settings", &headers, None)
                    .await;
                let etag = current.headers.get(header::ETAG).unwrap();
                headers.push(("If-Match".into(), etag.to_str().unwrap().to_owned()));
            }
            let body = body.map(|(media, b)| {
                headers.push(("Content-Type".into(), media));
                replace_all(&b, &state)
            });
            let res = h.send(&op.method, &uri, &headers, body).await;
            check_answer(&doc, op, &res, true, &what);
            sent += 1;
            match (op.method.as_str(), op.path.as_str()) {
                ("POST", "/admin/api/v1/setup") => {
                    h.admin_id = Some(res.body["id"].as_str().unwrap().to_owned());
                    h.setup_code = None;
                }
                ("POST", "/admin/api/v1/session") => {
                    let cookie = res
                        .headers
                        .get(header::SET_COOKIE)
                        .unwrap()
                        .to_str()
                        .unwrap();
                    let value = cookie
                        .split(';')
                        .next()
                        .and_then(|kv| kv.split_once('='))
                        .unwrap()
                        .1
                        .to_owned();
                    let csrf = res.body["csrf_token"].as_str().unwrap().to_owned();
                    h.session = Some((value, csrf));
                }
                ("POST", "/admin/api/v1/admin-tokens") => {
                    h.admin_token = Some(res.body["secret"].as_str().unwrap().to_owned());
                }
                ("POST", "/oauth/authorize") => {
                    let location = res.headers.get(header::LOCATION).unwrap();
                    let location = location.to_str().unwrap();
                    assert!(
                        location.starts_with(public::EXAMPLE_REDIRECT_URI)
                            && location.contains("code=")
                            && location.contains("state=xyz"),
                        "{what}: {location}"
                    );
                }
                _ => {}
            }
        }
        // Without credentials, where credentials are required.
        if op.op["responses"]["401"].is_object() && op.op["security"].is_array() {
            let state = h.admin_state();
            let uri = uri_of("", op, &state);
            let res = h.send(&op.method, &uri, &[], None).await;
            let what = format!("admin {} {} without credentials", op.method, op.path);
            assert_eq!(res.status, 401, "{what}: {}", res.body);
            check_answer(&doc, op, &res, false, &what);
            let example = &op.op["responses"]["401"]["content"]["application/json"]["example"];
            assert_eq!(res.body["status"], example["status"], "{what}");
            assert_eq!(res.body["error"], example["error"], "{what}");
        }
    }
    sent
}

async fn scim_document(h: &mut Harness<impl AppService>) -> usize {
    let doc = h.send("GET", "/scim/v2/openapi.json", &[], None).await;
    assert_eq!(doc.status, 401, "the documents need an administrator");
    let token = h.admin_token.clone().unwrap();
    let auth = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let doc = h
        .send("GET", "/scim/v2/openapi.json", &auth, None)
        .await
        .body;
    let base = doc["servers"][0]["url"].as_str().unwrap().to_owned();
    check_response_examples(&doc);
    let mut sent = 0;
    for op in operations(&doc) {
        for (name, body) in request_examples(&op.op) {
            let what = format!("SCIM {} {} ({name})", op.method, op.path);
            let state = h.scim_state().await;
            let uri = uri_of(&base, &op, &state);
            let mut headers = h.scim_auth();
            let body = body.map(|(media, b)| {
                headers.push(("Content-Type".into(), media));
                replace_all(&b, &state)
            });
            let res = h.send(&op.method, &uri, &headers, body).await;
            check_answer(&doc, &op, &res, true, &what);
            sent += 1;
        }
        // The errors every operation documents, answered exactly as their
        // examples say: no token; a body that is not JSON; and, where an
        // id is in the path, the example's own id, which names nothing.
        let state = h.scim_state().await;
        let uri = uri_of(&base, &op, &state);
        let res = h.send(&op.method, &uri, &[], None).await;
        check_error(
            &doc,
            &op,
            &res,
            401,
            &format!("SCIM {} {} without a token", op.method, op.path),
        );
        if op.op["requestBody"].is_object() {
            let mut headers = h.scim_auth();
            headers.push(("Content-Type".into(), "text/plain".into()));
            let res = h
                .send(&op.method, &uri, &headers, Some("userName=x".into()))
                .await;
            check_error(
                &doc,
                &op,
                &res,
                415,
                &format!("SCIM {} {} as text/plain", op.method, op.path),
            );
        }
        if op.path.ends_with("s/{id}") && !op.path.starts_with("/Schemas") {
            let uri = uri_of(&base, &op, &BTreeMap::new());
            let mut headers = h.scim_auth();
            let body = request_examples(&op.op).remove(0).1.map(|(media, b)| {
                headers.push(("Content-Type".into(), media));
                b
            });
            let res = h.send(&op.method, &uri, &headers, body).await;
            check_error(
                &doc,
                &op,
                &res,
                404,
                &format!("SCIM {} {} of no resource", op.method, op.path),
            );
        }
    }
    sent
}

#[actix_web::test]
async fn every_documented_example_is_answered_as_documented() {
    for db in backends() {
        let backend = format!("{:?}", db.backend());
        let mut h = harness(db).await;
        let admin = admin_document(&mut h).await;
        // 64 operations, one of them (POST /oauth/token) with two examples.
        assert_eq!(admin, 65, "{backend}: admin requests");
        let scim = scim_document(&mut h).await;
        // 21 operations; POST /Users and PATCH /Users/{id} have several
        // examples, PATCH /Groups/{id} three.
        assert_eq!(scim, 26, "{backend}: SCIM requests");
    }
}

/// With a rate limit, every SCIM operation answers a credential over its
/// budget with the documented 429 example and `Retry-After`.
#[actix_web::test]
async fn the_documented_429_is_what_a_throttled_credential_gets() {
    use scim_server::rate_limit::{RateLimit, RateLimiter};
    for db in backends() {
        let clock = governor::clock::FakeRelativeClock::default();
        let limit = RateLimit {
            per_second: std::num::NonZeroU32::new(1).unwrap(),
            burst: std::num::NonZeroU32::new(1).unwrap(),
        };
        let h = harness_with(db, |settings| scimd::Shared {
            scim_rate_limiter: Some(RateLimiter::with_clock(limit, clock.clone())),
            ..settings.shared()
        })
        .await;
        let reader = scim_admin::service::create_admin_token(
            h.db.store(),
            &scim_store::changes::Actor::cli("test"),
            &scim_admin::model::CreateTokenRequest {
                name: "reader".into(),
                expires_at: None,
            },
        )
        .unwrap()
        .secret;
        let auth = vec![("Authorization".to_string(), format!("Bearer {reader}"))];
        let doc = h
            .send("GET", "/scim/v2/openapi.json", &auth, None)
            .await
            .body;
        let base = doc["servers"][0]["url"].as_str().unwrap().to_owned();
        // The one request of the budget (the fake clock never moves).
        let first = h
            .send("GET", &format!("{base}/Users"), &h.scim_auth(), None)
            .await;
        assert_ne!(first.status, 429, "{}", first.body);
        let mut checked = 0;
        for op in operations(&doc) {
            let uri = uri_of(&base, &op, &BTreeMap::new());
            let mut headers = h.scim_auth();
            let body = request_examples(&op.op).remove(0).1.map(|(media, b)| {
                headers.push(("Content-Type".into(), media));
                b
            });
            let res = h.send(&op.method, &uri, &headers, body).await;
            let what = format!("SCIM {} {} over the budget", op.method, op.path);
            check_error(&doc, &op, &res, 429, &what);
            assert_eq!(
                res.headers
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                Some("1"),
                "{what}"
            );
            checked += 1;
        }
        assert_eq!(checked, 21);
    }
}
