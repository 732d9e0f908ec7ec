//! The admin side of scimd: the User Synchronization switch and its
//! cautions, SAML sign-in settings, run-time settings, SCIM and admin API
//! tokens, and administrator accounts.
//!
//! - [`service`] holds every operation, shared by the HTTP API and the
//!   `scimd` CLI.
//! - [`AdminApi::configure`] mounts the admin API under `/admin/api/v1`
//!   (routes collected into OpenAPI by utoipa-actix-web), the OpenAPI
//!   documents (`/admin/api/openapi.json`, and the SCIM API's at
//!   `<scim base>/openapi.json`) and Swagger UI at `/docs/`, served from
//!   the binary (no internet).
//! - [`console`] serves the HTML console at `/admin/`.

pub mod activity;
pub mod admins;
pub mod api;
pub mod auth;
pub mod cautions;
pub mod console;
mod docs;
pub mod error;
pub mod extensions;
pub mod json;
pub mod model;
pub mod oauth;
pub mod openapi;
pub mod organizations;
pub mod provisioning;
pub mod saml;
pub mod saml_sign_in;
pub mod service;
pub mod streams;

use std::sync::Arc;

use actix_web::{web, HttpRequest};
use scim_store::Store;

pub use error::{AdminError, ErrorBody, FieldError};

/// Settings of the admin API.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// How long a console session lasts.
    pub session_ttl: time::Duration,
    /// Limits on sign-in and setup-code attempts, per (account, address).
    pub login_limits: service::AttemptLimits,
    /// Take the client address for rate limiting from `X-Forwarded-For` /
    /// `Forwarded` (only behind a proxy that sets them), else the peer.
    pub trust_forwarded_for: bool,
    /// The SCIM API's mount point, for its OpenAPI document.
    pub scim_base_path: String,
    /// Largest accepted JSON body.
    pub max_body_bytes: usize,
    /// The OAuth 2.0 authorization server.
    pub oauth: oauth::OAuthConfig,
    /// The process's bounded Argon2id gate, shared with the SCIM API.
    pub password_hasher: scim_store::PasswordHasher,
    /// The clock that sessions, sign-in limits and OAuth codes and tokens
    /// are timed by (shared with the SCIM API).
    pub clock: scim_core::Clock,
    /// Where the event receiver endpoints are mounted (`events.base_path`).
    pub events_base_path: String,
    /// Failures in a row after which an event stream shows as failing
    /// (`events.failing_after`).
    pub events_failing_after: i32,
    /// SAML sign-in to the console: the administrator mapping and the
    /// clock skew.
    pub saml: saml_sign_in::SamlSignInConfig,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            session_ttl: time::Duration::hours(12),
            login_limits: service::AttemptLimits::default(),
            trust_forwarded_for: false,
            scim_base_path: "/scim/v2".into(),
            max_body_bytes: 1024 * 1024,
            oauth: oauth::OAuthConfig::default(),
            password_hasher: scim_store::PasswordHasher::default(),
            clock: scim_core::Clock::system(),
            events_base_path: "/events".into(),
            events_failing_after: 5,
            saml: saml_sign_in::SamlSignInConfig::default(),
        }
    }
}

/// The last entry of the request's `X-Forwarded-For` headers: the address
/// the proxy in front of scimd saw. A proxy appends the address it saw
/// to whatever the client sent, so earlier entries (and a `Forwarded`
/// header, which proxies pass on unchanged) may be forged by the client;
/// the last one is the proxy's own. With several proxies in a row, it is
/// the address of the one before scimd's.
fn last_forwarded_for(req: &HttpRequest) -> Option<String> {
    let last_header = req
        .headers()
        .get_all(actix_web::http::header::X_FORWARDED_FOR)
        .last()?;
    let entry = last_header.to_str().ok()?.rsplit(',').next()?.trim();
    (!entry.is_empty()).then(|| entry.to_owned())
}

/// The admin API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: AdminConfig,
}

/// The request's id, as recorded in the change log: the one `scimd`'s
/// request log puts in the request's extensions
/// ([`scim_store::changes::RequestId`], also returned in `X-Request-Id`);
/// without that middleware, the caller's `X-Request-Id` when it is short
/// and plain.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    if let Some(id) = req.extensions().get::<scim_store::changes::RequestId>() {
        return Some(id.0.clone());
    }
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| v.to_owned())
}

/// The admin API's mount point.
pub const API_BASE: &str = "/admin/api/v1";
/// Where the admin API's OpenAPI document is served.
pub const ADMIN_OPENAPI_PATH: &str = "/admin/api/openapi.json";

impl AdminApi {
    /// Builds the admin API over `store`.
    pub fn new(store: Store, config: AdminConfig) -> Self {
        AdminApi {
            inner: Arc::new(Inner { store, config }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &AdminConfig {
        &self.inner.config
    }

    /// The address failed sign-ins are counted against: the TCP peer, or,
    /// with `trust_forwarded_for`, the last `X-Forwarded-For` entry.
    pub fn client_address(&self, req: &HttpRequest) -> String {
        if self.inner.config.trust_forwarded_for {
            if let Some(address) = last_forwarded_for(req) {
                return address;
            }
        }
        req.peer_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
    }

    /// What a sign-in or setup attempt from `req` is checked with, now.
    pub fn sign_in_guard(&self, req: &HttpRequest) -> service::Guard {
        service::Guard {
            request_id: request_id(req),
            store: self.inner.store.clone(),
            hasher: self.inner.config.password_hasher.clone(),
            address: self.client_address(req),
            limits: self.inner.config.login_limits,
            now: self.inner.config.clock.now(),
        }
    }

    /// Mounts the admin API, the two OpenAPI documents and Swagger UI.
    /// Call it before the SCIM API is mounted, so that
    /// `<scim base>/openapi.json` is served here rather than by the SCIM
    /// scope (which would demand a SCIM token).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let scim_base_path = self.inner.config.scim_base_path.clone();
        cfg.app_data(web::Data::new(self.clone()))
            .configure(|c| docs::configure(c, &scim_base_path))
            .service(openapi::api_scope(self.inner.config.max_body_bytes))
            .configure(oauth::configure)
            .configure(admins::console::configure)
            .configure(saml_sign_in::console::configure)
            .configure(console::configure);
    }
}
