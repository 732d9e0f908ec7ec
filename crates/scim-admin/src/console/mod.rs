//! The admin console: server-rendered HTML pages under `/admin/` (askama
//! templates compiled into the binary, one stylesheet and one small script
//! served from it too: no CDN, works offline).
//!
//! The pages call the same [`crate::service`] functions as the JSON API.
//! They authenticate with the same session cookie; every state-changing
//! form carries the session's CSRF token in a hidden `csrf` field, checked
//! in constant time (OWASP synchronizer token pattern), on top of the
//! cookie's `SameSite=Strict`.
//!
//! Each page shows and changes one organization: the one chosen in the
//! organization switcher (kept in the session, `admin_sessions.org_id`),
//! among those the administrator may act on. The instance pages
//! ([`INSTANCE_PAGES`]) are for instance administrators only; the check
//! is in [`require_session`], which every page calls.
//!
//! Every page is sent with a strict Content-Security-Policy (`'self'`
//! only, no inline script), `X-Frame-Options: DENY` and
//! `Cache-Control: no-store` (pages may show a secret once).

mod activity;
mod browse;
mod extensions;
mod organizations;
mod pages;
mod provisioning;
mod streams;

pub(crate) use pages::login_failed_page;

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use scim_store::admin::roles::AdminScope;
use scim_store::changes::{Actor, ActorKind};
use scim_store::OrgId;

use crate::auth::SESSION_COOKIE;
use crate::error::AdminError;
use crate::AdminApi;

/// The console's mount point.
pub const CONSOLE_BASE: &str = "/admin";

/// The console's stylesheet.
const CSS: &str = include_str!("../../static/console.css");
/// The console's script (progressive enhancement only: the Enable
/// button's state, the copy button, confirmations).
const JS: &str = include_str!("../../static/console.js");

/// A signed-in administrator, as the console sees it.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The cookie value (to end the session on sign-out).
    pub session_id: String,
    /// The administrator's id.
    pub admin_id: String,
    /// The administrator's username.
    pub username: String,
    /// The request's id and the client's address, for the change log.
    pub request: (Option<String>, String),
    /// The CSRF token every form must carry.
    pub csrf_token: String,
    /// Whether User Synchronization is on (for the banner).
    pub sync_enabled: bool,
    /// The organization the pages show and change.
    pub org: OrgId,
    /// What the administrator may act on.
    pub scope: AdminScope,
    /// The organizations it may act on (the switcher's entries), the
    /// default one first; the current one is marked.
    pub orgs: Vec<OrgChoice>,
}

/// An entry of the organization switcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgChoice {
    /// Its id.
    pub id: OrgId,
    /// Its slug.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Whether the pages show it.
    pub current: bool,
}

impl ConsoleSession {
    /// Who the change log records: the administrator, with the request id
    /// and the client address.
    pub fn actor(&self) -> Actor {
        Actor::new(
            ActorKind::Admin,
            Some(self.admin_id.clone()),
            Some(self.username.clone()),
        )
        .with_request(self.request.0.clone(), Some(self.request.1.clone()))
        .in_org(self.org)
    }

    /// The organization the admin API tokens made on these pages are
    /// bound to: the one shown, for an organization administrator; none
    /// (every organization) for an instance administrator.
    pub fn token_org(&self) -> Option<OrgId> {
        (!self.scope.is_instance()).then_some(self.org)
    }
}

/// What every page's frame shows: who is signed in, the navigation, the
/// synchronization banner and a notice after an action.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in administrator (none on setup and login).
    pub username: Option<String>,
    /// The CSRF token for the forms on the page (and sign-out).
    pub csrf: String,
    /// The navigation entry to highlight.
    pub active: &'static str,
    /// Whether User Synchronization is on (none when signed out).
    pub sync_enabled: Option<bool>,
    /// A one-line notice about the last action.
    pub notice: Option<String>,
    /// The organizations the administrator may act on (the switcher's
    /// entries, shown when there are several).
    pub orgs: Vec<OrgChoice>,
    /// Whether the administrator is an instance administrator (the
    /// instance pages are in its navigation).
    pub instance: bool,
}

impl Chrome {
    /// The frame of a page seen by `session`, with `active` highlighted.
    pub fn for_session(session: &ConsoleSession, active: &'static str) -> Self {
        Chrome {
            username: Some(session.username.clone()),
            csrf: session.csrf_token.clone(),
            active,
            sync_enabled: Some(session.sync_enabled),
            notice: None,
            orgs: session.orgs.clone(),
            instance: session.scope.is_instance(),
        }
    }

    /// The organization the page shows, when the administrator has a
    /// choice of several (else none: the frame names none).
    pub fn current_org(&self) -> Option<&OrgChoice> {
        if self.orgs.len() < 2 {
            return None;
        }
        self.orgs.iter().find(|o| o.current)
    }

    /// The frame of a page seen before signing in.
    pub fn signed_out(active: &'static str) -> Self {
        Chrome {
            active,
            ..Chrome::default()
        }
    }

    /// The navigation, with the current page marked.
    pub fn nav_items(&self) -> Vec<NavItem> {
        NAV.iter()
            .filter(|(_, _, path)| self.instance || !is_instance_page(path))
            .map(|&(id, label, path)| NavItem {
                label,
                path,
                current: id == self.active,
            })
            .collect()
    }

    /// The page of the highlighted navigation entry (where the
    /// organization switcher comes back to), else the console's start.
    pub fn here(&self) -> &'static str {
        NAV.iter()
            .find(|(id, _, _)| *id == self.active)
            .map_or("/admin/", |(_, _, path)| path)
    }

    /// With a notice.
    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

/// One navigation entry.
#[derive(Debug, Clone, Copy)]
pub struct NavItem {
    /// What it says.
    pub label: &'static str,
    /// Where it goes.
    pub path: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

/// The navigation: (id, label, path).
pub const NAV: &[(&str, &str, &str)] = &[
    ("sync", "User Synchronization", "/admin/sync"),
    ("provisioning", "Provisioning", "/admin/provisioning"),
    ("saml", "SAML sign-in", "/admin/saml"),
    ("settings", "Settings", "/admin/settings"),
    ("tokens", "Tokens", "/admin/tokens"),
    ("oauth-clients", "OAuth clients", "/admin/oauth-clients"),
    ("event-streams", "Event streams", "/admin/event-streams"),
    (
        "schema-extensions",
        "Schema extensions",
        "/admin/schema-extensions",
    ),
    ("admins", "Administrators", "/admin/admins"),
    ("organizations", "Organizations", "/admin/organizations"),
    ("users", "Users", "/admin/users"),
    ("groups", "Groups", "/admin/groups"),
    ("activity", "Activity", "/admin/activity"),
];

/// The console pages for instance administrators only: the organizations,
/// the administrators, the schema extensions (shared by every
/// organization) and the event streams (which carry every organization's
/// changes). An organization administrator gets 403 and does not see them
/// in its navigation.
pub const INSTANCE_PAGES: &[&str] = &[
    "/admin/organizations",
    "/admin/admins",
    "/admin/schema-extensions",
    "/admin/event-streams",
];

/// Whether `path` is (below) one of [`INSTANCE_PAGES`].
pub fn is_instance_page(path: &str) -> bool {
    INSTANCE_PAGES.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn secure_headers(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ))
    .insert_header((header::X_FRAME_OPTIONS, "DENY"))
    .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
    .insert_header((header::REFERRER_POLICY, "same-origin"))
    .insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// Renders a page (200).
pub fn render(page: &impl askama::Template) -> HttpResponse {
    render_status(actix_web::http::StatusCode::OK, page)
}

/// Renders a page with `status` (a form re-shown with errors is 422).
pub fn render_status(
    status: actix_web::http::StatusCode,
    page: &impl askama::Template,
) -> HttpResponse {
    match page.render() {
        Ok(html) => secure_headers(HttpResponse::build(status))
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            secure_headers(HttpResponse::InternalServerError())
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// A 303 redirect (after a form, so that reloading does not post again).
pub fn see_other(location: &str) -> HttpResponse {
    secure_headers(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// Whether `next` is a safe place to go after signing in: a path on this
/// site (one leading `/`, not `//` or `/\`, which browsers treat as
/// another host), never a URL.
pub fn safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
}

/// The login page that returns to this request afterwards.
fn login_redirect(req: &HttpRequest) -> HttpResponse {
    let here = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    };
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    see_other(&format!("{CONSOLE_BASE}/login?next={next}"))
}

/// The session and a verified form, or the response to send instead.
pub(crate) async fn session_and_form(
    req: &HttpRequest,
    api: &AdminApi,
    body: &[u8],
) -> Result<(ConsoleSession, Form), HttpResponse> {
    let session = require_session(req, api).await?;
    let form = Form::parse(body);
    if !check_csrf(&session, form.text("csrf")) {
        return Err(csrf_failed());
    }
    Ok((session, form))
}

/// The signed-in administrator, or (`Err`) the redirect to the login page
/// (which comes back here afterwards), or an error page when the database
/// is unreachable.
pub async fn require_session(
    req: &HttpRequest,
    api: &AdminApi,
) -> Result<ConsoleSession, HttpResponse> {
    let Some(session_id) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(login_redirect(req));
    };
    let store = api.store().clone();
    let sid = session_id.clone();
    let now = api.config().clock.now_text();
    let orgs = match api.store().organizations().await {
        Ok(orgs) => orgs,
        Err(e) => return Err(error_page(&AdminError::from(e))),
    };
    let found = web::block(move || {
        store.read(|c| {
            let Some(session) = scim_store::admin::find_session(c, &sid, &now)? else {
                return Ok(None);
            };
            let scope = scim_store::admin::roles::admin_scope(c, &session.admin.id)?;
            let chosen = scim_store::admin::roles::session_org(c, &sid)?;
            let choices: Vec<_> = orgs
                .all()
                .into_iter()
                .filter(|o| scope.may_act_on(o.id))
                .map(|o| (o.id, o.slug.clone(), o.name.clone()))
                .collect();
            // The organization chosen in the switcher while it may still
            // act on it; else its first one.
            let org = chosen
                .filter(|o| choices.iter().any(|(id, _, _)| id == o))
                .or_else(|| choices.first().map(|(id, _, _)| *id));
            let enabled = match org {
                Some(org) => scim_store::sync::sync_enabled(c, org)?,
                None => false,
            };
            Ok(Some((session, scope, choices, org, enabled)))
        })
    })
    .await;
    let (s, scope, choices, org, sync_enabled) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return Err(login_redirect(req)),
        Ok(Err(e)) => return Err(error_page(&AdminError::from(e))),
        Err(_) => return Err(error_page(&AdminError::Internal)),
    };
    let session = ConsoleSession {
        session_id,
        admin_id: s.admin.id,
        username: s.admin.username,
        request: (crate::request_id(req), api.client_address(req)),
        csrf_token: s.csrf_token,
        sync_enabled,
        org: org.unwrap_or(OrgId::DEFAULT),
        orgs: choices
            .into_iter()
            .map(|(id, slug, name)| OrgChoice {
                id,
                slug,
                name,
                current: Some(id) == org,
            })
            .collect(),
        scope,
    };
    if is_instance_page(req.path()) && !session.scope.is_instance() {
        return Err(session_error_page(
            &session,
            &AdminError::Forbidden(
                "this page is for instance administrators: an organization administrator manages only its organizations' pages".into(),
            ),
        ));
    }
    if org.is_none() {
        return Err(session_error_page(
            &session,
            &AdminError::Forbidden(
                "you administer no organization: an instance administrator can grant you one"
                    .into(),
            ),
        ));
    }
    Ok(session)
}

/// Whether a form's `csrf` value is the session's token (constant time).
pub fn check_csrf(session: &ConsoleSession, given: &str) -> bool {
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes()))
}

/// The pre-session cookie behind the sign-in and setup forms' CSRF token.
pub const LOGIN_CSRF_COOKIE: &str = "scimd_login_csrf";

/// The CSRF token of the sign-in and setup forms, which no session backs
/// yet (login CSRF: a cross-site form must not sign the browser in to an
/// account of the attacker's choosing). Double-submit (OWASP CSRF cheat
/// sheet): a random value in an `HttpOnly`, `SameSite=Strict` cookie, and
/// the same value in the form's hidden `csrf` field; a cross-site page can
/// neither read the cookie nor make the browser send it. Returns the
/// request's token when it carries a well-formed one, else a new one with
/// the cookie to set.
pub fn login_csrf(req: &HttpRequest) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    if let Some(token) = login_csrf_cookie(req) {
        return (token, None);
    }
    let token = scim_store::admin::random_secret();
    let https = req.connection_info().scheme().eq_ignore_ascii_case("https");
    let cookie = actix_web::cookie::Cookie::build(LOGIN_CSRF_COOKIE, token.clone())
        .path(CONSOLE_BASE)
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .secure(https)
        .finish();
    (token, Some(cookie))
}

fn login_csrf_cookie(req: &HttpRequest) -> Option<String> {
    let value = req.cookie(LOGIN_CSRF_COOKIE)?.value().to_owned();
    let well_formed = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(value)
}

/// Whether a sign-in or setup form's `csrf` field is the cookie's token
/// (constant time).
pub fn check_login_csrf(req: &HttpRequest, form: &Form) -> bool {
    let given = form.text("csrf");
    login_csrf_cookie(req).is_some_and(|token| {
        !given.is_empty() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
    })
}

/// `resp` with `cookie` set, if any.
pub fn with_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        if let Err(e) = resp.add_cookie(&c) {
            tracing::error!(error = %e, "could not set a console cookie");
        }
    }
    resp
}

/// An `application/x-www-form-urlencoded` body (or query string), keeping
/// repeated names (checkboxes) in order.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses a form body.
    pub fn parse(body: &[u8]) -> Self {
        Form {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// Parses a request's query string.
    pub fn query(req: &HttpRequest) -> Self {
        Form::parse(req.query_string().as_bytes())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The names given, in order, each once.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in &self.pairs {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Field-level messages for a form, keyed by field name; `general` holds
/// what concerns no single field.
#[derive(Debug, Clone, Default)]
pub struct FieldMessages {
    by_field: HashMap<String, Vec<String>>,
    /// Messages about the form as a whole.
    pub general: Vec<String>,
}

impl FieldMessages {
    /// No messages.
    pub fn none() -> Self {
        FieldMessages::default()
    }

    /// The messages of an error: field-level ones next to their fields,
    /// the rest at the top of the form.
    pub fn from_error(err: &AdminError) -> Self {
        let mut out = FieldMessages::default();
        match err {
            AdminError::Validation { fields, .. } | AdminError::SyncNotReady { fields, .. } => {
                for f in fields {
                    out.by_field
                        .entry(f.field.clone())
                        .or_default()
                        .push(f.message.clone());
                }
            }
            other => out.general.push(other.to_string()),
        }
        out
    }

    /// A message about the whole form.
    pub fn general(message: impl Into<String>) -> Self {
        FieldMessages {
            general: vec![message.into()],
            ..FieldMessages::default()
        }
    }

    /// The messages about `field` (empty when none).
    pub fn of(&self, field: &str) -> &[String] {
        self.by_field.get(field).map_or(&[], Vec::as_slice)
    }

    /// Whether there is any message.
    pub fn is_empty(&self) -> bool {
        self.general.is_empty() && self.by_field.is_empty()
    }

    /// Moves the messages of fields not shown on the form to the top, so
    /// nothing is lost.
    pub fn keep_only(mut self, shown: &[&str]) -> Self {
        let hidden: Vec<String> = self
            .by_field
            .keys()
            .filter(|k| !shown.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in hidden {
            if let Some(msgs) = self.by_field.remove(&k) {
                self.general
                    .extend(msgs.into_iter().map(|m| format!("{k}: {m}")));
            }
        }
        self
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

/// A page saying what went wrong (the admin API's message, never
/// internals).
pub fn error_page(err: &AdminError) -> HttpResponse {
    use actix_web::ResponseError;
    let status = err.status_code();
    render_status(
        status,
        &ErrorPage {
            chrome: Chrome::signed_out(""),
            status: status.as_u16(),
            message: err.to_string(),
        },
    )
}

/// [`error_page`] inside the frame of `session`'s pages: the navigation
/// stays, so a wrong address is one click from the right one.
pub fn session_error_page(session: &ConsoleSession, err: &AdminError) -> HttpResponse {
    use actix_web::ResponseError;
    let status = err.status_code();
    render_status(
        status,
        &ErrorPage {
            chrome: Chrome::for_session(session, ""),
            status: status.as_u16(),
            message: err.to_string(),
        },
    )
}

/// A 403 page for a form without the right CSRF token.
pub fn csrf_failed() -> HttpResponse {
    error_page(&AdminError::CsrfFailed(
        "the form has expired or did not come from this console; reload the page and try again"
            .into(),
    ))
}

/// Runs a blocking service call off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(JS)
}

/// Mounts the console's pages (call after the admin API's scope, so that
/// `/admin/api/…` is matched there first).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        CONSOLE_BASE,
        web::get().to(|| async { see_other("/admin/") }),
    )
    .service(
        web::scope(CONSOLE_BASE)
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/static/console.js", web::get().to(script))
            .configure(pages::configure)
            .configure(organizations::configure)
            .configure(streams::configure)
            .configure(extensions::configure)
            .configure(provisioning::configure)
            .configure(browse::configure)
            .configure(activity::configure)
            .default_service(web::to(browse::not_found_page)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert!(safe_next("/oauth/authorize?client_id=x&state=y"));
        assert!(safe_next("/admin/sync"));
        assert!(!safe_next("//evil.example/x"));
        assert!(!safe_next("/\\evil.example"));
        assert!(!safe_next("https://evil.example/"));
        assert!(!safe_next("javascript:alert(1)"));
        assert!(!safe_next("/a\nb"));
        assert!(!safe_next(""));
    }

    #[test]
    fn forms_keep_repeated_names() {
        let f = Form::parse(b"caution=a&caution=b&csrf=x%2By&name=J%C3%BCrgen+M");
        assert_eq!(f.all("caution"), vec!["a", "b"]);
        assert_eq!(f.get("csrf"), Some("x+y"));
        assert_eq!(f.text("name"), "Jürgen M");
        assert_eq!(f.text("missing"), "");
    }

    #[test]
    fn messages_land_next_to_their_fields() {
        let err = AdminError::fields(vec![
            crate::FieldError::new("entity_id", "must not be empty"),
            crate::FieldError::new("body", "bad"),
        ]);
        let m = FieldMessages::from_error(&err).keep_only(&["entity_id"]);
        assert_eq!(m.of("entity_id"), ["must not be empty".to_owned()]);
        assert!(m.of("body").is_empty());
        assert_eq!(m.general, vec!["body: bad".to_owned()]);
        let m = FieldMessages::from_error(&AdminError::Conflict("taken".into()));
        assert_eq!(m.general, vec!["taken".to_owned()]);
    }
}
