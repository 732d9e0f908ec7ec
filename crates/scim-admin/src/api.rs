//! The admin API handlers (`/admin/api/v1`), documented with utoipa; their
//! paths are collected by utoipa-actix-web from the route macros.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};

use crate::auth::{Caller, Credential, SESSION_COOKIE};
use crate::error::{AdminError, ErrorBody};
use crate::json::Json;
use crate::model::*;
use crate::{service, AdminApi};

/// The JSON body, or a 422 naming the field at fault. Handlers take the
/// body as a `Result` and unwrap it after the `Caller` extractor
/// succeeded, so an unauthenticated request gets 401 whatever its body.
fn json_body<T>(body: Result<Json<T>, actix_web::Error>) -> Result<T, AdminError> {
    body.map(|Json(t)| t).map_err(crate::json::body_error)
}

/// Runs a blocking service call off the async workers.
async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

// ---------------------------------------------------------------- sync

/// The User Synchronization state
///
/// Whether the SCIM API accepts the identity provider's requests, who
/// switched it and when, the cautions an administrator accepts to enable
/// it, and its prerequisites (SAML sign-in configured).
#[utoipa::path(
    tag = "User Synchronization",
    responses(
        (status = 200, description = "The state", body = SyncStatus),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/sync")]
pub async fn get_sync(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<SyncStatus>, AdminError> {
    let org = caller.actor.org;
    let store = api.store().clone();
    Ok(web::Json(
        blocking(move || service::sync_status(&store, org)).await?,
    ))
}

/// Enables User Synchronization
///
/// Every caution id of `GET /sync` must be accepted, and SAML sign-in
/// configured. Takes effect on the next SCIM request of every replica.
#[utoipa::path(
    tag = "User Synchronization",
    request_body(content = EnableSyncRequest,
        example = json!({"accepted_cautions": ["username-matching", "deprovisioned-users-remain", "local-changes-overwritten", "refused-while-disabled", "deletes-follow-policy"]})),
    responses(
        (status = 200, description = "Enabled", body = SyncStatus),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Cautions not accepted or SAML not configured: `missing_cautions`, `missing_prerequisites` and `fields` say what", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/sync/enable")]
pub async fn enable_sync(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<EnableSyncRequest>, actix_web::Error>,
) -> Result<web::Json<SyncStatus>, AdminError> {
    let store = api.store().clone();
    let accepted = json_body(body)?.accepted_cautions;
    Ok(web::Json(
        blocking(move || service::enable_sync(&store, &caller.actor, &accepted)).await?,
    ))
}

/// Disables User Synchronization
///
/// From the next request on, every SCIM request gets 403 and nothing the
/// identity provider sends is written. Users and groups are kept.
#[utoipa::path(
    tag = "User Synchronization",
    responses(
        (status = 200, description = "Disabled", body = SyncStatus),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/sync/disable")]
pub async fn disable_sync(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<SyncStatus>, AdminError> {
    let store = api.store().clone();
    Ok(web::Json(
        blocking(move || service::disable_sync(&store, &caller.actor)).await?,
    ))
}

/// The User Synchronization change log
///
/// The last 100 changes of the User Synchronization state, newest first,
/// with who made each and what was accepted.
#[utoipa::path(
    tag = "User Synchronization",
    responses(
        (status = 200, description = "The change log", body = [SyncEventView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/sync/events")]
pub async fn sync_events(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<SyncEventView>>, AdminError> {
    let org = caller.actor.org;
    let store = api.store().clone();
    Ok(web::Json(
        blocking(move || service::sync_events(&store, org, 100)).await?,
    ))
}

// ---------------------------------------------------------------- SAML

/// The SAML sign-in settings
///
/// The identity provider's entity ID, SSO URL and signing certificate
/// (with its subject and validity), or `configured: false`.
#[utoipa::path(
    tag = "SAML",
    responses(
        (status = 200, description = "The settings (`configured: false` when unset)", body = SamlView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/saml")]
pub async fn get_saml(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<SamlView>, AdminError> {
    let org = caller.actor.org;
    let store = api.store().clone();
    Ok(web::Json(
        blocking(move || service::get_saml(&store, org)).await?,
    ))
}

/// scimd's SAML service provider values
///
/// What to enter in the identity provider's SAML app (Entra: Identifier
/// (Entity ID), Reply URL, Sign on URL) for administrators to sign in to
/// the console with SAML. Derived from `server.public_url`, else from the
/// request's scheme and host. An organization other than the default one
/// has its own (below `/admin/o/{slug}/saml`), which signs in only its
/// organization administrators.
#[utoipa::path(
    tag = "SAML",
    responses(
        (status = 200, description = "scimd's entity ID, ACS URL and sign-in URL", body = SamlServiceProviderView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/saml/service-provider")]
pub async fn get_saml_service_provider(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<SamlServiceProviderView>, AdminError> {
    let sp = crate::saml_sign_in::console::sp_urls_of(&api, &req, caller.actor.org).await?;
    Ok(web::Json(SamlServiceProviderView {
        entity_id: sp.entity_id,
        acs_url: sp.acs_url,
        sign_in_url: sp.sign_in_url,
    }))
}

/// Sets the SAML sign-in settings
///
/// From the identity provider's metadata XML (Entra: "Federation
/// Metadata XML"), or from the entity ID, SSO URL and signing certificate
/// (PEM, validated as X.509). Each field at fault is named in `fields`.
#[utoipa::path(
    tag = "SAML",
    request_body(content = SamlUpdate,
        example = json!({
            "entity_id": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "sso_url": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2",
            "certificate_pem": crate::openapi::EXAMPLE_CERTIFICATE_PEM
        })),
    responses(
        (status = 200, description = "Saved", body = SamlView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid input; `fields` names each field at fault", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[put("/saml")]
pub async fn put_saml(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<SamlUpdate>, actix_web::Error>,
) -> Result<web::Json<SamlView>, AdminError> {
    let store = api.store().clone();
    let update = json_body(body)?;
    Ok(web::Json(
        blocking(move || service::set_saml(&store, &caller.actor, &update)).await?,
    ))
}

// ---------------------------------------------------------------- settings

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn with_etag(view: SettingsView) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(view.version)))
        .json(view)
}

/// The run-time settings
///
/// What DELETE of a user does, the soft-delete retention and the SCIM
/// page sizes, read by every replica on each request. The `ETag` header
/// carries their version: send it back in `If-Match` to change them.
#[utoipa::path(
    tag = "Settings",
    responses(
        (status = 200, description = "The settings", body = SettingsView,
         headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/settings")]
pub async fn get_settings(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<HttpResponse, AdminError> {
    let org = caller.actor.org;
    let store = api.store().clone();
    Ok(with_etag(
        blocking(move || service::get_settings(&store, org)).await?,
    ))
}

/// Replaces the run-time settings
///
/// `If-Match` with the ETag of the settings read is required, so that two
/// administrators cannot silently overwrite each other (RFC 7232 §3.1,
/// RFC 6585 §3): a stale ETag gets 412, none gets 428. `*` replaces
/// whatever is current.
#[utoipa::path(
    tag = "Settings",
    request_body(content = SettingsUpdate,
        example = json!({"deprovisioning": "soft", "soft_delete_retention_days": 30, "default_page_size": 100, "max_page_size": 1000})),
    params(("If-Match" = String, Header, description = "The ETag from GET /settings, e.g. \"3\"", example = "\"1\"")),
    responses(
        (status = 200, description = "Saved", body = SettingsView,
         headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 412, description = "The settings changed since they were read", body = ErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[put("/settings")]
pub async fn put_settings(
    api: web::Data<AdminApi>,
    caller: Caller,
    req: HttpRequest,
    body: Result<Json<SettingsUpdate>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let org = caller.actor.org;
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Err(AdminError::PreconditionRequired(
            "send If-Match with the ETag from GET /admin/api/v1/settings".into(),
        ));
    };
    let raw = raw.to_str().unwrap_or("").trim();
    let store = api.store().clone();
    let version = if raw == "*" {
        None
    } else {
        let v = raw.trim_start_matches("W/").trim_matches('"');
        Some(v.parse::<i64>().map_err(|_| {
            AdminError::PreconditionFailed(format!(
                "If-Match {raw:?} is not an ETag of the settings; GET them again"
            ))
        })?)
    };
    let update = json_body(body)?;
    let view = blocking(move || {
        let expected = match version {
            Some(v) => v,
            None => service::get_settings(&store, org)?.version,
        };
        service::update_settings(&store, &caller.actor, &update, expected)
    })
    .await?;
    Ok(with_etag(view))
}

// ---------------------------------------------------------------- SCIM tokens

/// The SCIM bearer tokens
///
/// Every token the identity provider may use, with its state and last
/// use, oldest first; never the secrets.
#[utoipa::path(
    tag = "SCIM tokens",
    responses(
        (status = 200, description = "Every token, oldest first", body = [TokenView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/scim-tokens")]
pub async fn list_scim_tokens(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<TokenView>>, AdminError> {
    let org = caller.actor.org;
    let store = api.store().clone();
    Ok(web::Json(
        blocking(move || service::list_scim_tokens(&store, org)).await?,
    ))
}

/// Creates a SCIM bearer token
///
/// For the identity provider's "Secret Token" field. The secret is in this
/// response only: scimd keeps a hash.
#[utoipa::path(
    tag = "SCIM tokens",
    request_body(content = CreateTokenRequest,
        example = json!({"name": "Entra ID production", "expires_at": "2030-01-01T00:00:00Z"})),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/scim-tokens")]
pub async fn create_scim_token(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<CreateTokenRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let req = json_body(body)?;
    let created = blocking(move || service::create_scim_token(&store, &caller.actor, &req)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes a SCIM token
///
/// Replicas that cached it stop accepting it within
/// `auth.token_cache_ttl_secs`.
#[utoipa::path(
    tag = "SCIM tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/scim-tokens/{id}")]
pub async fn revoke_scim_token(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let id = path.into_inner();
    blocking(move || service::revoke_scim_token(&store, &caller.actor, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- admin tokens

/// The admin API tokens
///
/// Every token of this API, with who created it, its state and last use,
/// oldest first; never the secrets.
#[utoipa::path(
    tag = "Admin API tokens",
    responses(
        (status = 200, description = "Every token, oldest first", body = [TokenView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/admin-tokens")]
pub async fn list_admin_tokens(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<TokenView>>, AdminError> {
    let store = api.store().clone();
    let bound = caller.token_org();
    Ok(web::Json(
        blocking(move || service::list_admin_tokens_in(&store, bound)).await?,
    ))
}

/// Creates an admin API token
///
/// For automation (`Authorization: Bearer scimd_admin_…`). The secret is
/// in this response only.
#[utoipa::path(
    tag = "Admin API tokens",
    request_body(content = CreateTokenRequest,
        example = json!({"name": "Terraform", "expires_at": null})),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admin-tokens")]
pub async fn create_admin_token(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<CreateTokenRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let req = json_body(body)?;
    let bound = caller.token_org();
    let created =
        blocking(move || service::create_admin_token_in(&store, &caller.actor, &req, bound))
            .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes an admin API token
///
/// At once, on every replica.
#[utoipa::path(
    tag = "Admin API tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/admin-tokens/{id}")]
pub async fn revoke_admin_token(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let id = path.into_inner();
    let bound = caller.token_org();
    blocking(move || service::revoke_admin_token_in(&store, &caller.actor, &id, bound)).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- session

/// The session cookie (the API's and the console's): `HttpOnly`, and
/// `SameSite=Strict`, so a request started on another site (even a link,
/// such as the identity provider's Authorize) never carries the session:
/// the administrator signs in again there.
pub(crate) fn session_cookie(
    req: &HttpRequest,
    value: String,
    max_age_secs: i64,
) -> Cookie<'static> {
    // Secure when the request came over TLS, directly or through a proxy
    // that says so (X-Forwarded-Proto / Forwarded).
    let https = req.connection_info().scheme().eq_ignore_ascii_case("https");
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// Signs in
///
/// With username and password: sets the HttpOnly session cookie and
/// returns the CSRF token to send in `X-CSRF-Token`. Attempts are
/// limited per (account, address), and per address for accounts that
/// never signed in from it: neither another address's failures nor
/// another account's refuse the right password of an account that has
/// no failures of its own from this address (docs/ADMIN.md, "Sign-in
/// limits").
#[utoipa::path(
    tag = "Session",
    request_body(content = LoginRequest,
        example = json!({"username": "alice", "password": "correct horse battery staple"})),
    responses(
        (status = 200, description = "Signed in; `Set-Cookie: scimd_admin_session=…; HttpOnly; SameSite=Strict`", body = SessionView),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "The administrator is disabled (said only with the right password)", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this account from this address; or this address reached its cap and the account never signed in from it; or (slowed down) this address failed at an account under attack from many; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many passwords are being checked at once (`busy`); see Retry-After", body = ErrorBody),
    )
)]
#[post("/session")]
pub async fn login(
    api: web::Data<AdminApi>,
    req: HttpRequest,
    body: Result<Json<LoginRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let ttl = api.config().session_ttl;
    let LoginRequest { username, password } = json_body(body)?;
    let (session, session_id) =
        service::login(&api.sign_in_guard(&req), &username, &password, ttl).await?;
    let cookie = session_cookie(&req, session_id, ttl.whole_seconds());
    Ok(HttpResponse::Ok().cookie(cookie).json(SessionView {
        username: session.admin.username,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at,
    }))
}

/// The current session
///
/// Who is signed in, until when, and the session's CSRF token (Swagger
/// UI's "Try it out" reads it from here).
#[utoipa::path(
    tag = "Session",
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 401, description = "No session", body = ErrorBody),
    ),
    security(("session" = []))
)]
#[get("/session")]
pub async fn current_session(caller: Caller) -> Result<web::Json<SessionView>, AdminError> {
    match caller.credential {
        Credential::Session {
            csrf_token,
            expires_at,
            ..
        } => Ok(web::Json(SessionView {
            username: caller.name,
            csrf_token,
            expires_at,
        })),
        Credential::Token { .. } => Err(AdminError::Unauthorized(
            "an admin API token has no session; sign in with POST /admin/api/v1/session".into(),
        )),
    }
}

/// Signs out
///
/// Ends the session and clears the cookie.
#[utoipa::path(
    tag = "Session",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token header", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []))
)]
#[delete("/session")]
pub async fn logout(
    api: web::Data<AdminApi>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, AdminError> {
    let Credential::Session { session_id, .. } = caller.credential else {
        return Err(AdminError::Unauthorized(
            "an admin API token has no session to end; revoke the token instead".into(),
        ));
    };
    let store = api.store().clone();
    blocking(move || Ok(store.write(|c| scim_store::admin::delete_session(c, &session_id))?))
        .await?;
    let mut cookie = session_cookie(&req, String::new(), 0);
    cookie.make_removal();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

// ---------------------------------------------------------------- setup

/// Whether first-run setup is open
///
/// True while no administrator exists; needs no credentials.
#[utoipa::path(
    tag = "Setup",
    responses(
        (status = 200, description = "Whether setup is required", body = SetupStatus),
        (status = 503, description = "The database is unreachable", body = ErrorBody),
    )
)]
#[get("/setup")]
pub async fn setup_status(api: web::Data<AdminApi>) -> Result<web::Json<SetupStatus>, AdminError> {
    let store = api.store().clone();
    let required = blocking(move || service::setup_required(&store)).await?;
    Ok(web::Json(SetupStatus { required }))
}

/// Creates the first administrator
///
/// With the one-time setup code that scimd logged at startup; needs no
/// other credentials, and is refused once an administrator exists.
/// Attempts count toward the login rate limit.
#[utoipa::path(
    tag = "Setup",
    request_body(content = SetupRequest,
        example = json!({"code": crate::openapi::EXAMPLE_SETUP_CODE, "username": "alice", "password": "correct horse battery staple"})),
    responses(
        (status = 201, description = "The first administrator", body = AdminView),
        (status = 409, description = "An administrator already exists", body = ErrorBody),
        (status = 422, description = "Wrong code, or invalid username or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many passwords are being checked at once (`busy`); see Retry-After", body = ErrorBody),
    )
)]
#[post("/setup")]
pub async fn complete_setup(
    api: web::Data<AdminApi>,
    req: HttpRequest,
    body: Result<Json<SetupRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let setup = json_body(body)?;
    let admin = service::guarded_setup(&api.sign_in_guard(&req), &setup).await?;
    Ok(HttpResponse::Created().json(admin))
}

/// A JSON 404 for unknown admin API paths.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AdminError> {
    Err(AdminError::NotFound(format!(
        "no admin API endpoint {} {}; see /admin/api/openapi.json",
        req.method(),
        req.path()
    )))
}
