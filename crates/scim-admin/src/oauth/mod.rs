//! The OAuth 2.0 authorization server that lets an identity provider
//! connect with **Authorize** (Entra ID's gallery-app flow) instead of a
//! pasted secret token: the authorization code grant (RFC 6749 §4.1) with
//! PKCE S256 (RFC 7636), refresh token rotation with reuse detection
//! (OAuth 2.0 Security BCP §4.14), revocation (RFC 7009) and metadata
//! (RFC 8414).
//!
//! - [`endpoints`]: `GET|POST /oauth/authorize` (the console's sign-in,
//!   then a consent page), `POST /oauth/token`, `POST /oauth/revoke`,
//!   `GET /.well-known/oauth-authorization-server`.
//! - [`api`]: client registration and grants in the admin API
//!   (`/admin/api/v1/oauth-clients`, `/admin/api/v1/oauth-grants`).
//! - [`console`]: the same in the console (`/admin/oauth-clients`,
//!   `/admin/oauth-grants`).
//!
//! The access tokens open the SCIM API like secret tokens do (see
//! `scim_server::auth`). Nothing secret is logged: the request log has
//! the path only (no query string, no body), and no handler here logs a
//! parameter.

pub mod api;
pub mod console;
pub mod endpoints;
pub mod model;
pub mod service;

use actix_web::web;

pub use scim_store::oauth::pkce_s256;

use crate::service::AttemptLimits;

/// Settings of the authorization server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Access token lifetime.
    pub access_token_ttl: time::Duration,
    /// Refresh token lifetime (each rotation starts a new one).
    pub refresh_token_ttl: time::Duration,
    /// Authorization code lifetime.
    pub code_ttl: time::Duration,
    /// Limits on token requests per (client, address): wrong secrets,
    /// invalid codes and refresh tokens count.
    pub token_limits: AttemptLimits,
    /// The issuer's absolute base URL (`server.public_url`); `None` uses
    /// each request's scheme and host.
    pub public_url: Option<String>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            access_token_ttl: time::Duration::hours(1),
            refresh_token_ttl: time::Duration::days(90),
            code_ttl: time::Duration::seconds(60),
            token_limits: AttemptLimits {
                max_failures: 10,
                window: time::Duration::minutes(5),
                address_max_failures: 100,
                slow_after: 20,
                max_delay: time::Duration::minutes(1),
            },
            public_url: None,
        }
    }
}

/// Mounts the protocol endpoints and the console pages (the admin API
/// routes are in `openapi::api_scope`). Call before the console's
/// `/admin` scope, which would otherwise claim `/admin/oauth-…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    endpoints::configure(cfg);
    console::configure(cfg);
}
