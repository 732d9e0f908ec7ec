//! The console's pages: setup, sign-in, User Synchronization, SAML,
//! settings and tokens. Each form posts back to its page; on invalid input
//! the page is shown again (422) with the service's messages next to the
//! fields they concern, and on success the browser is redirected
//! (303, post/redirect/get) to the page with a notice.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{
    blocking, check_csrf, check_login_csrf, csrf_failed, error_page, login_csrf, render,
    render_status, require_session, safe_next, see_other, with_cookie, Chrome, ConsoleSession,
    FieldMessages, Form,
};
use crate::api::session_cookie;
use crate::error::AdminError;
use crate::model::*;
use crate::{service, AdminApi};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/setup", web::get().to(setup_form))
        .route("/setup", web::post().to(setup_submit))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login_submit))
        .route("/logout", web::post().to(logout))
        .route("/sync", web::get().to(sync_page))
        .route("/sync/enable", web::post().to(sync_enable))
        .route("/sync/disable", web::get().to(sync_disable_confirm))
        .route("/sync/disable", web::post().to(sync_disable))
        .route("/saml", web::get().to(saml_page))
        .route("/saml", web::post().to(saml_submit))
        .route("/settings", web::get().to(settings_page))
        .route("/settings", web::post().to(settings_submit))
        .route("/tokens", web::get().to(tokens_page))
        .route("/tokens", web::post().to(token_create))
        .route("/tokens/{kind}/{id}/revoke", web::post().to(token_revoke));
}

/// A notice chosen by a fixed key in the query string (never text taken
/// from the URL, which anyone can craft).
fn notice(req: &HttpRequest) -> Option<String> {
    let key = Form::query(req).get("done").map(str::to_owned)?;
    let text = match key.as_str() {
        "enabled" => "User synchronization is enabled.",
        "disabled" => "User synchronization is disabled: SCIM requests are now refused.",
        "saml" => "SAML sign-in settings saved.",
        "settings" => "Settings saved.",
        "revoked" => "Token revoked.",
        "setup" => "Welcome: your administrator account is ready.",
        "signed-out" => "You are signed out.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// Whether the form carries the session's CSRF token.
fn verify(session: &ConsoleSession, form: &Form) -> bool {
    check_csrf(session, form.text("csrf"))
}

macro_rules! session_or_return {
    ($req:expr, $api:expr) => {
        match require_session(&$req, &$api).await {
            Ok(s) => s,
            Err(resp) => return resp,
        }
    };
}

macro_rules! ok_or_page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return error_page(&err),
        }
    };
}

// ---------------------------------------------------------------- home

async fn home(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let store = api.store().clone();
    if ok_or_page!(blocking(move || service::setup_required(&store)).await) {
        return see_other("/admin/setup");
    }
    let _session = session_or_return!(req, api);
    see_other("/admin/sync")
}

// ---------------------------------------------------------------- setup

#[derive(askama::Template)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    username: String,
    errors: FieldMessages,
}

/// The frame of the sign-in and setup pages, with their CSRF token, and
/// the cookie to set with it (see [`login_csrf`]).
fn signed_out_chrome(
    req: &HttpRequest,
    active: &'static str,
) -> (Chrome, Option<actix_web::cookie::Cookie<'static>>) {
    let (csrf, cookie) = login_csrf(req);
    (
        Chrome {
            csrf,
            ..Chrome::signed_out(active)
        },
        cookie,
    )
}

/// What a sign-in or setup form without the cookie's token gets (403).
const LOGIN_CSRF_FAILED: &str =
    "This form has expired or was not sent from this site; please try again.";

async fn setup_form(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let store = api.store().clone();
    if !ok_or_page!(blocking(move || service::setup_required(&store)).await) {
        return see_other("/admin/login");
    }
    let (chrome, cookie) = signed_out_chrome(&req, "setup");
    with_cookie(
        render(&SetupPage {
            chrome,
            username: String::new(),
            errors: FieldMessages::none(),
        }),
        cookie,
    )
}

async fn setup_submit(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let username = form.text("username").trim().to_owned();
    let password = form.text("password").to_owned();
    let again = form.text("password_confirm");
    let page = |errors: FieldMessages, status: StatusCode, username: String| {
        let (chrome, cookie) = signed_out_chrome(&req, "setup");
        with_cookie(
            render_status(
                status,
                &SetupPage {
                    chrome,
                    username,
                    errors,
                },
            ),
            cookie,
        )
    };
    if !check_login_csrf(&req, &form) {
        return page(
            FieldMessages::general(LOGIN_CSRF_FAILED.to_owned()),
            StatusCode::FORBIDDEN,
            username,
        );
    }
    if password != again {
        let errors = FieldMessages::from_error(&AdminError::field(
            "password_confirm",
            "the two passwords differ; type the same password twice",
        ));
        return page(errors, StatusCode::UNPROCESSABLE_ENTITY, username);
    }
    let request = SetupRequest {
        code: form.text("code").to_owned(),
        username: username.clone(),
        password: password.clone(),
    };
    let ttl = api.config().session_ttl;
    let guard = api.sign_in_guard(&req);
    let result = match service::guarded_setup(&guard, &request).await {
        Ok(_) => service::login(&guard, &request.username, &password, ttl).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((_, session_id)) => {
            let mut resp = see_other("/admin/sync?done=setup");
            if let Err(e) = resp.add_cookie(&session_cookie(&req, session_id, ttl.whole_seconds()))
            {
                tracing::error!(error = %e, "could not set the session cookie");
            }
            resp
        }
        Err(AdminError::Conflict(_)) => see_other("/admin/login"),
        Err(err @ (AdminError::Validation { .. } | AdminError::TooManyRequests { .. })) => {
            let status = actix_web::ResponseError::status_code(&err);
            page(
                FieldMessages::from_error(&err).keep_only(&["code", "username", "password"]),
                status,
                username,
            )
        }
        Err(err) => error_page(&err),
    }
}

// ---------------------------------------------------------------- login

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    username: String,
    next: String,
    errors: FieldMessages,
    /// Whether to offer "Sign in with SAML" (SAML settings are stored).
    saml: bool,
}

/// Whether SAML sign-in is configured (an unreachable database offers
/// only the password form, which then reports the outage).
async fn saml_offered(api: &AdminApi) -> bool {
    let store = api.store().clone();
    blocking(move || {
        Ok(store
            .read(|c| scim_store::admin::saml::saml_configured(c, scim_store::OrgId::DEFAULT))?)
    })
    .await
    .unwrap_or(false)
}

/// The sign-in page with `message` (a refused SAML sign-in), sent with
/// `status`.
pub(crate) async fn login_failed_page(
    req: &HttpRequest,
    api: &AdminApi,
    status: StatusCode,
    message: &str,
) -> HttpResponse {
    let saml = saml_offered(api).await;
    let (chrome, cookie) = signed_out_chrome(req, "login");
    with_cookie(
        render_status(
            status,
            &LoginPage {
                chrome,
                username: String::new(),
                next: String::new(),
                errors: FieldMessages::general(capitalize(message)),
                saml,
            },
        ),
        cookie,
    )
}

async fn login_form(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let store = api.store().clone();
    if ok_or_page!(blocking(move || service::setup_required(&store)).await) {
        return see_other("/admin/setup");
    }
    let q = Form::query(&req);
    let next = q.get("next").filter(|n| safe_next(n)).unwrap_or("");
    let saml = saml_offered(&api).await;
    let (chrome, cookie) = signed_out_chrome(&req, "login");
    with_cookie(
        render(&LoginPage {
            chrome: chrome.with_notice(notice(&req)),
            username: String::new(),
            next: next.to_owned(),
            errors: FieldMessages::none(),
            saml,
        }),
        cookie,
    )
}

async fn login_submit(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let username = form.text("username").trim().to_owned();
    let password = form.text("password").to_owned();
    let next = form
        .get("next")
        .filter(|n| safe_next(n))
        .unwrap_or("")
        .to_owned();
    let saml = saml_offered(&api).await;
    let page = |status: StatusCode, message: String, username: String, next: String| {
        let (chrome, cookie) = signed_out_chrome(&req, "login");
        with_cookie(
            render_status(
                status,
                &LoginPage {
                    chrome,
                    username,
                    next,
                    errors: FieldMessages::general(message),
                    saml,
                },
            ),
            cookie,
        )
    };
    if !check_login_csrf(&req, &form) {
        return page(
            StatusCode::FORBIDDEN,
            LOGIN_CSRF_FAILED.to_owned(),
            username,
            next,
        );
    }
    let ttl = api.config().session_ttl;
    let result = service::login(&api.sign_in_guard(&req), &username, &password, ttl).await;
    match result {
        Ok((_, session_id)) => {
            let to = if next.is_empty() {
                "/admin/sync".to_owned()
            } else {
                next
            };
            let mut resp = see_other(&to);
            if let Err(e) = resp.add_cookie(&session_cookie(&req, session_id, ttl.whole_seconds()))
            {
                tracing::error!(error = %e, "could not set the session cookie");
            }
            resp
        }
        Err(
            err @ (AdminError::Unauthorized(_)
            | AdminError::Forbidden(_)
            | AdminError::TooManyRequests { .. }
            | AdminError::Busy { .. }),
        ) => {
            let status = actix_web::ResponseError::status_code(&err);
            page(status, capitalize(&err.to_string()), username, next)
        }
        Err(err) => error_page(&err),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn logout(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let session = session_or_return!(req, api);
    if !verify(&session, &Form::parse(&body)) {
        return csrf_failed();
    }
    let store = api.store().clone();
    let sid = session.session_id.clone();
    ok_or_page!(
        blocking(move || Ok(store.write(|c| scim_store::admin::delete_session(c, &sid))?)).await
    );
    let mut resp = see_other("/admin/login?done=signed-out");
    let mut cookie = session_cookie(&req, String::new(), 0);
    cookie.make_removal();
    if let Err(e) = resp.add_cookie(&cookie) {
        tracing::error!(error = %e, "could not clear the session cookie");
    }
    resp
}

// ---------------------------------------------------------------- sync

#[derive(askama::Template)]
#[template(path = "sync.html")]
struct SyncPage {
    chrome: Chrome,
    status: SyncStatus,
    saml_configured: bool,
    events: Vec<SyncEventView>,
    /// Caution ids ticked in the form just sent (kept when re-shown).
    ticked: Vec<String>,
    errors: FieldMessages,
}

impl SyncPage {
    fn is_ticked(&self, id: &str) -> bool {
        self.status.enabled
            && self
                .status
                .cautions
                .iter()
                .any(|c| c.id == id && c.accepted)
            || self.ticked.iter().any(|t| t == id)
    }
}

async fn load_sync(
    api: &AdminApi,
    org: scim_store::OrgId,
) -> Result<(SyncStatus, Vec<SyncEventView>), AdminError> {
    let store = api.store().clone();
    blocking(move || {
        Ok((
            service::sync_status(&store, org)?,
            service::sync_events(&store, org, 20)?,
        ))
    })
    .await
}

fn sync_view(
    session: &ConsoleSession,
    status: SyncStatus,
    events: Vec<SyncEventView>,
    ticked: Vec<String>,
    errors: FieldMessages,
    notice: Option<String>,
) -> SyncPage {
    let mut chrome = Chrome::for_session(session, "sync").with_notice(notice);
    // The banner follows the state just read, not the one read with the
    // session a moment earlier.
    chrome.sync_enabled = Some(status.enabled);
    SyncPage {
        chrome,
        saml_configured: status.prerequisites.iter().all(|p| p.satisfied),
        status,
        events,
        ticked,
        errors,
    }
}

async fn sync_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let (status, events) = ok_or_page!(load_sync(&api, session.org).await);
    render(&sync_view(
        &session,
        status,
        events,
        Vec::new(),
        FieldMessages::none(),
        notice(&req),
    ))
}

async fn sync_enable(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let session = session_or_return!(req, api);
    let form = Form::parse(&body);
    if !verify(&session, &form) {
        return csrf_failed();
    }
    let ticked: Vec<String> = form.all("caution").into_iter().map(str::to_owned).collect();
    let store = api.store().clone();
    let actor = session.actor();
    let accepted = ticked.clone();
    match blocking(move || service::enable_sync(&store, &actor, &accepted)).await {
        Ok(_) => see_other("/admin/sync?done=enabled"),
        Err(err @ (AdminError::SyncNotReady { .. } | AdminError::Validation { .. })) => {
            let (status, events) = ok_or_page!(load_sync(&api, session.org).await);
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &sync_view(
                    &session,
                    status,
                    events,
                    ticked,
                    FieldMessages::from_error(&err).keep_only(&["accepted_cautions", "saml"]),
                    None,
                ),
            )
        }
        Err(err) => error_page(&err),
    }
}

#[derive(askama::Template)]
#[template(path = "sync_disable.html")]
struct SyncDisablePage {
    chrome: Chrome,
}

async fn sync_disable_confirm(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    render(&SyncDisablePage {
        chrome: Chrome::for_session(&session, "sync"),
    })
}

async fn sync_disable(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    if !verify(&session, &Form::parse(&body)) {
        return csrf_failed();
    }
    let store = api.store().clone();
    let actor = session.actor();
    ok_or_page!(blocking(move || service::disable_sync(&store, &actor)).await);
    see_other("/admin/sync?done=disabled")
}

// ---------------------------------------------------------------- SAML

#[derive(askama::Template)]
#[template(path = "saml.html")]
struct SamlPage {
    chrome: Chrome,
    saml: SamlView,
    /// scimd's own SAML addresses, to enter in the identity provider.
    sp: crate::saml_sign_in::SpUrls,
    metadata_xml: String,
    entity_id: String,
    sso_url: String,
    certificate_pem: String,
    errors: FieldMessages,
}

async fn saml_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let org = session.org;
    let store = api.store().clone();
    let saml = ok_or_page!(blocking(move || service::get_saml(&store, org)).await);
    let sp = ok_or_page!(crate::saml_sign_in::console::sp_urls_of(&api, &req, org).await);
    render(&SamlPage {
        chrome: Chrome::for_session(&session, "saml").with_notice(notice(&req)),
        sp,
        metadata_xml: String::new(),
        entity_id: saml.entity_id.clone().unwrap_or_default(),
        sso_url: saml.sso_url.clone().unwrap_or_default(),
        certificate_pem: saml.certificate_pem.clone().unwrap_or_default(),
        saml,
        errors: FieldMessages::none(),
    })
}

async fn saml_submit(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let session = session_or_return!(req, api);
    let org = session.org;
    let form = Form::parse(&body);
    if !verify(&session, &form) {
        return csrf_failed();
    }
    let mode = if form.text("mode") == "metadata" {
        "metadata"
    } else {
        "manual"
    };
    let update = if mode == "metadata" {
        SamlUpdate {
            metadata_xml: Some(form.text("metadata_xml").to_owned()),
            ..SamlUpdate::default()
        }
    } else {
        SamlUpdate {
            metadata_xml: None,
            entity_id: Some(form.text("entity_id").to_owned()),
            sso_url: Some(form.text("sso_url").to_owned()),
            certificate_pem: Some(form.text("certificate_pem").to_owned()),
        }
    };
    let store = api.store().clone();
    let actor = session.actor();
    match blocking(move || service::set_saml(&store, &actor, &update)).await {
        Ok(_) => see_other("/admin/saml?done=saml"),
        Err(err @ AdminError::Validation { .. }) => {
            let store = api.store().clone();
            let saml = ok_or_page!(blocking(move || service::get_saml(&store, org)).await);
            let sp = ok_or_page!(crate::saml_sign_in::console::sp_urls_of(&api, &req, org).await);
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SamlPage {
                    sp,
                    chrome: Chrome::for_session(&session, "saml"),
                    saml,
                    metadata_xml: form.text("metadata_xml").to_owned(),
                    entity_id: form.text("entity_id").to_owned(),
                    sso_url: form.text("sso_url").to_owned(),
                    certificate_pem: form.text("certificate_pem").to_owned(),
                    errors: FieldMessages::from_error(&err).keep_only(&[
                        "metadata_xml",
                        "entity_id",
                        "sso_url",
                        "certificate_pem",
                    ]),
                },
            )
        }
        Err(err) => error_page(&err),
    }
}

// ---------------------------------------------------------------- settings

#[derive(askama::Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    current: SettingsView,
    /// The values in the form (the stored ones, or those just sent).
    soft: bool,
    retention: String,
    change_log_retention: String,
    health_failure_percent: String,
    health_silence_minutes: String,
    health_window_requests: String,
    health_window_minutes: String,
    default_page_size: String,
    max_page_size: String,
    version: i64,
    errors: FieldMessages,
}

async fn settings_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let org = session.org;
    let store = api.store().clone();
    let s = ok_or_page!(blocking(move || service::get_settings(&store, org)).await);
    render(&SettingsPage {
        chrome: Chrome::for_session(&session, "settings").with_notice(notice(&req)),
        soft: s.deprovisioning == DeprovisioningPolicy::Soft,
        retention: s.soft_delete_retention_days.to_string(),
        change_log_retention: s.change_log_retention_days.to_string(),
        health_failure_percent: s.health_failure_percent.to_string(),
        health_silence_minutes: s.health_silence_minutes.to_string(),
        health_window_requests: s.health_window_requests.to_string(),
        health_window_minutes: s.health_window_minutes.to_string(),
        default_page_size: s.default_page_size.to_string(),
        max_page_size: s.max_page_size.to_string(),
        version: s.version,
        current: s,
        errors: FieldMessages::none(),
    })
}

fn parse_int(form: &Form, field: &str, errors: &mut Vec<crate::FieldError>) -> i32 {
    match form.text(field).trim().parse::<i32>() {
        Ok(v) => v,
        Err(_) => {
            errors.push(crate::FieldError::new(field, "must be a whole number"));
            0
        }
    }
}

async fn settings_submit(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    let org = session.org;
    let form = Form::parse(&body);
    if !verify(&session, &form) {
        return csrf_failed();
    }
    let mut errors = Vec::new();
    let soft = form.text("deprovisioning") == "soft";
    let update = SettingsUpdate {
        deprovisioning: if soft {
            DeprovisioningPolicy::Soft
        } else {
            DeprovisioningPolicy::Hard
        },
        soft_delete_retention_days: parse_int(&form, "soft_delete_retention_days", &mut errors),
        default_page_size: parse_int(&form, "default_page_size", &mut errors),
        max_page_size: parse_int(&form, "max_page_size", &mut errors),
        // A form without the field (an older page) keeps the stored value.
        change_log_retention_days: form
            .get("change_log_retention_days")
            .map(|_| parse_int(&form, "change_log_retention_days", &mut errors)),
        health_failure_percent: form
            .get("health_failure_percent")
            .map(|_| parse_int(&form, "health_failure_percent", &mut errors)),
        health_silence_minutes: form
            .get("health_silence_minutes")
            .map(|_| parse_int(&form, "health_silence_minutes", &mut errors)),
        health_window_requests: form
            .get("health_window_requests")
            .map(|_| parse_int(&form, "health_window_requests", &mut errors)),
        health_window_minutes: form
            .get("health_window_minutes")
            .map(|_| parse_int(&form, "health_window_minutes", &mut errors)),
    };
    let version = form.text("version").trim().parse::<i64>().unwrap_or(-1);
    let store = api.store().clone();
    let actor = session.actor();
    let result = if errors.is_empty() {
        blocking(move || service::update_settings(&store, &actor, &update, version)).await
    } else {
        Err(AdminError::fields(errors))
    };
    match result {
        Ok(_) => see_other("/admin/settings?done=settings"),
        Err(err @ (AdminError::Validation { .. } | AdminError::PreconditionFailed(_))) => {
            let store = api.store().clone();
            let current = ok_or_page!(blocking(move || service::get_settings(&store, org)).await);
            let stale = matches!(err, AdminError::PreconditionFailed(_));
            render_status(
                actix_web::ResponseError::status_code(&err),
                &SettingsPage {
                    chrome: Chrome::for_session(&session, "settings"),
                    soft,
                    retention: form.text("soft_delete_retention_days").to_owned(),
                    change_log_retention: form.text("change_log_retention_days").to_owned(),
                    health_failure_percent: form.text("health_failure_percent").to_owned(),
                    health_silence_minutes: form.text("health_silence_minutes").to_owned(),
                    health_window_requests: form.text("health_window_requests").to_owned(),
                    health_window_minutes: form.text("health_window_minutes").to_owned(),
                    default_page_size: form.text("default_page_size").to_owned(),
                    max_page_size: form.text("max_page_size").to_owned(),
                    // After a conflict the form is based on what is stored
                    // now: sending it again overwrites knowingly.
                    version: if stale { current.version } else { version },
                    current,
                    errors: FieldMessages::from_error(&err).keep_only(&[
                        "soft_delete_retention_days",
                        "change_log_retention_days",
                        "health_failure_percent",
                        "health_silence_minutes",
                        "health_window_requests",
                        "health_window_minutes",
                        "default_page_size",
                        "max_page_size",
                    ]),
                },
            )
        }
        Err(err) => error_page(&err),
    }
}

// ---------------------------------------------------------------- tokens

#[derive(askama::Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    scim_tokens: Vec<TokenView>,
    admin_tokens: Vec<TokenView>,
    /// The form that failed (`scim` or `admin`), its name and expiry.
    failed_kind: String,
    name: String,
    expires: String,
    errors: FieldMessages,
}

#[derive(askama::Template)]
#[template(path = "token_created.html")]
struct TokenCreatedPage {
    chrome: Chrome,
    kind_label: &'static str,
    created: CreatedToken,
    scim_url: String,
}

/// The organization's SCIM tokens, and the admin API tokens `session`
/// sees (an organization administrator: those bound to the organization).
async fn load_tokens(
    api: &AdminApi,
    session: &ConsoleSession,
) -> Result<(Vec<TokenView>, Vec<TokenView>), AdminError> {
    let (store, org, bound) = (api.store().clone(), session.org, session.token_org());
    blocking(move || {
        Ok((
            service::list_scim_tokens(&store, org)?,
            service::list_admin_tokens_in(&store, bound)?,
        ))
    })
    .await
}

async fn tokens_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let (scim_tokens, admin_tokens) = ok_or_page!(load_tokens(&api, &session).await);
    render(&TokensPage {
        chrome: Chrome::for_session(&session, "tokens").with_notice(notice(&req)),
        scim_tokens,
        admin_tokens,
        failed_kind: String::new(),
        name: String::new(),
        expires: String::new(),
        errors: FieldMessages::none(),
    })
}

/// A date from `<input type="date">` (`YYYY-MM-DD`, meaning the start of
/// that day, UTC) or an RFC 3339 date-time.
fn expiry(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        None
    } else if raw.len() == 10 && !raw.contains('T') {
        Some(format!("{raw}T00:00:00Z"))
    } else {
        Some(raw.to_owned())
    }
}

async fn token_create(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    let form = Form::parse(&body);
    if !verify(&session, &form) {
        return csrf_failed();
    }
    let admin_kind = form.text("kind") == "admin";
    let request = CreateTokenRequest {
        name: form.text("name").to_owned(),
        expires_at: expiry(form.text("expires_at")),
    };
    let (store, actor, bound) = (api.store().clone(), session.actor(), session.token_org());
    let result = blocking(move || {
        if admin_kind {
            service::create_admin_token_in(&store, &actor, &request, bound)
        } else {
            service::create_scim_token(&store, &actor, &request)
        }
    })
    .await;
    match result {
        Ok(created) => {
            // An organization other than the default one is served below
            // its slug (docs/ORGANIZATIONS.md).
            let org_path = session
                .orgs
                .iter()
                .find(|o| o.current && o.id != scim_store::OrgId::DEFAULT)
                .map(|o| format!("/o/{}", o.slug))
                .unwrap_or_default();
            let scim_url = format!(
                "{}://{}{}{org_path}",
                req.connection_info().scheme(),
                req.connection_info().host(),
                api.config().scim_base_path
            );
            render(&TokenCreatedPage {
                chrome: Chrome::for_session(&session, "tokens"),
                kind_label: if admin_kind { "admin API" } else { "SCIM" },
                created,
                scim_url,
            })
        }
        Err(err @ AdminError::Validation { .. }) => {
            let (scim_tokens, admin_tokens) = ok_or_page!(load_tokens(&api, &session).await);
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &TokensPage {
                    chrome: Chrome::for_session(&session, "tokens"),
                    scim_tokens,
                    admin_tokens,
                    failed_kind: if admin_kind { "admin" } else { "scim" }.to_owned(),
                    name: form.text("name").to_owned(),
                    expires: form.text("expires_at").to_owned(),
                    errors: FieldMessages::from_error(&err).keep_only(&["name", "expires_at"]),
                },
            )
        }
        Err(err) => error_page(&err),
    }
}

async fn token_revoke(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    if !verify(&session, &Form::parse(&body)) {
        return csrf_failed();
    }
    let (kind, id) = path.into_inner();
    let (store, actor, bound) = (api.store().clone(), session.actor(), session.token_org());
    let result = blocking(move || match kind.as_str() {
        "scim" => service::revoke_scim_token(&store, &actor, &id),
        "admin" => service::revoke_admin_token_in(&store, &actor, &id, bound),
        _ => Err(AdminError::NotFound(format!(
            "no token kind {kind:?} (scim or admin)"
        ))),
    })
    .await;
    ok_or_page!(result);
    see_other("/admin/tokens?done=revoked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_dates_and_date_times() {
        assert_eq!(expiry(""), None);
        assert_eq!(
            expiry("2031-01-02").as_deref(),
            Some("2031-01-02T00:00:00Z")
        );
        assert_eq!(
            expiry("2031-01-02T10:00:00Z").as_deref(),
            Some("2031-01-02T10:00:00Z")
        );
    }

    #[test]
    fn notices_come_from_a_fixed_list() {
        let req = actix_web::test::TestRequest::get()
            .uri("/admin/sync?done=%3Cscript%3E")
            .to_http_request();
        assert_eq!(notice(&req), None);
        let req = actix_web::test::TestRequest::get()
            .uri("/admin/sync?done=enabled")
            .to_http_request();
        assert!(notice(&req).is_some_and(|n| n.contains("enabled")));
    }
}
