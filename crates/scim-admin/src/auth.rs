//! Authentication of the admin API: a console session (cookie, with a CSRF
//! token required in a header on state-changing requests), or an admin
//! API token (`Authorization: Bearer scimd_admin_…`). SCIM tokens are
//! looked up in another table and never authenticate here.
//!
//! Authorization happens here too, in one place: [`access`] says, per
//! route, whether an organization administrator may use it, and the
//! [`Caller`] extractor resolves the organization a request acts on from
//! the caller's [`AdminScope`] and the `X-Scimd-Organization` header
//! (docs/ORGANIZATIONS.md, "Administrators").

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use scim_store::admin::roles::AdminScope;
use scim_store::changes::{Actor, ActorKind};
use scim_store::OrgId;

use crate::error::AdminError;
use crate::{AdminApi, API_BASE};

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
    /// What it may act on: an administrator's role and organizations; an
    /// admin API token bound to an organization acts as an organization
    /// administrator of that one.
    pub scope: AdminScope,
}

impl Caller {
    /// The organization the admin API tokens this caller creates, lists
    /// and revokes are bound to: the organization acted on, for an
    /// organization administrator; `None` (every organization, every
    /// token) for an instance administrator.
    pub fn token_org(&self) -> Option<OrgId> {
        (!self.scope.is_instance()).then_some(self.actor.org)
    }
}

/// What a route lets an organization administrator do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Instance administrators only: the organizations themselves, the
    /// administrators, the schema extensions (shared by every
    /// organization), the event streams (which carry every organization's
    /// changes). An organization administrator gets 403.
    Instance,
    /// Acts on one organization: the one `X-Scimd-Organization` names,
    /// which an organization administrator must have been granted (else
    /// 403); without the header, an organization administrator's only
    /// organization (several: 400).
    Organization,
    /// Any administrator, within its scope: its session and password, the
    /// documentation, the organizations it may act on, the schema
    /// extensions in force.
    Anyone,
}

/// The admin API routes (below `/admin/api/v1`) an organization
/// administrator may use on the organizations granted to it.
const ORGANIZATION_ROUTES: &[&str] = &[
    "/sync",
    "/sync/enable",
    "/sync/disable",
    "/sync/events",
    "/saml",
    "/saml/service-provider",
    "/settings",
    "/scim-tokens",
    "/scim-tokens/{id}",
    "/admin-tokens",
    "/admin-tokens/{id}",
    "/oauth-clients",
    "/oauth-clients/{client_id}",
    "/oauth-clients/{client_id}/rotate-secret",
    "/oauth-grants",
    "/oauth-grants/{id}",
    "/activity",
    "/provisioning",
];

/// The access of the route `pattern` (as routed, e.g.
/// `/admin/api/v1/admins/{id}`) with `method`: the one table of who may
/// do what. A route not listed is for instance administrators, so a new
/// route is closed to organization administrators until it is listed.
/// Routes outside the admin API (the OpenAPI documents, Swagger UI) are
/// for any administrator.
pub fn access(method: &Method, pattern: &str) -> Access {
    let Some(route) = pattern.strip_prefix(API_BASE) else {
        return Access::Anyone;
    };
    let read = is_safe(method);
    match route {
        "/session" | "/session/password" => Access::Anyone,
        "/organizations" | "/schema-extensions" if read => Access::Anyone,
        r if ORGANIZATION_ROUTES.contains(&r) => Access::Organization,
        _ => Access::Instance,
    }
}

/// The organization a request acts on, for a caller with `scope`, given
/// the `X-Scimd-Organization` header's value (`header`), among `orgs`.
/// Organization administrators get 403 for an organization they were not
/// granted and for an unknown slug alike, so the answer does not reveal
/// which organizations exist.
pub fn resolve_org(
    scope: &AdminScope,
    access: Access,
    header: Option<&str>,
    orgs: &scim_store::engine::organizations::Organizations,
) -> Result<OrgId, AdminError> {
    if scope.is_instance() {
        return match header {
            None => Ok(OrgId::DEFAULT),
            Some(slug) => orgs.by_slug(slug).map(|o| o.id).ok_or_else(|| {
                AdminError::NotFound(format!(
                    "{ORG_HEADER} names no organization ({slug:?}); GET /admin/api/v1/organizations lists them"
                ))
            }),
        };
    }
    // A grant (or a token's binding) outlives nothing: an organization
    // deleted meanwhile is no longer one to act on.
    let live: Vec<OrgId> = scope
        .orgs
        .iter()
        .copied()
        .filter(|id| orgs.by_id(*id).is_some())
        .collect();
    let granted: Vec<&str> = live
        .iter()
        .filter_map(|id| orgs.by_id(*id).map(|o| o.slug.as_str()))
        .collect();
    match header {
        Some(slug) => orgs
            .by_slug(slug)
            .filter(|o| scope.may_act_on(o.id))
            .map(|o| o.id)
            .ok_or_else(|| {
                AdminError::Forbidden(format!(
                    "you have no grant on the organization {slug:?}: an organization administrator acts only on its organizations ({}); an instance administrator can grant more",
                    granted.join(", ")
                ))
            }),
        None => match (live.as_slice(), access) {
            // Its session and password still work (recorded in the
            // default organization's log).
            ([], Access::Anyone) => Ok(OrgId::DEFAULT),
            ([], _) => Err(AdminError::Forbidden(
                "you administer no organization: an instance administrator can grant you one"
                    .into(),
            )),
            ([only], _) => Ok(*only),
            ([first, ..], Access::Anyone | Access::Instance) => Ok(*first),
            (_, Access::Organization) => Err(AdminError::BadRequest(format!(
                "you administer several organizations ({}): name the one to act on in the {ORG_HEADER} header",
                granted.join(", ")
            ))),
        },
    }
}

/// 403 unless `scope` may use a route of `access`.
fn check_access(
    scope: &AdminScope,
    access: Access,
    method: &Method,
    pattern: &str,
) -> Result<(), AdminError> {
    if access == Access::Instance && !scope.is_instance() {
        return Err(AdminError::Forbidden(format!(
            "{method} {pattern} needs an instance administrator: an organization administrator manages only its organizations' synchronization, SAML, settings, tokens, OAuth clients, activity and provisioning (docs/ORGANIZATIONS.md)"
        )));
    }
    Ok(())
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
        let method = req.method().clone();
        let pattern = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
        let route_access = access(&method, &pattern);
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
            let orgs = api.store().organizations().await?;
            let authorize = |scope: &AdminScope| {
                check_access(scope, route_access, &method, &pattern)?;
                resolve_org(scope, route_access, org_slug.as_deref(), &orgs)
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
                let scope = match token.org_id {
                    Some(org) => AdminScope::organization(vec![OrgId(org)]),
                    None => AdminScope::instance(),
                };
                let org = authorize(&scope)?;
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
                    scope,
                });
            }
            let Some(session_id) = cookie else {
                return Err(AdminError::Unauthorized(
                    "authentication required: sign in (POST /admin/api/v1/session) or send Authorization: Bearer <admin API token>".into(),
                ));
            };
            let sid = session_id.clone();
            let (session, scope) = web::block(move || {
                store.read(|c| {
                    let Some(session) = scim_store::admin::find_session(c, &sid, &now)? else {
                        return Ok(None);
                    };
                    let scope = scim_store::admin::roles::admin_scope(c, &session.admin.id)?;
                    Ok(Some((session, scope)))
                })
            })
            .await??
            .ok_or_else(|| {
                AdminError::Unauthorized("the session has expired or ended; sign in again".into())
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
            let org = authorize(&scope)?;
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
                scope,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bearer_and_methods() {
        assert_eq!(bearer("Bearer x"), Some("x"));
        assert_eq!(bearer("Basic x"), None);
        assert!(is_safe(&Method::GET));
        assert!(!is_safe(&Method::POST));
        assert!(!is_safe(&Method::DELETE));
    }

    #[test]
    fn routes_not_listed_are_for_instance_administrators() {
        let v1 = |p: &str| format!("{API_BASE}{p}");
        for (method, path, expected) in [
            (Method::GET, v1("/sync"), Access::Organization),
            (Method::POST, v1("/scim-tokens"), Access::Organization),
            (
                Method::DELETE,
                v1("/admin-tokens/{id}"),
                Access::Organization,
            ),
            (Method::GET, v1("/organizations"), Access::Anyone),
            (Method::POST, v1("/organizations"), Access::Instance),
            (Method::PATCH, v1("/organizations/{slug}"), Access::Instance),
            (Method::GET, v1("/schema-extensions"), Access::Anyone),
            (Method::POST, v1("/schema-extensions"), Access::Instance),
            (Method::GET, v1("/admins"), Access::Instance),
            (Method::PUT, v1("/admins/{id}/role"), Access::Instance),
            (Method::GET, v1("/event-streams"), Access::Instance),
            (Method::POST, v1("/session/password"), Access::Anyone),
            (Method::GET, v1("/some-new-route"), Access::Instance),
            (
                Method::GET,
                "/admin/api/openapi.json".to_owned(),
                Access::Anyone,
            ),
        ] {
            assert_eq!(access(&method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn an_organization_administrator_without_a_live_organization_acts_on_none() {
        let none = scim_store::engine::organizations::Organizations::default();
        // Its grant names an organization deleted meanwhile.
        let gone = AdminScope::organization(vec![OrgId(7)]);
        for access in [Access::Organization, Access::Instance] {
            let err = resolve_org(&gone, access, None, &none).unwrap_err();
            assert!(matches!(err, AdminError::Forbidden(_)), "{err:?}");
        }
        assert_eq!(
            resolve_org(&gone, Access::Anyone, None, &none).unwrap(),
            OrgId::DEFAULT
        );
        let err = resolve_org(&gone, Access::Organization, Some("x"), &none).unwrap_err();
        assert!(matches!(err, AdminError::Forbidden(_)), "{err:?}");
        // An instance administrator: the default organization, or 404.
        let all = AdminScope::instance();
        assert_eq!(
            resolve_org(&all, Access::Organization, None, &none).unwrap(),
            OrgId::DEFAULT
        );
        let err = resolve_org(&all, Access::Organization, Some("x"), &none).unwrap_err();
        assert!(matches!(err, AdminError::NotFound(_)), "{err:?}");
    }
}
