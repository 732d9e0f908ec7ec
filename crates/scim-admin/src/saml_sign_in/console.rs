//! The routes of SAML sign-in to the console: the SP metadata, the
//! "Sign in with SAML" redirect to the IdP, and the Assertion Consumer
//! Service that verifies the IdP's response, maps it to an administrator
//! and opens a session exactly as a password sign-in does (recorded as
//! `admin.signed_in` with `method: saml`; a refusal as
//! `admin.sign_in_failed`, and shown on the sign-in page).
//!
//! Each organization's own SAML settings sign its organization
//! administrators in to its console at `/admin/o/{slug}/saml/…` (its
//! own entity ID, ACS and Sign on URL); the plain `/admin/saml/…` is the
//! default organization's, for every administrator (docs/ORGANIZATIONS.md).
//!
//! An SP-initiated sign-in is bound to the browser that started it: the
//! browser gets a random secret in the [`REQUEST_COOKIE`] cookie, and the
//! `AuthnRequest`'s ID is stored with the secret's hash
//! (`scim_store::admin::saml`, table `saml_requests`) for
//! [`REQUEST_TTL`]. The response's `InResponseTo` must name an
//! outstanding request of the browser that posts it, and answers it once.
//! The database, not a signed cookie, holds the request: any replica may
//! receive the response, no key has to be shared between replicas, and a
//! request cannot be answered twice.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scim_store::admin;
use scim_store::changes::{Actor, ActorKind, Event, NewChange};

use super::{Rejection, SpUrls, Verified, ACS_PATH, METADATA_PATH, SIGN_IN_PATH};
use crate::api::session_cookie;
use crate::console::{login_failed_page, render, safe_next, Form};
use crate::error::AdminError;
use crate::service::Guard;
use crate::AdminApi;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        METADATA_PATH,
        web::get().to(|req, api| metadata(req, api, None)),
    )
    .route(
        SIGN_IN_PATH,
        web::get().to(|req, api| sign_in(req, api, None)),
    )
    .route(
        ACS_PATH,
        web::post().to(|req, api, body| acs(req, api, body, None)),
    )
    .route(
        ORG_METADATA_PATH,
        web::get()
            .to(|req, api, slug: web::Path<String>| metadata(req, api, Some(slug.into_inner()))),
    )
    .route(
        ORG_SIGN_IN_PATH,
        web::get()
            .to(|req, api, slug: web::Path<String>| sign_in(req, api, Some(slug.into_inner()))),
    )
    .route(
        ORG_ACS_PATH,
        web::post().to(|req, api, body, slug: web::Path<String>| {
            acs(req, api, body, Some(slug.into_inner()))
        }),
    );
}

/// An organization's SP metadata (and entity ID).
const ORG_METADATA_PATH: &str = "/admin/o/{slug}/saml/metadata";
/// An organization's "Sign in with SAML" (Entra's Sign on URL).
const ORG_SIGN_IN_PATH: &str = "/admin/o/{slug}/saml/sign-in";
/// An organization's Assertion Consumer Service (Entra's Reply URL).
const ORG_ACS_PATH: &str = "/admin/o/{slug}/saml/acs";

/// scimd's SP addresses: under `server.public_url`, else the request's
/// scheme and host (as the OAuth issuer).
pub fn sp_urls(api: &AdminApi, req: &HttpRequest) -> SpUrls {
    SpUrls::under(&crate::oauth::endpoints::issuer(api, req))
}

/// The SP addresses of the organization `org`'s console sign-in: the
/// default organization's are [`sp_urls`], another's are below its slug.
pub async fn sp_urls_of(
    api: &AdminApi,
    req: &HttpRequest,
    org: scim_store::OrgId,
) -> Result<SpUrls, AdminError> {
    if org == scim_store::OrgId::DEFAULT {
        return Ok(sp_urls(api, req));
    }
    let orgs = api.store().organizations().await?;
    let slug = orgs
        .by_id(org)
        .map(|o| o.slug.clone())
        .ok_or_else(|| AdminError::NotFound("the organization no longer exists".into()))?;
    Ok(SpUrls::of_org(
        &crate::oauth::endpoints::issuer(api, req),
        Some(&slug),
    ))
}

/// The organization whose sign-in a request uses: `slug`'s (404 page for
/// an unknown one), else the default organization; with its slug.
async fn organization(
    api: &AdminApi,
    slug: Option<String>,
) -> Result<(scim_store::OrgId, Option<String>), HttpResponse> {
    let Some(slug) = slug else {
        return Ok((scim_store::OrgId::DEFAULT, None));
    };
    let orgs = match api.store().organizations().await {
        Ok(orgs) => orgs,
        Err(e) => return Err(crate::console::error_page(&e.into())),
    };
    match orgs.by_slug(&slug) {
        // The default organization's sign-in is the plain one.
        Some(o) if o.id != scim_store::OrgId::DEFAULT => Ok((o.id, Some(slug))),
        _ => Err(crate::console::error_page(&AdminError::NotFound(format!(
            "no organization {slug:?} signs in here"
        )))),
    }
}

/// The SP addresses of the organization named by `slug` (none: the
/// default one's).
fn sp_of(api: &AdminApi, req: &HttpRequest, slug: Option<&str>) -> SpUrls {
    SpUrls::of_org(&crate::oauth::endpoints::issuer(api, req), slug)
}

/// The credential sign-in attempts over SAML are counted under (per
/// address, like a password sign-in's account), which bounds the failure
/// rows an anonymous poster can add to the change log.
const SAML_CREDENTIAL: &str = "saml";

/// The cookie holding the browser's secret, to which its sign-in requests
/// are bound.
pub const REQUEST_COOKIE: &str = "scimd_saml_request";
/// How long a sign-in request stays answerable (the time the user has at
/// the identity provider, multi-factor authentication included).
pub const REQUEST_TTL: time::Duration = time::Duration::minutes(10);

/// The browser's secret from [`REQUEST_COOKIE`], if it holds one of the
/// form scimd gives (32 random bytes, base64url).
fn browser_secret(req: &HttpRequest) -> Option<String> {
    req.cookie(REQUEST_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// [`REQUEST_COOKIE`]: sent only to `/admin/saml`, never readable by a
/// script. The identity provider's response arrives as a cross-site POST,
/// which carries a cookie only if it is `SameSite=None`, and browsers
/// accept that only with `Secure`: so over HTTPS (directly or through a
/// proxy that says so) it is `None; Secure`; over plain HTTP it is `Lax`,
/// which a same-site identity provider's POST still carries.
fn request_cookie(req: &HttpRequest, secret: String, slug: Option<&str>) -> Cookie<'static> {
    let https = req.connection_info().scheme().eq_ignore_ascii_case("https");
    let path = match slug {
        Some(slug) => format!("/admin/o/{slug}/saml"),
        None => "/admin/saml".to_owned(),
    };
    Cookie::build(REQUEST_COOKIE, secret)
        .path(path)
        .http_only(true)
        .same_site(if https { SameSite::None } else { SameSite::Lax })
        .secure(https)
        .max_age(CookieDuration::seconds(REQUEST_TTL.whole_seconds()))
        .finish()
}

/// `GET /admin/saml/metadata` (or an organization's): the SP metadata
/// (public, as SAML metadata is meant to be).
async fn metadata(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    slug: Option<String>,
) -> HttpResponse {
    let slug = match organization(&api, slug).await {
        Ok((_, slug)) => slug,
        Err(resp) => return resp,
    };
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(super::sp_metadata(&sp_of(&api, &req, slug.as_deref())))
}

/// The SAML settings of the organization `org`: its identity provider.
async fn settings(
    api: &AdminApi,
    org: scim_store::OrgId,
) -> Result<Option<admin::saml::SamlSettings>, AdminError> {
    let store = api.store().clone();
    web::block(move || Ok(store.read(|c| admin::saml::find_saml_settings(c, org))?)).await?
}

/// `GET /admin/saml/sign-in?next=…` (or an organization's): redirects to
/// the IdP with an `AuthnRequest`, remembered for this browser; `next`
/// comes back as `RelayState`.
async fn sign_in(req: HttpRequest, api: web::Data<AdminApi>, slug: Option<String>) -> HttpResponse {
    let (org, slug) = match organization(&api, slug).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let idp = match settings(&api, org).await {
        Ok(Some(idp)) => idp,
        Ok(None) => return refused(&req, &api, &Rejection::NotConfigured).await,
        Err(e) => return crate::console::error_page(&e),
    };
    let q = Form::query(&req);
    let next = q.get("next").filter(|n| safe_next(n)).unwrap_or("");
    let request = match super::authn_request(&idp, &sp_of(&api, &req, slug.as_deref()), next) {
        Ok(request) => request,
        Err(r) => return refused(&req, &api, &r).await,
    };
    // A browser with sign-ins in progress (other tabs) keeps its secret.
    let secret = browser_secret(&req).unwrap_or_else(admin::random_secret);
    let now = api.config().clock.now();
    let (at, until) = (
        scim_core::datetime::format(now),
        scim_core::datetime::format(now + REQUEST_TTL),
    );
    let store = api.store().clone();
    let (id, bound_to) = (request.id.clone(), secret.clone());
    let remembered = web::block(move || {
        store.write(|c| admin::saml::remember_saml_request(c, &id, &bound_to, &until, &at))
    })
    .await;
    match remembered {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return refused(&req, &api, &Rejection::TooManyRequests).await,
        Ok(Err(e)) => return crate::console::error_page(&e.into()),
        Err(e) => return crate::console::error_page(&e.into()),
    }
    let mut resp = crate::console::see_other(&request.url);
    if let Err(e) = resp.add_cookie(&request_cookie(&req, secret, slug.as_deref())) {
        tracing::error!(error = %e, "could not set the SAML request cookie");
    }
    resp
}

fn status_of(r: &Rejection) -> StatusCode {
    match r {
        Rejection::UnknownAdmin(_)
        | Rejection::NotOfOrganization(_)
        | Rejection::MissingGroup(_)
        | Rejection::Disabled(_) => StatusCode::FORBIDDEN,
        Rejection::NotConfigured => StatusCode::CONFLICT,
        Rejection::TooManyRequests => StatusCode::SERVICE_UNAVAILABLE,
        Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn refused(req: &HttpRequest, api: &AdminApi, r: &Rejection) -> HttpResponse {
    login_failed_page(req, api, status_of(r), &r.to_string()).await
}

/// The page a successful sign-in lands on: the session cookie is
/// `SameSite=Strict`, which a browser does not send on a redirect that a
/// cross-site POST (the IdP's) started, so the console is entered from
/// this page of scimd's own (a meta refresh, allowed by the pages'
/// script-free Content-Security-Policy).
#[derive(askama::Template)]
#[template(path = "saml_signed_in.html")]
struct SignedInPage {
    chrome: crate::console::Chrome,
    to: String,
}

/// `POST /admin/saml/acs` (or an organization's): the IdP's
/// `SAMLResponse` (HTTP-POST binding).
async fn acs(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
    slug: Option<String>,
) -> HttpResponse {
    let (org, slug) = match organization(&api, slug).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let form = Form::parse(&body);
    let next = form
        .get("RelayState")
        .filter(|n| safe_next(n))
        .unwrap_or("/admin/sync")
        .to_owned();
    let guard = api.sign_in_guard(&req);
    let attempt = match guard.reserve(SAML_CREDENTIAL.to_owned()).await {
        Ok(a) => a,
        Err(e @ AdminError::TooManyRequests { .. }) => {
            return login_failed_page(&req, &api, StatusCode::TOO_MANY_REQUESTS, &e.to_string())
                .await
        }
        Err(e) => return crate::console::error_page(&e),
    };
    let secret = browser_secret(&req);
    let outcome = match settings(&api, org).await {
        Ok(Some(idp)) => {
            let sp = sp_of(&api, &req, slug.as_deref());
            let response = form.text("SAMLResponse").to_owned();
            let (now, config) = (guard.now, api.config().saml.clone());
            let (store, secret) = (api.store().clone(), secret.clone());
            // The browser's outstanding requests, then libxmlsec1's work,
            // on the blocking pool.
            let checked = web::block(move || {
                let outstanding = match &secret {
                    Some(s) => store.read(|c| {
                        admin::saml::outstanding_saml_requests(
                            c,
                            s,
                            &scim_core::datetime::format(now),
                        )
                    })?,
                    None => Vec::new(),
                };
                Ok::<_, scim_store::StoreError>(super::verify(
                    &idp,
                    &sp,
                    &response,
                    now,
                    &config,
                    &outstanding,
                ))
            })
            .await;
            match checked {
                Ok(Ok(verified)) => verified,
                Ok(Err(e)) => {
                    let e = guard.abandon(attempt, e.into()).await;
                    return crate::console::error_page(&e);
                }
                Err(_) => {
                    let e = guard.abandon(attempt, AdminError::Internal).await;
                    return crate::console::error_page(&e);
                }
            }
        }
        Ok(None) => Err(Rejection::NotConfigured),
        Err(e) => return crate::console::error_page(&guard.abandon(attempt, e).await),
    };
    let signed_in = match outcome {
        Ok(verified) => open_session(&guard, &api, verified, secret, attempt.clone(), org).await,
        Err(r) => Ok(Err((r, None))),
    };
    match signed_in {
        Ok(Ok(session_id)) => {
            let ttl = api.config().session_ttl;
            let mut resp = render(&SignedInPage {
                chrome: crate::console::Chrome::signed_out("login"),
                to: next,
            });
            if let Err(e) = resp.add_cookie(&session_cookie(&req, session_id, ttl.whole_seconds()))
            {
                tracing::error!(error = %e, "could not set the session cookie");
            }
            resp
        }
        Ok(Err((rejection, name))) => {
            guard.log_failure(&attempt, SAML_CREDENTIAL);
            if let Err(e) = record_failure(&guard, name.as_deref(), &rejection).await {
                return crate::console::error_page(&e);
            }
            tracing::info!(reason = rejection.code(), address = %guard.address, "SAML sign-in refused");
            refused(&req, &api, &rejection).await
        }
        Err(e) => crate::console::error_page(&guard.abandon(attempt, e).await),
    }
}

/// Answers the request the response names (once, whatever follows),
/// maps the verified assertion to an administrator and opens its
/// session, in one transaction with the assertion's ID (a replay, on any
/// replica, finds it there). `Ok(Err(…))`: refused, nothing written but
/// the answered request and the forgetting of expired IDs; the name is
/// the asserted one. `secret`: the posting browser's. `org`: the
/// organization whose identity provider signed the assertion: another
/// than the default one signs in only its own organization
/// administrators (an instance administrator never: a customer's
/// identity provider must not open every organization), and their
/// session shows that organization.
async fn open_session(
    guard: &Guard,
    api: &AdminApi,
    verified: Verified,
    secret: Option<String>,
    attempt: admin::Attempt,
    org: scim_store::OrgId,
) -> Result<Result<String, (Rejection, Option<String>)>, AdminError> {
    let name = verified.username.clone();
    if let Some(group) = &api.config().saml.required_group {
        if !verified.groups.iter().any(|g| g == group) {
            return Ok(Err((Rejection::MissingGroup(name.clone()), Some(name))));
        }
    }
    let now = scim_core::datetime::format(guard.now);
    let expires = scim_core::datetime::format(guard.now + api.config().session_ttl);
    let remembered_until = scim_core::datetime::format(verified.expires_at);
    let request = (guard.request_id.clone(), guard.address.clone());
    let who = name.clone();
    let result = guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                if let Some(id) = &verified.in_response_to {
                    let answered = match &secret {
                        Some(s) => admin::saml::take_saml_request(c, id, s, &now)?,
                        None => false,
                    };
                    // Answered meanwhile by another response (another
                    // connection or replica).
                    if !answered {
                        return Ok(Err(Rejection::UnknownRequest));
                    }
                }
                let Some(record) = admin::find_admin_by_name(c, &who)? else {
                    return Ok(Err(Rejection::UnknownAdmin(who.clone())));
                };
                if record.disabled_at.is_some() {
                    return Ok(Err(Rejection::Disabled(record.username)));
                }
                if org != scim_store::OrgId::DEFAULT {
                    let scope = admin::roles::admin_scope(c, &record.id)?;
                    if scope.is_instance() || !scope.may_act_on(org) {
                        return Ok(Err(Rejection::NotOfOrganization(record.username)));
                    }
                }
                if !admin::saml::remember_saml_assertion(
                    c,
                    &verified.assertion_id,
                    &remembered_until,
                    &now,
                )? {
                    return Ok(Err(Rejection::Replayed));
                }
                admin::succeed_attempt(c, &attempt)?;
                admin::record_admin_login(c, &record.id, &now)?;
                admin::purge_expired_sessions(c, &now)?;
                let session = admin::create_session(c, &record, &expires)?;
                admin::roles::set_session_org(c, &session.1, org)?;
                let actor = Actor::new(
                    ActorKind::Admin,
                    Some(record.id.clone()),
                    Some(record.username.clone()),
                )
                .with_request(request.0.clone(), Some(request.1.clone()));
                scim_store::changes::record(
                    c,
                    &actor,
                    &now,
                    &[
                        NewChange::new(Event::AdminSignedIn, "Admin", Some(&record.id))
                            .detail(serde_json::json!({ "method": "saml" })),
                    ],
                )?;
                Ok(Ok(session.1))
            }))
        })
        .await;
    match result {
        Ok(Ok(Ok(session_id))) => Ok(Ok(session_id)),
        Ok(Ok(Err(r))) => Ok(Err((r, Some(name)))),
        // The same assertion committed first on another connection.
        Ok(Err(scim_store::StoreError::Conflict(_))) => Ok(Err((Rejection::Replayed, Some(name)))),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e),
    }
}

/// Records a refused SAML sign-in (`admin.sign_in_failed`, actor
/// `Anonymous` named after the asserted user when the assertion verified,
/// else `saml`), in a write of its own, whatever the request answers.
async fn record_failure(
    guard: &Guard,
    name: Option<&str>,
    rejection: &Rejection,
) -> Result<(), AdminError> {
    let name: String = name
        .unwrap_or(SAML_CREDENTIAL)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let actor = Actor::new(ActorKind::Anonymous, None, Some(name))
        .with_request(guard.request_id.clone(), Some(guard.address.clone()));
    let now = scim_core::datetime::format(guard.now);
    let detail = serde_json::json!({ "method": "saml", "reason": rejection.code() });
    guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                scim_store::changes::record(
                    c,
                    &actor,
                    &now,
                    &[NewChange::new(Event::AdminSignInFailed, "Admin", None).detail(detail)],
                )
            })?)
        })
        .await
}
