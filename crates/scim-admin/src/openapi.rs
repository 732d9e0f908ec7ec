//! The OpenAPI documents: the admin API's, whose paths utoipa-actix-web
//! collects from the routes themselves, and the SCIM API's (RFC 7644
//! endpoints, parameters, bodies and the error schema).
//!
//! Both carry request examples taken from real clients; the `openapi`
//! test of the `scimd` crate sends every one of them to the whole app on
//! both database backends and validates each answer against the documented
//! status and schema.
//!
//! Both are committed under `docs/openapi/`; the `openapi_snapshots_match`
//! test fails when they drift. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p scim-admin openapi`.

use actix_web::web;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::{api, ADMIN_OPENAPI_PATH, API_BASE};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimd admin API",
        description = "Administration of scimd: User Synchronization, SAML sign-in, run-time settings, SCIM and admin API tokens, event streams, sessions and first-run setup. Authenticate with the console session cookie (state-changing requests also need the X-CSRF-Token header) or an admin API token (Authorization: Bearer scimd_admin_…). SCIM tokens never open this API.",
        license(name = "Apache-2.0")
    ),
    paths(
        public::healthz, public::readyz, public::oauth_metadata, public::oauth_authorize,
        public::oauth_decide, public::oauth_token, public::oauth_revoke
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Health", description = "Liveness and readiness probes; no credentials"),
        (name = "OAuth endpoints", description = "The OAuth 2.0 authorization server that an identity provider's Authorize connection uses (RFC 6749, PKCE RFC 7636, revocation RFC 7009, metadata RFC 8414)"),
        (name = "User Synchronization", description = "The switch that lets the identity provider provision users"),
        (name = "SAML", description = "The identity provider's SAML sign-in (a prerequisite of synchronization)"),
        (name = "Settings", description = "Run-time settings, guarded by ETag/If-Match"),
        (name = "SCIM tokens", description = "Bearer tokens of the SCIM API"),
        (name = "Admin API tokens", description = "Bearer tokens of this API"),
        (name = "Session", description = "Console sign-in"),
        (name = "Administrators", description = "Administrator accounts: create, disable, delete, reset password, unlock; the last enabled one stays"),
        (name = "Setup", description = "First-run creation of the first administrator"),
        (name = "OAuth clients", description = "Clients of the OAuth 2.0 authorization server (an identity provider's Authorize connection)"),
        (name = "OAuth grants", description = "Approvals of OAuth clients: who, when, last use; revocable"),
        (name = "Activity", description = "The change log: what the identity provider provisioned and what administrators did, with who, when and from where; timelines of users and groups"),
        (name = "Organizations", description = "The customer directories this scimd serves, each at /scim/v2/o/{slug} with its own tokens, switch and data; every other endpoint acts on the organization the X-Scimd-Organization header names (default: the default organization); docs/ORGANIZATIONS.md"),
        (name = "Schema extensions", description = "Custom schema extensions of the User (urn:ietf:params:scim:schemas:extension:<Name>:2.0:User), defined at run time; docs/SCIM.md"),
        (name = "Provisioning", description = "The identity provider's SCIM traffic per credential and the quarantine early warning; docs/OPERATIONS.md"),
        (name = "Event streams", description = "SCIM events to the application as signed SETs (RFC 8417, RFC 9967), pushed (RFC 8935) or polled (RFC 8936); docs/EVENTS.md"),
    )
)]
struct AdminDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin API token (scimd_admin_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The console session, set by POST /admin/api/v1/session",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::CSRF_HEADER,
                "The session's csrf_token; required with the session cookie on POST, PUT and DELETE",
            ))),
        );
    }
}

/// Gives every admin API error response (`ErrorBody`) an example with its
/// own status and code, as scimd sends it; and documents 408 where a body
/// is read (the body deadline, `server.body_timeout_secs`).
struct ErrorExamples;

impl ErrorExamples {
    fn example(status: u16, path: &str, description: &str) -> Option<serde_json::Value> {
        let (error, message) = match status {
            401 if path.ends_with("/session") => ("unauthorized", "the session has expired or ended; sign in again"),
            401 => ("unauthorized", "authentication required: sign in (POST /admin/api/v1/session) or send Authorization: Bearer <admin API token>"),
            403 if description.contains("disabled") => ("forbidden", "the administrator \"bob\" is disabled; another administrator can enable it (console: Administrators, or scimd admin enable NAME)"),
            403 => ("csrf_failed", "state-changing requests made with the session cookie need the X-CSRF-Token header with the session's csrf_token (from POST or GET /admin/api/v1/session)"),
            404 => {
                let message = if path.contains("/oauth-clients/") {
                    "no OAuth client with client_id \"3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c\"".to_owned()
                } else if path.contains("/oauth-grants/") {
                    "no OAuth grant with id \"6c9e2b1a-3d4f-4a5b-8c7d-0e1f2a3b4c5d\"".to_owned()
                } else if path.contains("/event-streams/") {
                    "no event stream with id \"5b0e9f0c-6a7d-4f51-9c1e-2f3a4b5c6d7e\"".to_owned()
                } else if path.contains("/admins/") {
                    "no administrator with id \"0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d\"; GET /admin/api/v1/admins lists them".to_owned()
                } else if path.contains("/organizations/") {
                    "no organization \"globex\"".to_owned()
                } else if path.contains("/admin-tokens/") {
                    "no admin token with id \"0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d\"".to_owned()
                } else {
                    "no SCIM token with id \"0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d\"".to_owned()
                };
                return Some(serde_json::json!({"status": 404, "error": "not_found", "message": message}));
            }
            408 => ("request_timeout", "the request body did not arrive within 30 seconds; send the whole body without pauses"),
            409 if path.contains("/admins/") => ("conflict", "\"alice\" is the last enabled administrator: create or enable another administrator first, so that someone can still sign in"),
            409 => ("conflict", "setup is already complete: an administrator exists; sign in instead"),
            412 => ("precondition_failed", "the settings were changed by someone else since you read them (If-Match is stale); reload them and apply your change again"),
            422 => {
                return Some(serde_json::json!({
                    "status": 422,
                    "error": "validation_failed",
                    "message": "soft_delete_retention_days: must be between 1 and 3650 days",
                    "fields": [{"field": "soft_delete_retention_days", "message": "must be between 1 and 3650 days"}]
                }))
            }
            428 => ("precondition_required", "send If-Match with the ETag from GET /admin/api/v1/settings"),
            429 => ("too_many_requests", "too many failed sign-in attempts; try again in 300 seconds"),
            503 if description.contains("`busy`") => (
                "busy",
                "too many passwords are being checked at once; retry in 2 seconds",
            ),
            503 => ("unavailable", "the service is temporarily unavailable; retry later"),
            _ => return None,
        };
        Some(serde_json::json!({"status": status, "error": error, "message": message}))
    }
}

impl Modify for ErrorExamples {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, RefOr, Response};
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with(API_BASE) {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if op.request_body.is_some() {
                    let mut timeout = Response::new("The body did not arrive within server.body_timeout_secs of the request head; the connection is closed");
                    timeout.content.insert(
                        "application/json".into(),
                        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        )))),
                    );
                    op.responses
                        .responses
                        .entry("408".into())
                        .or_insert(RefOr::T(timeout));
                }
                for (code, response) in op.responses.responses.iter_mut() {
                    let (Ok(status), RefOr::T(response)) = (code.parse::<u16>(), response) else {
                        continue;
                    };
                    let description = response.description.clone();
                    for content in response.content.values_mut() {
                        if content.example.is_none() {
                            content.example = Self::example(status, path, &description);
                        }
                    }
                }
            }
        }
    }
}

/// The signing certificate in the `PUT /saml` example: a real self-signed
/// X.509 certificate, so that the example passes scimd's validation.
pub const EXAMPLE_CERTIFICATE_PEM: &str = include_str!("../tests/fixtures/idp-signing.pem");

/// The setup code in the `POST /setup` example (the real one is printed in
/// scimd's log at startup).
pub const EXAMPLE_SETUP_CODE: &str = "Hq2Zt7Lx0Vb9Nc4Mw6Kp1Rj8Sd3Fg5Ty2Ue7Io0PaWs";

/// The admin API's route scope (mounted by `AdminApi::configure`).
pub fn api_scope(
    max_body_bytes: usize,
) -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The JSON bodies (`json.rs`) are read as bytes under this limit.
    let json = web::PayloadConfig::new(max_body_bytes);
    utoipa_actix_web::scope(API_BASE)
        .app_data(json)
        .service(api::get_sync)
        .service(api::enable_sync)
        .service(api::disable_sync)
        .service(api::sync_events)
        .service(api::get_saml)
        .service(api::get_saml_service_provider)
        .service(api::put_saml)
        .service(api::get_settings)
        .service(api::put_settings)
        .service(api::list_scim_tokens)
        .service(api::create_scim_token)
        .service(api::revoke_scim_token)
        .service(api::list_admin_tokens)
        .service(api::create_admin_token)
        .service(api::revoke_admin_token)
        .service(api::login)
        .service(api::current_session)
        .service(api::logout)
        .service(api::setup_status)
        .service(api::complete_setup)
        .service(crate::admins::api::list_admins)
        .service(crate::admins::api::create_admin)
        .service(crate::admins::api::disable_admin)
        .service(crate::admins::api::enable_admin)
        .service(crate::admins::api::set_role)
        .service(crate::admins::api::delete_admin)
        .service(crate::admins::api::unlock_admin)
        .service(crate::admins::api::reset_password)
        .service(crate::admins::api::change_own_password)
        .service(crate::oauth::api::list_clients)
        .service(crate::oauth::api::create_client)
        .service(crate::oauth::api::rotate_client_secret)
        .service(crate::oauth::api::delete_client)
        .service(crate::oauth::api::list_grants)
        .service(crate::oauth::api::revoke_grant)
        .service(crate::activity::get_activity)
        .service(crate::provisioning::get_provisioning)
        .service(crate::streams::list_streams)
        .service(crate::streams::create_stream)
        .service(crate::streams::get_stream)
        .service(crate::streams::delete_stream)
        .service(crate::streams::pause_stream)
        .service(crate::streams::resume_stream)
        .service(crate::streams::replay_stream)
        .service(crate::streams::stream_jwks)
        .service(crate::streams::list_keys)
        .service(crate::streams::rotate_key)
        .service(crate::streams::remove_key)
        .service(crate::extensions::list_extensions)
        .service(crate::extensions::create_extension)
        .service(crate::extensions::update_extension)
        .service(crate::extensions::delete_extension)
        .service(crate::extensions::delete_extension_attribute)
        .service(crate::organizations::list_organizations)
        .service(crate::organizations::create_organization)
        .service(crate::organizations::update_organization)
        .service(crate::organizations::delete_organization)
        .default_service(web::to(api::not_found))
}

/// The admin API's OpenAPI document, with every path collected from the
/// routes of [`api_scope`].
pub fn admin_openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(AdminDoc::openapi())
        .service(api_scope(1024))
        .split_for_parts();
    // After the collection: the routes' paths are only there now.
    ErrorExamples.modify(&mut doc);
    AccessNotes.modify(&mut doc);
    doc
}

/// Says in each admin API operation who may use it, from the same table
/// the requests are checked by ([`crate::auth::access`]), and documents
/// the 403 (and 400) that organization administrators get.
struct AccessNotes;

impl AccessNotes {
    fn error(
        status: u16,
        description: &str,
        error: &str,
        message: &str,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{Content, Ref, RefOr, Response};
        let mut response = Response::new(description);
        let mut content = Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
        content.example =
            Some(serde_json::json!({"status": status, "error": error, "message": message}));
        response.content.insert("application/json".into(), content);
        RefOr::T(response)
    }
}

impl Modify for AccessNotes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::auth::{access, Access};
        use actix_web::http::Method;
        use utoipa::openapi::RefOr;
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with(API_BASE) {
                continue;
            }
            for (method, op) in [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ] {
                let Some(op) = op else { continue };
                // The public operations (setup, sign-in) name no caller.
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                let (note, forbidden) = match access(&method, path) {
                    Access::Instance => (
                        "**Instance administrators only**: an organization administrator (or an admin API token bound to an organization) gets 403.",
                        Some(("An organization administrator: this needs an instance administrator", format!("{method} {path} needs an instance administrator: an organization administrator manages only its organizations' synchronization, SAML, settings, tokens, OAuth clients, activity and provisioning (docs/ORGANIZATIONS.md)"))),
                    ),
                    Access::Organization => (
                        "Acts on the organization the `X-Scimd-Organization` header names (default: the default organization). An organization administrator acts only on the organizations granted to it: another one, or an unknown slug, is 403; without the header, its only organization, or 400 when it has several.",
                        Some(("An organization administrator naming an organization not granted to it", "you have no grant on the organization \"globex\": an organization administrator acts only on its organizations (acme); an instance administrator can grant more".to_owned())),
                    ),
                    Access::Anyone => ("Any administrator, within its role.", None),
                };
                let description = op.description.get_or_insert_with(String::new);
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(note);
                let Some((what, message)) = forbidden else {
                    continue;
                };
                let responses = &mut op.responses.responses;
                match responses.get_mut("403") {
                    Some(RefOr::T(r)) => r.description = format!("{}; or: {what}", r.description),
                    _ => {
                        responses
                            .insert("403".into(), Self::error(403, what, "forbidden", &message));
                    }
                }
                if access(&method, path) == Access::Organization {
                    responses.entry("400".into()).or_insert_with(|| {
                        Self::error(
                            400,
                            "An organization administrator of several organizations without the X-Scimd-Organization header",
                            "bad_request",
                            "you administer several organizations (acme, globex): name the one to act on in the X-Scimd-Organization header",
                        )
                    });
                }
            }
        }
    }
}

/// Where the admin document is served (for links).
pub fn admin_openapi_path() -> &'static str {
    ADMIN_OPENAPI_PATH
}

/// The SCIM API's OpenAPI document, for the API mounted at `base_path`.
pub fn scim_openapi(base_path: &str) -> utoipa::openapi::OpenApi {
    let mut doc = crate::openapi::scim::ScimDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(base_path)]);
    doc
}

/// [`scim_openapi`] with the custom schema extensions in force: the User
/// holds each under its URN, described by its definition.
pub fn scim_openapi_with(
    base_path: &str,
    schemas: &scim_core::extensions::UserSchemas,
) -> utoipa::openapi::OpenApi {
    let mut doc = scim_openapi(base_path);
    let custom: Vec<&scim_core::schema::Schema> = schemas.custom_schemas().collect();
    if !custom.is_empty() {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, schema) in scim_types::extension_components(&custom) {
            components.schemas.insert(name, schema);
        }
    }
    doc
}

pub mod public;
pub mod scim;
pub mod scim_types;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(name: &str, doc: &utoipa::openapi::OpenApi) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/openapi")
            .join(name);
        let fresh = format!("{}\n", doc.to_pretty_json().unwrap());
        if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/openapi/{name} is out of date with the code; regenerate it with `UPDATE_OPENAPI=1 cargo test -p scim-admin openapi` and commit it"
        );
    }

    #[test]
    fn openapi_snapshots_match() {
        check("admin.json", &admin_openapi());
        check("scim.json", &scim_openapi("/scim/v2"));
    }

    #[test]
    fn every_admin_route_is_documented_with_errors() {
        let doc = admin_openapi();
        let paths = &doc.paths.paths;
        for p in [
            "/admin/api/v1/sync",
            "/admin/api/v1/sync/enable",
            "/admin/api/v1/saml",
            "/admin/api/v1/saml/service-provider",
            "/admin/api/v1/settings",
            "/admin/api/v1/scim-tokens/{id}",
            "/admin/api/v1/admin-tokens",
            "/admin/api/v1/session",
            "/admin/api/v1/setup",
        ] {
            assert!(paths.contains_key(p), "{p} missing from the spec");
        }
        let json = serde_json::to_value(&doc).unwrap();
        for (path, item) in json["paths"].as_object().unwrap() {
            // The liveness probe and the OAuth metadata answer whatever
            // the database's state: they have no error to document.
            if path == "/healthz" || path == "/.well-known/oauth-authorization-server" {
                continue;
            }
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    // The consent decision's success is a redirect.
                    responses
                        .keys()
                        .any(|s| s.starts_with('2') || s.starts_with('3')),
                    "{method} {path}: no success response"
                );
                assert!(
                    responses
                        .keys()
                        .any(|s| s.starts_with('4') || s.starts_with('5')),
                    "{method} {path}: no error response"
                );
            }
        }
    }
}
