//! The protocol endpoints: authorization (RFC 6749 §4.1.1, with the
//! console's sign-in and a consent page), token (§4.1.3, §6), revocation
//! (RFC 7009) and metadata (RFC 8414).
//!
//! No open redirects: `/oauth/authorize` redirects only after the client
//! is known and `redirect_uri` is one of its registered URIs, character
//! for character; before that, every problem is an HTML error page
//! (RFC 6749 §4.1.2.1). No handler logs a parameter, a body or a header.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use scim_store::changes::{Actor, ActorKind, Event};
use scim_store::oauth::{self as store, ClientRecord, GrantFailure, Revocation, TokenLifetimes};
use serde::Serialize;

use super::service::{self, scope_label};
use crate::activity::record_event;
use crate::console::{
    self, check_csrf, csrf_failed, require_session, Chrome, ConsoleSession, Form,
};
use crate::error::AdminError;
use crate::AdminApi;

/// The authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The metadata document.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The parameters of an authorization request, each allowed once
/// (RFC 6749 §3.1).
const AUTHORIZE_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(AUTHORIZE_PATH, web::get().to(authorize_get))
        .route(AUTHORIZE_PATH, web::post().to(authorize_post))
        .route(TOKEN_PATH, web::post().to(token))
        .route(REVOKE_PATH, web::post().to(revoke))
        .route(METADATA_PATH, web::get().to(metadata));
}

// ---------------------------------------------------------------- authorize

/// A validated authorization request.
struct Authorization {
    client: ClientRecord,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// Why an authorization request is refused.
enum Rejection {
    /// Before the client and the redirect URI are validated: an error
    /// page, never a redirect.
    Page(StatusCode, String),
    /// After: back to the client with an RFC 6749 §4.1.2.1 error.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

/// The value of `name`, or `Err` when it is given more than once.
fn single<'a>(form: &'a Form, name: &str) -> Result<Option<&'a str>, ()> {
    match form.all(name).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(()),
    }
}

fn page(message: impl Into<String>) -> Rejection {
    Rejection::Page(StatusCode::BAD_REQUEST, message.into())
}

async fn validate(api: &AdminApi, form: &Form) -> Result<Authorization, Rejection> {
    let client_id = match single(form, "client_id") {
        Ok(Some(v)) if !v.is_empty() => v.to_owned(),
        Ok(_) => return Err(page("The request has no client_id.")),
        Err(()) => return Err(page("The request repeats client_id.")),
    };
    let store = api.store().clone();
    let found = web::block(move || store.read(|c| store::find_client(c, &client_id))).await;
    let client = match found {
        Ok(Ok(Some(client))) => client,
        Ok(Ok(None)) => {
            return Err(page(
                "Unknown client_id: no OAuth client with this id is registered in scimd. Register one under OAuth clients and enter its client id in the identity provider.",
            ))
        }
        Ok(Err(_)) | Err(_) => {
            return Err(Rejection::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again later.".into(),
            ))
        }
    };
    let redirect_uri = match single(form, "redirect_uri") {
        Ok(Some(v)) => v.to_owned(),
        Ok(None) => {
            return Err(page(
                "The request has no redirect_uri; it must be one of the client's registered redirect URIs.",
            ))
        }
        Err(()) => return Err(page("The request repeats redirect_uri.")),
    };
    // Exact string comparison (Security BCP §4.1.3): no prefix, no
    // normalisation, no wildcard.
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(page(format!(
            "The redirect_uri is not registered for the client “{}”. Registered redirect URIs must match exactly; add it to the client if it is legitimate.",
            client.name
        )));
    }
    // From here on, errors go back to the client.
    let state = single(form, "state").ok().flatten().map(str::to_owned);
    let fail = |error: &'static str, description: String| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    if let Some(p) = AUTHORIZE_PARAMS.iter().find(|p| single(form, p).is_err()) {
        return Err(fail("invalid_request", format!("{p} is repeated")));
    }
    match single(form, "response_type").ok().flatten() {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is missing".into())),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ))
        }
    }
    let requested = single(form, "scope").ok().flatten().unwrap_or("").trim();
    let mut scopes: Vec<&str> = Vec::new();
    for s in requested.split_whitespace() {
        if !client.scopes.iter().any(|allowed| allowed == s) {
            return Err(fail(
                "invalid_scope",
                format!(
                    "scope {s:?} is not allowed for this client (allowed: {})",
                    client.scopes.join(" ")
                ),
            ));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    // RFC 6749 §3.3: without a scope, the client's registered scopes.
    let scope = if scopes.is_empty() {
        client.scopes.join(" ")
    } else {
        scopes.join(" ")
    };
    let challenge = single(form, "code_challenge").ok().flatten();
    let method = single(form, "code_challenge_method").ok().flatten();
    let code_challenge = match (challenge, method) {
        (None, None) => None,
        (Some(c), Some("S256")) if store::is_pkce_value(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge".into(),
            ))
        }
        // A missing method means "plain" (RFC 7636 §4.3), which is refused.
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "only code_challenge_method=S256 is supported".into(),
            ))
        }
    };
    Ok(Authorization {
        client,
        redirect_uri,
        scope,
        state,
        code_challenge,
    })
}

/// `uri` with `params` appended to its query.
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", ser.finish())
}

fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

#[derive(askama::Template)]
#[template(path = "oauth_error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

fn reject(rejection: Rejection, redirect_status: StatusCode) -> HttpResponse {
    match rejection {
        Rejection::Page(status, message) => console::render_status(
            status,
            &ErrorPage {
                chrome: Chrome::signed_out(""),
                status: status.as_u16(),
                message,
            },
        ),
        Rejection::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } => {
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = state.as_deref() {
                params.push(("state", s));
            }
            redirect(redirect_status, &with_params(&redirect_uri, &params))
        }
    }
}

#[derive(askama::Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    chrome: Chrome,
    client_name: String,
    client_id: String,
    redirect_uri: String,
    redirect_origin: String,
    scope: String,
    scope_label: String,
    state: String,
    code_challenge: String,
}

/// `GET /oauth/authorize`: validates the request, sends a signed-out
/// administrator to the console's sign-in (which returns here), and shows
/// the consent page.
async fn authorize_get(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let form = Form::query(&req);
    let authz = match validate(&api, &form).await {
        Ok(a) => a,
        Err(r) => return reject(r, StatusCode::FOUND),
    };
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    if let Err(e) = may_approve(&session, &authz.client) {
        return console::error_page(&e);
    }
    let origin = service::origin_of(&authz.redirect_uri).to_owned();
    let mut resp = console::render(&ConsentPage {
        chrome: Chrome::for_session(&session, ""),
        client_name: authz.client.name.clone(),
        client_id: authz.client.id.clone(),
        redirect_origin: origin.clone(),
        redirect_uri: authz.redirect_uri,
        scope_label: scope_label(&authz.scope),
        scope: authz.scope,
        state: authz.state.unwrap_or_default(),
        code_challenge: authz.code_challenge.unwrap_or_default(),
    });
    // The decision is posted here and answered with a redirect to the
    // client; CSP's form-action applies to that redirect too, so it must
    // allow the (validated) redirect URI's origin.
    if let Ok(csp) = header::HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'"
    )) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// `POST /oauth/authorize`: the consent page's decision (CSRF-checked);
/// redirects to the client with a code and the unchanged `state`, or with
/// `access_denied`.
async fn authorize_post(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let authz = match validate(&api, &form).await {
        Ok(a) => a,
        Err(r) => return reject(r, StatusCode::SEE_OTHER),
    };
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    if !check_csrf(&session, form.text("csrf")) {
        return csrf_failed();
    }
    if let Err(e) = may_approve(&session, &authz.client) {
        return console::error_page(&e);
    }
    let state = authz.state.clone();
    if form.get("decision") != Some("approve") {
        return reject(
            Rejection::Redirect {
                redirect_uri: authz.redirect_uri,
                error: "access_denied",
                description: "the administrator denied the request".into(),
                state,
            },
            StatusCode::SEE_OTHER,
        );
    }
    let store = api.store().clone();
    let code_ttl = api.config().oauth.code_ttl;
    let clock = api.config().clock.clone();
    let sid = session.session_id.clone();
    let request = session.actor();
    let (client_name, client_org) = (authz.client.name.clone(), authz.client.org);
    let (client_id, redirect_uri, scope, challenge) = (
        authz.client.id.clone(),
        authz.redirect_uri.clone(),
        authz.scope.clone(),
        authz.code_challenge.clone(),
    );
    let created = web::block(move || {
        store.write(|c| {
            let now = clock.now();
            let Some(s) =
                scim_store::admin::find_session(c, &sid, &scim_core::datetime::format(now))?
            else {
                return Ok(None);
            };
            let new = store::NewAuthorization {
                client_id: &client_id,
                redirect_uri: &redirect_uri,
                scope: &scope,
                code_challenge: challenge.as_deref(),
                admin_id: &s.admin.id,
                admin_username: &s.admin.username,
            };
            let (grant_id, code) = store::create_authorization(c, &new, now, code_ttl)?;
            // The approving administrator, as signed in now.
            let actor = Actor::new(
                ActorKind::Admin,
                Some(s.admin.id.clone()),
                Some(s.admin.username.clone()),
            )
            .with_request(request.request_id.clone(), request.address.clone())
            .in_org(client_org);
            record_event(
                c,
                &actor,
                Event::OauthGrantCreated,
                "OauthGrant",
                Some(&grant_id),
                serde_json::json!({
                    "client_id": client_id,
                    "client_name": client_name,
                    "scope": scope,
                }),
            )?;
            Ok(Some(code))
        })
    })
    .await;
    let code = match created {
        Ok(Ok(Some(code))) => code,
        Ok(Ok(None)) => return console::see_other("/admin/login"),
        Ok(Err(e)) => return console::error_page(&AdminError::from(e)),
        Err(_) => return console::error_page(&AdminError::Internal),
    };
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state.as_deref() {
        params.push(("state", s));
    }
    redirect(
        StatusCode::SEE_OTHER,
        &with_params(&authz.redirect_uri, &params),
    )
}

// ---------------------------------------------------------------- token

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    scope: String,
}

/// RFC 6749 §5.1: token responses (and their errors) are never cached.
fn no_store(status: StatusCode) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    b
}

/// An RFC 6749 §5.2 error. `invalid_client` is 401 with a Basic
/// challenge (the client may retry with HTTP Basic).
fn oauth_error(error: &str, description: &str) -> HttpResponse {
    let status = match error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut b = no_store(status);
    if status == StatusCode::UNAUTHORIZED {
        b.insert_header((
            header::WWW_AUTHENTICATE,
            r#"Basic realm="scimd", charset="UTF-8""#,
        ));
    }
    b.json(serde_json::json!({"error": error, "error_description": description}))
}

fn too_many(retry_after_secs: u64) -> HttpResponse {
    no_store(StatusCode::TOO_MANY_REQUESTS)
        .insert_header((header::RETRY_AFTER, retry_after_secs.to_string()))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("too many failed requests for this client from this address; retry in {retry_after_secs} seconds"),
        }))
}

fn unavailable() -> HttpResponse {
    no_store(StatusCode::SERVICE_UNAVAILABLE)
        .insert_header((header::RETRY_AFTER, "5"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the service is temporarily unavailable; retry later",
        }))
}

/// `application/x-www-form-urlencoded` decoding of one Basic credential
/// part (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The client's id and secret from HTTP Basic or the body (never both:
/// RFC 6749 §2.3), or the error response.
fn client_credentials(
    req: &HttpRequest,
    form: &Form,
) -> Result<(String, String), Box<HttpResponse>> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if let Some(value) = basic {
        let decoded = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok());
        let Some((id, secret)) = decoded
            .as_deref()
            .and_then(|d| d.split_once(':'))
            .map(|(i, s)| (form_decode(i), form_decode(s)))
        else {
            return Err(Box::new(oauth_error(
                "invalid_client",
                "the Authorization header must be Basic base64(client_id:client_secret)",
            )));
        };
        if form.get("client_secret").is_some() {
            return Err(Box::new(oauth_error(
                "invalid_request",
                "use one client authentication method: HTTP Basic or client_secret in the body, not both",
            )));
        }
        if form.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(Box::new(oauth_error(
                "invalid_client",
                "client_id in the body differs from the HTTP Basic client id",
            )));
        }
        return Ok((id, secret));
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => Err(Box::new(oauth_error(
            "invalid_client",
            "client authentication is required: HTTP Basic with client_id and client_secret, or both in the body",
        ))),
    }
}

/// Checks the request's form, rate limit and client credentials shared by
/// the token and revocation endpoints; returns the parsed form and the
/// authenticated client.
async fn authenticated_client(
    req: &HttpRequest,
    api: &AdminApi,
    body: &[u8],
) -> Result<(Form, ClientRecord), HttpResponse> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(oauth_error(
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let form = Form::parse(body);
    let repeated = [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "token",
        "token_type_hint",
    ]
    .into_iter()
    .find(|p| form.all(p).len() > 1);
    if let Some(p) = repeated {
        return Err(oauth_error("invalid_request", &format!("{p} is repeated")));
    }
    let (client_id, secret) = client_credentials(req, &form).map_err(|e| *e)?;
    let guard = crate::service::Guard {
        store: api.store().clone(),
        hasher: api.config().password_hasher.clone(),
        address: service::address_key(&api.client_address(req)),
        request_id: crate::request_id(req),
        limits: api.config().oauth.token_limits,
        now: api.config().clock.now(),
    };
    match service::authenticate_client(&guard, &client_id, &secret).await {
        Ok(Some(client)) => Ok((form, client)),
        Ok(None) => Err(oauth_error(
            "invalid_client",
            "unknown client or wrong client secret",
        )),
        Err(AdminError::TooManyRequests { retry_after_secs }) => Err(too_many(retry_after_secs)),
        Err(_) => Err(unavailable()),
    }
}

/// `POST /oauth/token`: `authorization_code` and `refresh_token` grants.
/// `POST /oauth/token`, counted: `scimd_oauth_tokens_issued_total{grant_type}`
/// (in [`token_response`]) and `scimd_oauth_token_failures_total{status}`
/// (400: an invalid request or grant, 401: client authentication failed,
/// 429: the client is locked out from this address, 503: unavailable).
async fn token(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let res = token_response(req, api, body).await;
    let status = res.status();
    if !status.is_success() {
        let label = match status.as_u16() {
            400 => "400",
            401 => "401",
            429 => "429",
            503 => "503",
            _ => "other",
        };
        metrics::counter!("scimd_oauth_token_failures_total", "status" => label).increment(1);
    }
    res
}

async fn token_response(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, client) = match authenticated_client(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let config = &api.config().oauth;
    let lifetimes = TokenLifetimes {
        access: config.access_token_ttl,
        refresh: config.refresh_token_ttl,
    };
    let param = |name: &str| form.get(name).map(str::to_owned);
    enum Grant {
        Code {
            code: String,
            redirect_uri: Option<String>,
            verifier: Option<String>,
        },
        Refresh(String),
    }
    let grant = match form.get("grant_type") {
        Some("authorization_code") => match param("code") {
            Some(code) => Grant::Code {
                code,
                redirect_uri: param("redirect_uri"),
                verifier: param("code_verifier"),
            },
            None => return oauth_error("invalid_request", "code is missing"),
        },
        Some("refresh_token") => {
            if let Some(scope) = form.get("scope") {
                // RFC 6749 §6: no scope beyond the original grant's.
                if scope
                    .split_whitespace()
                    .any(|s| !client.scopes.iter().any(|a| a == s))
                {
                    return oauth_error("invalid_scope", "the scope exceeds what was granted");
                }
            }
            match param("refresh_token") {
                Some(token) => Grant::Refresh(token),
                None => return oauth_error("invalid_request", "refresh_token is missing"),
            }
        }
        Some(_) => {
            return oauth_error(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
        None => return oauth_error("invalid_request", "grant_type is missing"),
    };
    let grant_type = match &grant {
        Grant::Code { .. } => "authorization_code",
        Grant::Refresh(_) => "refresh_token",
    };
    let store = api.store().clone();
    let client_id = client.id.clone();
    let actor = client_actor(&client, &api, &req);
    let address = service::address_key(&api.client_address(&req));
    let now = api.config().clock.now();
    let result = web::block(move || -> Result<_, AdminError> {
        let outcome = store.write(|c| {
            let outcome = match &grant {
                Grant::Code {
                    code,
                    redirect_uri,
                    verifier,
                } => store::exchange_code(
                    c,
                    &client_id,
                    code,
                    redirect_uri.as_deref(),
                    verifier.as_deref(),
                    now,
                    lifetimes,
                )?,
                Grant::Refresh(token) => store::refresh(c, &client_id, token, now, lifetimes)?,
            };
            if let Err(failure @ (GrantFailure::CodeReused | GrantFailure::RefreshReused)) = outcome
            {
                // Reuse revoked the grant (committed with the failure).
                let secret = match &grant {
                    Grant::Code { code, .. } => code,
                    Grant::Refresh(token) => token,
                };
                let grant_id = store::grant_of_secret(c, secret)?;
                record_event(
                    c,
                    &actor,
                    Event::OauthGrantRevoked,
                    "OauthGrant",
                    grant_id.as_deref(),
                    serde_json::json!({ "reason": failure.description() }),
                )?;
            }
            if outcome.is_ok() {
                // Codes and tokens expired a day ago can never be used:
                // drop them on the way.
                let before = scim_core::datetime::format(now - time::Duration::days(1));
                store::purge_expired(c, &before)?;
            }
            Ok(outcome)
        })?;
        if outcome.is_err() {
            service::record_token_failure(&store, &client_id, &address, now)?;
        }
        Ok(outcome)
    })
    .await;
    match result {
        Ok(Ok(Ok(tokens))) => {
            metrics::counter!("scimd_oauth_tokens_issued_total", "grant_type" => grant_type)
                .increment(1);
            no_store(StatusCode::OK).json(TokenResponse {
                access_token: tokens.access_token,
                token_type: "Bearer",
                expires_in: tokens.expires_in,
                refresh_token: tokens.refresh_token,
                scope: tokens.scope,
            })
        }
        Ok(Ok(Err(failure))) => oauth_error("invalid_grant", failure.description()),
        Ok(Err(_)) | Err(_) => unavailable(),
    }
}

// ---------------------------------------------------------------- revoke

/// `POST /oauth/revoke` (RFC 7009): a refresh token revokes its whole
/// grant; an access token itself. Unknown tokens are a success too.
async fn revoke(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (form, client) = match authenticated_client(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(token) = form.get("token").map(str::to_owned) else {
        return oauth_error("invalid_request", "token is missing");
    };
    let store = api.store().clone();
    let now = api.config().clock.now_text();
    let actor = client_actor(&client, &api, &req);
    let result = web::block(move || {
        store.write(|c| {
            let revocation = store::revoke_token(c, &client.id, &token, &now)?;
            if revocation == Revocation::Grant {
                let grant_id = store::grant_of_secret(c, &token)?;
                record_event(
                    c,
                    &actor,
                    Event::OauthGrantRevoked,
                    "OauthGrant",
                    grant_id.as_deref(),
                    serde_json::json!({ "reason": "revoked by the client (RFC 7009)" }),
                )?;
            }
            Ok(revocation)
        })
    })
    .await;
    match result {
        Ok(Ok(Revocation::OtherClient)) => {
            oauth_error("invalid_request", "the token was not issued to this client")
        }
        Ok(Ok(_)) => no_store(StatusCode::OK).finish(),
        Ok(Err(_)) | Err(_) => unavailable(),
    }
}

/// The authenticated client `client` as the change log records it, for
/// the request `req`.
fn client_actor(client: &ClientRecord, api: &AdminApi, req: &HttpRequest) -> Actor {
    Actor::new(
        ActorKind::OauthClient,
        Some(client.id.clone()),
        Some(client.name.clone()),
    )
    .with_request(crate::request_id(req), Some(api.client_address(req)))
    .in_org(client.org)
}

/// Whether the signed-in administrator may authorize `client`: its
/// organization must be one the administrator acts on (an organization
/// administrator grants access to its own organizations only).
fn may_approve(session: &ConsoleSession, client: &ClientRecord) -> Result<(), AdminError> {
    if session.scope.may_act_on(client.org) {
        Ok(())
    } else {
        Err(AdminError::Forbidden(
            "this client belongs to an organization you do not administer: an administrator of that organization must authorize it".into(),
        ))
    }
}

// ---------------------------------------------------------------- metadata

/// The issuer: `server.public_url`, else the request's scheme and host.
pub fn issuer(api: &AdminApi, req: &HttpRequest) -> String {
    match &api.config().oauth.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
async fn metadata(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let iss = issuer(&api, &req);
    HttpResponse::Ok().json(serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{iss}{TOKEN_PATH}"),
        "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": service::SCOPES.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_of_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
        assert_eq!(form_decode("plain-id_1"), "plain-id_1");
        assert_eq!(form_decode("bad%zz"), "bad%zz");
        assert_eq!(form_decode("end%4"), "end%4");
        assert_eq!(form_decode("%"), "%");
    }

    #[test]
    fn params_are_appended_to_the_redirect_uri() {
        assert_eq!(
            with_params("https://x.example/cb", &[("code", "a b"), ("state", "s&t")]),
            "https://x.example/cb?code=a+b&state=s%26t"
        );
        assert_eq!(
            with_params("https://x.example/cb?tenant=1", &[("code", "c")]),
            "https://x.example/cb?tenant=1&code=c"
        );
    }
}
