//! The admin document's routes that are not under `/admin/api/v1`: health
//! and readiness (mounted by the `scimd` binary), and the OAuth 2.0
//! authorization server (`crate::oauth::endpoints`, plain actix routes
//! whose forms and redirects utoipa-actix-web does not describe). The
//! functions carry no behaviour; they only anchor the documented
//! operations, as `openapi::scim` does for the SCIM API.
//!
//! The request examples use [`EXAMPLE_CLIENT_ID`], [`EXAMPLE_CODE`],
//! [`EXAMPLE_REFRESH_TOKEN`] and [`EXAMPLE_CSRF`]; the example test
//! replaces them with real values before sending each one.

use serde::Serialize;
use utoipa::ToSchema;

/// The client id in the examples.
pub const EXAMPLE_CLIENT_ID: &str = "3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c";
/// The client secret in the examples.
pub const EXAMPLE_CLIENT_SECRET: &str =
    "scimd_cs_Jq3v0Zr8n1Wm5Tb7Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2s";
/// The authorization code in the examples.
pub const EXAMPLE_CODE: &str = "SplxlOBeZQQYbYS6WxSbIA";
/// The PKCE verifier in the examples (RFC 7636 Appendix B's).
pub const EXAMPLE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 challenge.
pub const EXAMPLE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The refresh token in the examples.
pub const EXAMPLE_REFRESH_TOKEN: &str =
    "scimd_rt_Vb6nM3qW9eR2tY5uI8oP1aS4dF7gH0jKzX1cV3bN5mQ7wE9rT2yU";
/// The console session's CSRF token in the examples.
pub const EXAMPLE_CSRF: &str = "k9Zr2Xw7Lq4Tn8Vb1Mc6Hd3Js5Gf0Ka2Pe4Rt6Yu8Io";
/// The redirect URI in the examples: Entra ID's.
pub const EXAMPLE_REDIRECT_URI: &str = "https://portal.azure.com/TokenAuthorize";

/// `/healthz` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (healthz), `ready` or `database unreachable` (readyz).
    #[schema(example = "ok")]
    pub status: String,
}

/// An RFC 6749 §5.1 token response.
#[derive(Serialize, ToSchema)]
pub struct OAuthTokenResponse {
    /// Opens the SCIM API as a bearer token until `expires_in` runs out.
    #[schema(example = "scimd_at_Xy7Qp2Lm9Vn4Rb8Tc1Kd6Wf3Gh5Js0AeZq1Wx3Ec5Rv7Tb9Yn2Um")]
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires (`oauth.access_token_ttl_secs`).
    #[schema(example = 3600)]
    pub expires_in: i64,
    /// Single use: each refresh answers a new one, and reusing an old one
    /// revokes the whole grant (OAuth 2.0 Security BCP §4.14).
    #[schema(example = "scimd_rt_Nw5tE8rY1uI4oP7aS0dF3gH6jK9lZ2xCvB4nM6qW8eR1tY3uI5o")]
    pub refresh_token: String,
    /// The granted scope.
    #[schema(example = "scim")]
    pub scope: String,
}

/// An RFC 6749 §5.2 error.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorResponse {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type`, `invalid_scope` or
    /// `temporarily_unavailable`.
    #[schema(example = "invalid_grant")]
    pub error: String,
    /// What went wrong.
    #[schema(example = "the code is unknown, expired or already used")]
    pub error_description: String,
}

/// The RFC 8414 §2 authorization server metadata.
#[derive(Serialize, ToSchema)]
pub struct OAuthMetadata {
    /// `server.public_url`, else the request's scheme and host.
    #[schema(example = "https://scim.example.com")]
    pub issuer: String,
    /// Where the identity provider sends the administrator.
    #[schema(example = "https://scim.example.com/oauth/authorize")]
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    #[schema(example = "https://scim.example.com/oauth/token")]
    pub token_endpoint: String,
    /// RFC 7009 revocation.
    #[schema(example = "https://scim.example.com/oauth/revoke")]
    pub revocation_endpoint: String,
    /// `["code"]`.
    #[schema(example = json!(["code"]))]
    pub response_types_supported: Vec<String>,
    /// `["authorization_code", "refresh_token"]`.
    #[schema(example = json!(["authorization_code", "refresh_token"]))]
    pub grant_types_supported: Vec<String>,
    /// `["client_secret_basic", "client_secret_post"]`.
    #[schema(example = json!(["client_secret_basic", "client_secret_post"]))]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `["client_secret_basic", "client_secret_post"]`.
    #[schema(example = json!(["client_secret_basic", "client_secret_post"]))]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]`.
    #[schema(example = json!(["S256"]))]
    pub code_challenge_methods_supported: Vec<String>,
    /// `["scim"]`.
    #[schema(example = json!(["scim"]))]
    pub scopes_supported: Vec<String>,
}

/// Whether the process is up
///
/// Answers 200 as long as the process serves requests, whatever the
/// database's state: for a liveness probe. Needs no credentials.
#[utoipa::path(get, path = "/healthz", tag = "Health",
    responses((status = 200, description = "The process is up", body = HealthStatus,
        example = json!({"status": "ok"}))))]
pub fn healthz() {}

/// Whether the database answers
///
/// 200 when the database answers a ping, 503 when it does not: for a
/// readiness probe or a load balancer. Needs no credentials.
#[utoipa::path(get, path = "/readyz", tag = "Health",
    responses(
        (status = 200, description = "Ready", body = HealthStatus, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable", body = HealthStatus,
         example = json!({"status": "database unreachable"})),
    ))]
pub fn readyz() {}

/// The authorization server's metadata (RFC 8414)
///
/// Where the identity provider finds the authorization, token and
/// revocation endpoints. Needs no credentials.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "OAuth endpoints",
    responses((status = 200, description = "The metadata", body = OAuthMetadata)))]
pub fn oauth_metadata() {}

/// Starts an authorization (RFC 6749 §4.1.1, PKCE RFC 7636)
///
/// The identity provider sends the administrator's browser here
/// (Entra ID's "Authorize" button). Without a console session the browser
/// is sent to the sign-in page, which brings it back; with one, the
/// consent page (HTML) names the client and the scope. A request with an
/// unknown client or a redirect URI not registered exactly is refused on a
/// page, never redirected; other errors are redirected to the client
/// (RFC 6749 §4.1.2.1).
#[utoipa::path(get, path = "/oauth/authorize", tag = "OAuth endpoints",
    params(
        ("response_type" = String, Query, description = "`code`", example = "code"),
        ("client_id" = String, Query, description = "A registered client", example = "3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c"),
        ("redirect_uri" = String, Query, description = "One of the client's redirect URIs, exactly", example = "https://portal.azure.com/TokenAuthorize"),
        ("scope" = Option<String>, Query, description = "`scim` (the default)", example = "scim"),
        ("state" = Option<String>, Query, description = "Returned unchanged to the client", example = "xyz"),
        ("code_challenge" = Option<String>, Query, description = "PKCE S256 challenge", example = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method" = Option<String>, Query, description = "`S256`", example = "S256"),
    ),
    responses(
        (status = 200, description = "The consent page (with a console session)", content_type = "text/html"),
        (status = 302, description = "To the client with an `error` (RFC 6749 §4.1.2.1)"),
        (status = 303, description = "To the console's sign-in (no session), which comes back here"),
        (status = 400, description = "Unknown client or redirect URI: an error page, no redirect", content_type = "text/html"),
    ))]
pub fn oauth_authorize() {}

/// The administrator's decision on the consent page
///
/// Posted by the consent page with the session cookie and its CSRF token.
/// `decision=approve` redirects to the client with a one-time `code` and
/// the unchanged `state`; anything else with `error=access_denied`.
#[utoipa::path(post, path = "/oauth/authorize", tag = "OAuth endpoints",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "The authorization request's parameters, `csrf` and `decision`",
        example = "response_type=code&client_id=3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c&redirect_uri=https%3A%2F%2Fportal.azure.com%2FTokenAuthorize&scope=scim&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&csrf=k9Zr2Xw7Lq4Tn8Vb1Mc6Hd3Js5Gf0Ka2Pe4Rt6Yu8Io&decision=approve"),
    responses(
        (status = 303, description = "To the client: `?code=…&state=…`, or `?error=access_denied&state=…`"),
        (status = 400, description = "Unknown client or redirect URI: an error page", content_type = "text/html"),
        (status = 403, description = "The CSRF token is missing or wrong", content_type = "text/html"),
    ))]
pub fn oauth_decide() {}

/// Exchanges a code or a refresh token (RFC 6749 §4.1.3, §6)
///
/// The client authenticates with HTTP Basic or `client_id` and
/// `client_secret` in the form (RFC 6749 §2.3.1). A code is good once, for
/// `oauth.code_ttl_secs`, and needs the PKCE `code_verifier` when the
/// authorization had a challenge. Failed requests are limited per client
/// and per address.
#[utoipa::path(post, path = "/oauth/token", tag = "OAuth endpoints",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        examples(
            ("Authorization code" = (value = json!("grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fportal.azure.com%2FTokenAuthorize&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&client_id=3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c&client_secret=scimd_cs_Jq3v0Zr8n1Wm5Tb7Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2s"))),
            ("Refresh token" = (value = json!("grant_type=refresh_token&refresh_token=scimd_rt_Vb6nM3qW9eR2tY5uI8oP1aS4dF7gH0jKzX1cV3bN5mQ7wE9rT2yU&client_id=3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c&client_secret=scimd_cs_Jq3v0Zr8n1Wm5Tb7Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2s"))),
        )),
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`)", body = OAuthTokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`", body = OAuthErrorResponse),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret (`WWW-Authenticate: Basic`)", body = OAuthErrorResponse,
         example = json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        (status = 429, description = "Too many failed requests for this client or from this address; see `Retry-After`", body = OAuthErrorResponse,
         example = json!({"error": "invalid_request", "error_description": "too many failed requests for this client or from this address; retry in 300 seconds"})),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = OAuthErrorResponse,
         example = json!({"error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable; retry later"})),
    ))]
pub fn oauth_token() {}

/// Revokes a token (RFC 7009)
///
/// A refresh token revokes its whole grant, an access token itself.
/// Unknown tokens are a success too (RFC 7009 §2.2).
#[utoipa::path(post, path = "/oauth/revoke", tag = "OAuth endpoints",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        example = "token=scimd_rt_Vb6nM3qW9eR2tY5uI8oP1aS4dF7gH0jKzX1cV3bN5mQ7wE9rT2yU&token_type_hint=refresh_token&client_id=3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c&client_secret=scimd_cs_Jq3v0Zr8n1Wm5Tb7Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2s"),
    responses(
        (status = 200, description = "Revoked (or unknown)"),
        (status = 400, description = "`invalid_request`: no token, or a token of another client", body = OAuthErrorResponse,
         example = json!({"error": "invalid_request", "error_description": "token is missing"})),
        (status = 401, description = "`invalid_client`", body = OAuthErrorResponse,
         example = json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        (status = 503, description = "The database is unreachable", body = OAuthErrorResponse,
         example = json!({"error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable; retry later"})),
    ))]
pub fn oauth_revoke() {}
