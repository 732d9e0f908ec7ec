//! Authentication of the admin API: a console session (cookie, with a CSRF
//! token required in a header on state-changing requests), or an admin
//! API token (`Authorization: Bearer scimd_admin_…`). SCIM tokens are
//! looked up in another table and never authenticate here.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use scim_store::changes::{Actor, ActorKind};

use crate::error::AdminError;
use crate::AdminApi;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "scimd_admin_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// The header that names, by slug, the organization an admin API request
/// acts on (docs/ORGANIZATIONS.md); without it, the default organization.
pub const ORG_HEADER: &str = "X-Scimd-Organization";

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A console session; `session_id` is the cookie value.
    Session {
        /// The cookie value (to end the session on logout).
        session_id: String,
        /// The session's CSRF token.
        csrf_token: String,
        /// When the session ends.
        expires_at: String,
    },
    /// An admin API token.
    Token {
        /// The token's id.
        token_id: String,
    },
}

/// An authenticated administrator (an extractor: handlers that take it
/// answer 401 without credentials).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Recorded in the change log: the administrator (`Admin`, id and
    /// username) or the admin API token (`AdminToken`, id and name), with
    /// the request id and the client address.
    pub actor: Actor,
    /// The administrator's username (sessions) or the token's name.
    pub name: String,
    /// How the caller authenticated.
    pub credential: Credential,
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let secret = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequest for Caller {
    type Error = AdminError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, AdminError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let api = req.app_data::<web::Data<AdminApi>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let csrf = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let safe = is_safe(req.method());
        let org_slug = req
            .headers()
            .get(ORG_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
        let request = (
            crate::request_id(req),
            api.as_ref().map(|api| api.client_address(req)),
        );
        Box::pin(async move {
            let api = api.ok_or(AdminError::Internal)?;
            let (request_id, address) = request;
            let org = match org_slug {
                None => scim_store::OrgId::DEFAULT,
                Some(slug) => api
                    .store()
                    .organizations()
                    .await?
                    .by_slug(&slug)
                    .map(|o| o.id)
                    .ok_or_else(|| {
                        AdminError::NotFound(format!(
                            "{ORG_HEADER} names no organization ({slug:?}); GET /admin/api/v1/organizations lists them"
                        ))
                    })?,
            };
            let store = api.store().clone();
            let now = api.config().clock.now_text();
            if let Some(value) = authorization {
                let Some(secret) = bearer(&value).map(str::to_owned) else {
                    return Err(AdminError::Unauthorized(
                        "the Authorization header must be: Bearer <admin API token>".into(),
                    ));
                };
                let found = web::block(move || {
                    store.write(|c| scim_store::admin::authenticate_admin_token(c, &secret, &now))
                })
                .await??;
                let Some(token) = found else {
                    return Err(AdminError::Unauthorized(
                        "the bearer token is not a valid admin API token (SCIM tokens do not open the admin API)".into(),
                    ));
                };
                return Ok(Caller {
                    actor: Actor::new(
                        ActorKind::AdminToken,
                        Some(token.id.clone()),
                        Some(token.name.clone()),
                    )
                    .with_request(request_id, address)
                    .in_org(org),
                    name: token.name,
                    credential: Credential::Token { token_id: token.id },
                });
            }
            let Some(session_id) = cookie else {
                return Err(AdminError::Unauthorized(
                    "authentication required: sign in (POST /admin/api/v1/session) or send Authorization: Bearer <admin API token>".into(),
                ));
            };
            let sid = session_id.clone();
            let session =
                web::block(move || store.read(|c| scim_store::admin::find_session(c, &sid, &now)))
                    .await??
                    .ok_or_else(|| {
                        AdminError::Unauthorized(
                            "the session has expired or ended; sign in again".into(),
                        )
                    })?;
            // The cookie is sent by the browser on any request to this
            // origin; a header a cross-site page cannot set proves intent
            // (OWASP CSRF cheat sheet, synchronizer token pattern).
            if !safe {
                let ok = csrf.is_some_and(|given| {
                    bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes()))
                });
                if !ok {
                    return Err(AdminError::CsrfFailed(format!(
                        "state-changing requests made with the session cookie need the {CSRF_HEADER} header with the session's csrf_token (from POST or GET /admin/api/v1/session)"
                    )));
                }
            }
            Ok(Caller {
                actor: Actor::new(
                    ActorKind::Admin,
                    Some(session.admin.id.clone()),
                    Some(session.admin.username.clone()),
                )
                .with_request(request_id, address)
                .in_org(org),
                name: session.admin.username,
                credential: Credential::Session {
                    session_id,
                    csrf_token: session.csrf_token,
                    expires_at: session.expires_at,
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_methods() {
        assert_eq!(bearer("Bearer x"), Some("x"));
        assert_eq!(bearer("Basic x"), None);
        assert!(is_safe(&Method::GET));
        assert!(!is_safe(&Method::POST));
        assert!(!is_safe(&Method::DELETE));
    }
}
