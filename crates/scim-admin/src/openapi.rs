//! The OpenAPI documents: the admin API's, whose paths utoipa-actix-web
//! collects from the routes themselves, and the SCIM API's (RFC 7644
//! endpoints, parameters, bodies and the error schema).
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
        description = "Administration of scimd: User Synchronization, SAML sign-in, run-time settings, SCIM and admin API tokens, sessions and first-run setup. Authenticate with the console session cookie (state-changing requests also need the X-CSRF-Token header) or an admin API token (Authorization: Bearer scimd_admin_…). SCIM tokens never open this API.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "User Synchronization", description = "The switch that lets the identity provider provision users"),
        (name = "SAML", description = "The identity provider's SAML sign-in (a prerequisite of synchronization)"),
        (name = "Settings", description = "Run-time settings, guarded by ETag/If-Match"),
        (name = "SCIM tokens", description = "Bearer tokens of the SCIM API"),
        (name = "Admin API tokens", description = "Bearer tokens of this API"),
        (name = "Session", description = "Console sign-in"),
        (name = "Setup", description = "First-run creation of the first administrator"),
        (name = "OAuth clients", description = "Clients of the OAuth 2.0 authorization server (an identity provider's Authorize connection)"),
        (name = "OAuth grants", description = "Approvals of OAuth clients: who, when, last use; revocable"),
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
        .service(crate::oauth::api::list_clients)
        .service(crate::oauth::api::create_client)
        .service(crate::oauth::api::rotate_client_secret)
        .service(crate::oauth::api::delete_client)
        .service(crate::oauth::api::list_grants)
        .service(crate::oauth::api::revoke_grant)
        .default_service(web::to(api::not_found))
}

/// The admin API's OpenAPI document, with every path collected from the
/// routes of [`api_scope`].
pub fn admin_openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(AdminDoc::openapi())
        .service(api_scope(1024))
        .split_for_parts();
    doc
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

pub mod scim;

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
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
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
