//! The routes of SAML sign-in to the console: the SP metadata, the
//! "Sign in with SAML" redirect to the IdP, and the Assertion Consumer
//! Service that verifies the IdP's response, maps it to an administrator
//! and opens a session exactly as a password sign-in does (recorded as
//! `admin.signed_in` with `method: saml`; a refusal as
//! `admin.sign_in_failed`, and shown on the sign-in page).

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
    cfg.route(METADATA_PATH, web::get().to(metadata))
        .route(SIGN_IN_PATH, web::get().to(sign_in))
        .route(ACS_PATH, web::post().to(acs));
}

/// scimd's SP addresses: under `server.public_url`, else the request's
/// scheme and host (as the OAuth issuer).
pub fn sp_urls(api: &AdminApi, req: &HttpRequest) -> SpUrls {
    SpUrls::under(&crate::oauth::endpoints::issuer(api, req))
}

/// The credential sign-in attempts over SAML are counted under (per
/// address, like a password sign-in's account), which bounds the failure
/// rows an anonymous poster can add to the change log.
const SAML_CREDENTIAL: &str = "saml";

/// `GET /admin/saml/metadata`: the SP metadata (public, as SAML metadata
/// is meant to be).
async fn metadata(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(super::sp_metadata(&sp_urls(&api, &req)))
}

async fn settings(api: &AdminApi) -> Result<Option<admin::saml::SamlSettings>, AdminError> {
    let store = api.store().clone();
    // Console sign-in is the default organization's SAML (organization
    // administrators sign in with a password: docs/ORGANIZATIONS.md).
    web::block(move || {
        Ok(store.read(|c| admin::saml::find_saml_settings(c, scim_store::OrgId::DEFAULT))?)
    })
    .await?
}

/// `GET /admin/saml/sign-in?next=…`: redirects to the IdP with an
/// `AuthnRequest`; `next` comes back as `RelayState`.
async fn sign_in(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let idp = match settings(&api).await {
        Ok(Some(idp)) => idp,
        Ok(None) => return refused(&req, &api, &Rejection::NotConfigured).await,
        Err(e) => return crate::console::error_page(&e),
    };
    let q = Form::query(&req);
    let next = q.get("next").filter(|n| safe_next(n)).unwrap_or("");
    match super::authn_request_url(&idp, &sp_urls(&api, &req), next) {
        Ok(url) => crate::console::see_other(&url),
        Err(r) => refused(&req, &api, &r).await,
    }
}

fn status_of(r: &Rejection) -> StatusCode {
    match r {
        Rejection::UnknownAdmin(_) | Rejection::MissingGroup(_) | Rejection::Disabled(_) => {
            StatusCode::FORBIDDEN
        }
        Rejection::NotConfigured => StatusCode::CONFLICT,
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

/// `POST /admin/saml/acs`: the IdP's `SAMLResponse` (HTTP-POST binding).
async fn acs(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
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
    let outcome = match settings(&api).await {
        Ok(Some(idp)) => {
            let sp = sp_urls(&api, &req);
            let response = form.text("SAMLResponse").to_owned();
            let (now, config) = (guard.now, api.config().saml.clone());
            // libxmlsec1's work runs on the blocking pool.
            match web::block(move || super::verify(&idp, &sp, &response, now, &config)).await {
                Ok(verified) => verified,
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
        Ok(verified) => open_session(&guard, &api, verified, attempt.clone()).await,
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

/// Maps the verified assertion to an administrator and opens its session,
/// in one transaction with the assertion's ID (a replay, on any replica,
/// finds it there). `Ok(Err(…))`: refused, nothing written but the
/// forgetting of expired IDs; the name is the asserted one.
async fn open_session(
    guard: &Guard,
    api: &AdminApi,
    verified: Verified,
    attempt: admin::Attempt,
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
                let Some(record) = admin::find_admin_by_name(c, &who)? else {
                    return Ok(Err(Rejection::UnknownAdmin(who.clone())));
                };
                if record.disabled_at.is_some() {
                    return Ok(Err(Rejection::Disabled(record.username)));
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
