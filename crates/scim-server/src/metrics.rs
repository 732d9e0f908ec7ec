//! Metrics of the SCIM API (`metrics` facade; scimd renders them at
//! `GET /metrics`, docs/OPERATIONS.md lists them).
//!
//! [`observe`] wraps the SCIM scope, outside the bearer check so that
//! refused requests count too. It classifies each request by resource and
//! operation from the path and method (string comparisons, no second walk
//! of the route table), and counts:
//! - `scimd_scim_requests_total{resource, operation, outcome, scim_type}`:
//!   `outcome` is `success` (< 400), `client_error` or `server_error`;
//!   `scim_type` is the RFC 7644 §3.12 `scimType` of the error, `none`
//!   on success and for errors without one (401, 403, 404, …);
//! - `scimd_scim_credential_requests_total{credential, outcome}`: per
//!   bearer credential (the secret token's id, or the OAuth grant's id;
//!   `none` when no valid token was presented), `success` or `failure`
//!   (status ≥ 400): the failure ratio an identity provider quarantines
//!   a provisioning job on.
//!
//! Every label value is static except the credential id; there are few
//! credentials.
//!
//! The handles of those series are kept per worker thread ([`cached`]):
//! the `metrics` macros build the key (a label vector) and look it up in
//! the recorder's registry at every call, which cost a SCIM `GET` about
//! 8% of its CPU time in all (docs/BENCHMARKS.md). The `metrics` crate
//! documents registering a handle once and reusing it for hot paths.
//!
//! It also records each request into the process's provisioning health
//! ([`crate::health::Health`]): its credential, route template, status,
//! `scimType` and error detail.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

use metrics::Counter;

use crate::error::ApiError;
use crate::ScimApi;

/// What a SCIM request addressed, by [`classify`]: also what scimd's HTTP
/// metrics label a SCIM request's route with, without matching the route
/// table again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimRoute {
    /// `User`, `Group`, `ServiceProviderConfig`, `Schema`,
    /// `ResourceType`, `all` (`/.search`), `Bulk` or `none` (no such
    /// endpoint).
    pub resource: &'static str,
    /// `list`, `get`, `create`, `replace`, `patch`, `delete`, `search`,
    /// `bulk`, or `other` (a method the endpoint does not support).
    pub operation: &'static str,
    /// The route template below the base path (`/Users/{id}`), or
    /// `unmatched`.
    pub template: &'static str,
}

const UNMATCHED: ScimRoute = ScimRoute {
    resource: "none",
    operation: "other",
    template: "unmatched",
};

/// Where a request to `path` goes in the SCIM API whose base path is
/// `base`: `Some((true, rest))` below an organization's base path
/// (`{base}/o/{org}`, docs/ORGANIZATIONS.md), `Some((false, rest))` below
/// `base` itself, `None` outside the SCIM API. `rest` is what [`classify`]
/// takes (`/Users/2819c223`, or empty).
pub fn below_base<'a>(path: &'a str, base: &str) -> Option<(bool, &'a str)> {
    let rest = path.strip_prefix(base)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    // `{base}/o/{org}` is its own scope, matched first (`ScimApi::configure`).
    if let Some(below) = rest.strip_prefix("/o/") {
        let (slug, rest) = below.split_at(below.find('/').unwrap_or(below.len()));
        if !slug.is_empty() {
            return Some((true, rest));
        }
    }
    Some((false, rest))
}

/// Classifies a request by its path below the SCIM base path (`rest`,
/// e.g. `/Users/2819c223`) and its method: the route table of
/// [`ScimApi::configure`], one trailing slash allowed.
pub fn classify(rest: &str, method: &Method) -> ScimRoute {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut parts = rest.strip_prefix('/').unwrap_or(rest).splitn(3, '/');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    if parts.next().is_some() {
        return UNMATCHED;
    }
    let route = |resource, template, operation| ScimRoute {
        resource,
        operation,
        template,
    };
    let read = |m: &Method, op| if *m == Method::GET { op } else { "other" };
    match (first, second) {
        ("Users" | "Groups", None) => {
            let (resource, template) = if first == "Users" {
                ("User", "/Users")
            } else {
                ("Group", "/Groups")
            };
            let op = match *method {
                Method::GET => "list",
                Method::POST => "create",
                _ => "other",
            };
            route(resource, template, op)
        }
        ("Users" | "Groups", Some(".search")) => {
            let (resource, template) = if first == "Users" {
                ("User", "/Users/.search")
            } else {
                ("Group", "/Groups/.search")
            };
            let op = if *method == Method::POST {
                "search"
            } else {
                "other"
            };
            route(resource, template, op)
        }
        ("Users" | "Groups", Some(_)) => {
            let (resource, template) = if first == "Users" {
                ("User", "/Users/{id}")
            } else {
                ("Group", "/Groups/{id}")
            };
            let op = match *method {
                Method::GET => "get",
                Method::PUT => "replace",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "other",
            };
            route(resource, template, op)
        }
        (".search", None) => {
            let op = if *method == Method::POST {
                "search"
            } else {
                "other"
            };
            route("all", "/.search", op)
        }
        ("Bulk", None) => {
            let op = if *method == Method::POST {
                "bulk"
            } else {
                "other"
            };
            route("Bulk", "/Bulk", op)
        }
        ("ServiceProviderConfig", None) => route(
            "ServiceProviderConfig",
            "/ServiceProviderConfig",
            read(method, "get"),
        ),
        ("Schemas", None) => route("Schema", "/Schemas", read(method, "list")),
        ("Schemas", Some(_)) => route("Schema", "/Schemas/{id}", read(method, "get")),
        ("ResourceTypes", None) => route("ResourceType", "/ResourceTypes", read(method, "list")),
        ("ResourceTypes", Some(_)) => {
            route("ResourceType", "/ResourceTypes/{name}", read(method, "get"))
        }
        _ => UNMATCHED,
    }
}

/// The `scimType` label of a failed response's error: the RFC 7644
/// §3.12 keyword, or `none`.
fn scim_type_of(err: Option<&Error>) -> &'static str {
    err.and_then(|e| e.as_error::<ApiError>())
        .and_then(ApiError::scim_type)
        .unwrap_or("none")
}

/// Where [`crate::auth::require_bearer`] leaves who sent the request for
/// [`observe`], which wraps it: a request that fails in an inner layer
/// comes back as an error without the request, so this cannot be read
/// from the request's extensions afterwards.
#[derive(Debug, Clone, Default)]
pub struct CredentialSlot(Rc<RefCell<Seen>>);

#[derive(Debug, Default)]
struct Seen {
    /// The authenticated token's id (the OAuth grant's for OAuth).
    token_id: Option<String>,
    /// The credential, for provisioning health.
    caller: Option<crate::health::Caller>,
}

impl CredentialSlot {
    /// Records who sent the request `req` (if [`observe`] wraps it):
    /// `token_id` once authenticated, and the credential (known also when
    /// a revoked or expired one was refused).
    pub fn fill(req: &ServiceRequest, token_id: Option<&str>, caller: crate::health::Caller) {
        if let Some(slot) = req.extensions().get::<CredentialSlot>() {
            let mut seen = slot.0.borrow_mut();
            seen.token_id = token_id.map(str::to_owned);
            seen.caller = Some(caller);
        }
    }
}

/// The detail of a failed response's error.
fn detail_of(err: Option<&Error>) -> Option<String> {
    err.and_then(|e| e.as_error::<ApiError>())
        .map(ApiError::detail)
}

/// Middleware (for `actix_web::middleware::from_fn`) counting every
/// request of the SCIM scope it wraps (see the module docs).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let api = req.app_data::<actix_web::web::Data<ScimApi>>().cloned();
    let method = req.method().clone();
    let route = api
        .as_ref()
        .and_then(|api| below_base(req.path(), &api.config().base_path))
        .map_or(UNMATCHED, |(_, rest)| classify(rest, &method));
    let slot = CredentialSlot::default();
    req.extensions_mut().insert(slot.clone());
    let result = next.call(req).await;
    let (status, scim_type, detail) = match &result {
        Ok(res) => {
            let status = res.status();
            let err = res.response().error();
            let detail = if status.as_u16() >= 400 {
                detail_of(err)
            } else {
                None
            };
            (status, scim_type_of(err), detail)
        }
        Err(e) => (
            e.as_response_error().status_code(),
            scim_type_of(Some(e)),
            detail_of(Some(e)),
        ),
    };
    let outcome = if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "success"
    };
    thread_local! {
        static REQUESTS: RefCell<HashMap<[&'static str; 4], Counter>> = RefCell::default();
        static CREDENTIALS: RefCell<HashMap<(String, bool), Counter>> = RefCell::default();
    }
    let key = [route.resource, route.operation, outcome, scim_type];
    cached(
        &REQUESTS,
        key,
        |[resource, operation, outcome, scim_type]| {
            metrics::counter!(
                "scimd_scim_requests_total",
                "resource" => resource,
                "operation" => operation,
                "outcome" => outcome,
                "scim_type" => scim_type
            )
        },
    )
    .increment(1);
    let seen = std::mem::take(&mut *slot.0.borrow_mut());
    if let Some(api) = api {
        api.config().health.record(
            seen.caller.as_ref(),
            &scim_store::health::Request {
                at: api.config().clock.now(),
                method: method.as_str(),
                route: route.template,
                operation: route.operation,
                status: status.as_u16(),
                scim_type: (scim_type != "none").then_some(scim_type),
                detail: detail
                    .as_deref()
                    .or_else(|| status.canonical_reason().filter(|_| status.as_u16() >= 400)),
                refusal: seen.caller.as_ref().and_then(|c| c.refusal),
            },
        );
    }
    let credential = seen.token_id.unwrap_or_else(|| "none".to_owned());
    let ok = status.as_u16() < 400;
    cached(&CREDENTIALS, (credential, ok), |(credential, ok)| {
        metrics::counter!(
            "scimd_scim_credential_requests_total",
            "credential" => credential,
            "outcome" => if ok { "success" } else { "failure" }
        )
    })
    .increment(1);
    result
}

/// The handle of the series `key` names, from this thread's `cache`, made
/// by `make` the first time (see the module docs). A handle stays valid
/// while the recorder lives: the process's.
pub fn cached<K, H>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<K, H>>>,
    key: K,
    make: impl FnOnce(K) -> H,
) -> H
where
    K: Eq + Hash + Clone,
    H: Clone,
{
    cache.with(|cache| {
        if let Some(handle) = cache.borrow().get(&key) {
            return handle.clone();
        }
        let handle = make(key.clone());
        cache.borrow_mut().insert(key, handle.clone());
        handle
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_organizations_requests_are_found_below_its_base_path() {
        let base = "/scim/v2";
        assert_eq!(
            below_base("/scim/v2/Users/a", base),
            Some((false, "/Users/a"))
        );
        assert_eq!(below_base("/scim/v2", base), Some((false, "")));
        assert_eq!(
            below_base("/scim/v2/o/acme/Users/a", base),
            Some((true, "/Users/a"))
        );
        assert_eq!(below_base("/scim/v2/o/acme", base), Some((true, "")));
        assert_eq!(below_base("/scim/v2/o/", base), Some((false, "/o/")));
        assert_eq!(below_base("/scim/v2x/Users", base), None);
        assert_eq!(below_base("/admin/api/v1", base), None);
        let (_, rest) = below_base("/scim/v2/o/acme/Groups/g", base).unwrap();
        assert_eq!(classify(rest, &Method::PATCH).template, "/Groups/{id}");
    }

    #[test]
    fn requests_are_classified_by_route_template() {
        let cases = [
            ("/Users", Method::GET, "User", "list", "/Users"),
            ("/Users/", Method::POST, "User", "create", "/Users"),
            ("/Users/abc", Method::GET, "User", "get", "/Users/{id}"),
            ("/Users/abc/", Method::PUT, "User", "replace", "/Users/{id}"),
            ("/Users/abc", Method::PATCH, "User", "patch", "/Users/{id}"),
            (
                "/Users/abc",
                Method::DELETE,
                "User",
                "delete",
                "/Users/{id}",
            ),
            ("/Users/abc", Method::POST, "User", "other", "/Users/{id}"),
            (
                "/Users/.search",
                Method::POST,
                "User",
                "search",
                "/Users/.search",
            ),
            (
                "/Groups/g1",
                Method::PATCH,
                "Group",
                "patch",
                "/Groups/{id}",
            ),
            ("/Groups", Method::GET, "Group", "list", "/Groups"),
            ("/.search", Method::POST, "all", "search", "/.search"),
            (
                "/ServiceProviderConfig",
                Method::GET,
                "ServiceProviderConfig",
                "get",
                "/ServiceProviderConfig",
            ),
            ("/Schemas", Method::GET, "Schema", "list", "/Schemas"),
            (
                "/Schemas/urn:x",
                Method::GET,
                "Schema",
                "get",
                "/Schemas/{id}",
            ),
            (
                "/ResourceTypes/User",
                Method::GET,
                "ResourceType",
                "get",
                "/ResourceTypes/{name}",
            ),
            ("/Bulk", Method::POST, "Bulk", "bulk", "/Bulk"),
            ("/Bulk/", Method::GET, "Bulk", "other", "/Bulk"),
            ("/Users/a/b", Method::GET, "none", "other", "unmatched"),
            ("/Nope", Method::GET, "none", "other", "unmatched"),
            ("", Method::GET, "none", "other", "unmatched"),
        ];
        for (path, method, resource, operation, template) in cases {
            let r = classify(path, &method);
            assert_eq!(
                r,
                ScimRoute {
                    resource,
                    operation,
                    template
                },
                "{method} {path}"
            );
        }
    }
}
