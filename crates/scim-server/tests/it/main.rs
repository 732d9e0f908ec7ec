//! HTTP tests of the SCIM API through the real actix app, on SQLite and
//! PostgreSQL (`TEST_DATABASE_URL`; see `scim_store::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bulk;
mod changes;
mod cursor;
mod discovery;
mod entra;
mod events;
mod extensions;
mod groups;
mod hostile_strings;
mod lenient;
mod organizations;
mod passwords;
mod rate_limit;
mod search;
mod settings;
mod sync_gate;
mod unique;
mod users;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{test, web, App, HttpMessage};
use scim_server::{ScimApi, ScimConfig};
use scim_store::testing::{backends, TestDb};
use serde_json::Value;

/// One backend's app with a freshly minted token.
pub struct TestApp {
    pub db: TestDb,
    pub api: ScimApi,
    pub token: String,
}

/// A response, decoded.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// The app with User Synchronization enabled (as after an
    /// administrator enabled it), which every SCIM test needs.
    pub fn new(db: TestDb) -> Self {
        Self::with_config(db, ScimConfig::default())
    }

    /// The app as freshly installed: User Synchronization disabled, so
    /// every SCIM request gets 403.
    pub fn with_sync_disabled(db: TestDb) -> Self {
        let app = Self::new(db);
        app.set_sync(false);
        app
    }

    /// Enables or disables User Synchronization in the database, as the
    /// admin API and `scimd sync` do.
    pub fn set_sync(&self, enabled: bool) {
        let store = self.db.store();
        if enabled {
            store
                .write(|c| {
                    scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "tests", &[])
                })
                .unwrap();
        } else {
            store
                .write(|c| {
                    scim_store::sync::disable_sync(c, scim_store::OrgId::DEFAULT, "tests", "test")
                })
                .unwrap();
        }
    }

    pub fn with_config(db: TestDb, config: ScimConfig) -> Self {
        let store = db.store().clone();
        store
            .write(|c| scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "tests", &[]))
            .unwrap();
        let (_, token) = store
            .write(|conn| scim_store::create_token(conn, "tests", None))
            .unwrap();
        let api = ScimApi::new(store, config);
        TestApp { db, api, token }
    }

    /// Every configured backend.
    pub fn all() -> Vec<TestApp> {
        backends().into_iter().map(TestApp::new).collect()
    }

    pub async fn service(
        &self,
    ) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
    {
        let api = self.api.clone();
        test::init_service(
            App::new()
                .configure(move |cfg| api.configure(cfg))
                .default_service(web::to(scim_server::not_found)),
        )
        .await
    }

    pub fn request(&self, method: Method, path: &str) -> test::TestRequest {
        test::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", self.token)))
    }

    /// Sends a request with an optional JSON body and decodes the answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req
                .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                .set_payload(body.to_string());
        }
        self.call(req).await
    }

    pub async fn call(&self, req: test::TestRequest) -> Res {
        let svc = self.service().await;
        call(&svc, req).await
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Res {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, body: Value) -> String {
        let res = self.post("/scim/v2/Users", body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.body);
        res.body["id"].as_str().unwrap().to_string()
    }

    pub fn backend(&self) -> String {
        format!("{:?}", self.db.store().backend())
    }
}

/// Calls an already-built service.
pub async fn call<S>(svc: &S, req: test::TestRequest) -> Res
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let req = req.to_request();
    // As scimd's request log does: the request id for the handlers.
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = request_id {
        req.extensions_mut()
            .insert(scim_store::changes::RequestId(id));
    }
    let res = match svc.call(req).await {
        Ok(res) => res,
        Err(err) => ServiceResponse::new(
            test::TestRequest::default().to_http_request(),
            err.error_response(),
        ),
    };
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if !bytes.is_empty() {
        assert_eq!(
            headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/scim+json"),
            "every SCIM response body is application/scim+json: {status} {body}"
        );
    }
    Res {
        status,
        headers,
        body,
    }
}

/// Asserts a SCIM error document.
pub fn assert_scim_error(res: &Res, status: u16, scim_type: Option<&str>) {
    assert_eq!(res.status.as_u16(), status, "{}", res.body);
    assert_eq!(
        res.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{}",
        res.body
    );
    assert_eq!(res.body["status"], status.to_string(), "{}", res.body);
    assert_eq!(res.body["scimType"].as_str(), scim_type, "{}", res.body);
    assert!(
        res.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{}",
        res.body
    );
}

/// A typical user body as Entra ID sends it on create.
pub fn entra_user(user_name: &str) -> Value {
    serde_json::json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": true,
        "addresses": [{
            "primary": true,
            "type": "work",
            "country": "JP",
            "locality": "Tokyo",
            "postalCode": "100-0001",
            "streetAddress": "1 Chiyoda"
        }],
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "User", "givenName": "Test", "formatted": "Test User"},
        "title": "Engineer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Platform",
            "organization": "Contoso",
            "employeeNumber": "1001"
        }
    })
}

#[actix_web::test]
async fn postgres_runs_when_configured() {
    let expected = if scim_store::testing::postgres_url().is_some() {
        2
    } else {
        1
    };
    let apps = TestApp::all();
    assert_eq!(apps.len(), expected);
    assert_eq!(apps[0].backend(), "Sqlite");
    if expected == 2 {
        assert_eq!(apps[1].backend(), "Postgres");
    }
}
