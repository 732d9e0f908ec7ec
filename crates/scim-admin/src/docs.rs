//! The OpenAPI documents (`/admin/api/openapi.json`,
//! `<scim base>/openapi.json`) and Swagger UI (`/docs/`), served from the
//! binary (utoipa-swagger-ui's vendored files: no internet) to
//! administrators only: a console session or an admin API token. Only
//! `/healthz` and `/readyz`, the sign-in and setup pages and the console's
//! stylesheet and script are open to anyone.
//!
//! The spec picker names the two documents "Admin API" and "SCIM 2.0 API".
//! "Try it out" works with the console session: Swagger UI's
//! `requestInterceptor` ([`CSRF_INTERCEPTOR`]) adds the session's CSRF
//! token to every POST, PUT, PATCH and DELETE, as the admin API requires of
//! cookie-authenticated changes.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::{Config, Url};

use crate::auth::Caller;
use crate::error::AdminError;
use crate::{console, openapi, ADMIN_OPENAPI_PATH};

/// The names of the two documents in Swagger UI's spec picker.
pub const ADMIN_DOC_NAME: &str = "Admin API";
/// See [`ADMIN_DOC_NAME`].
pub const SCIM_DOC_NAME: &str = "SCIM 2.0 API";

/// Swagger UI's `requestInterceptor` (added to its generated
/// `swagger-initializer.js`): a state-changing request gets the
/// `X-CSRF-Token` of the console session, read from
/// `GET /admin/api/v1/session` just before it is sent (the token changes
/// with each sign-in). Without a session (an admin API token pasted in
/// "Authorize") the request goes as it is.
pub const CSRF_INTERCEPTOR: &str = r#"
// scimd: "Try it out" with the console session sends its CSRF token.
async function scimdRequestInterceptor(req) {
  const method = (req.method || "GET").toUpperCase();
  if (!["POST", "PUT", "PATCH", "DELETE"].includes(method)) return req;
  if (new URL(req.url, window.location.href).origin !== window.location.origin) return req;
  try {
    const res = await fetch("/admin/api/v1/session", { credentials: "same-origin" });
    if (res.ok) {
      const session = await res.json();
      req.headers["X-CSRF-Token"] = session.csrf_token;
    }
  } catch (e) {
    // No session: the request goes without the header.
  }
  return req;
}
"#;

/// What the documentation routes serve, built once at startup.
struct Docs {
    admin_json: web::Bytes,
    /// The SCIM document without custom schema extensions.
    scim_json: web::Bytes,
    scim_base_path: String,
    scim_spec_path: String,
}

impl Docs {
    /// Swagger UI's configuration: both documents, named, and no call to
    /// validator.swagger.io (the page works offline).
    fn config(&self) -> Config<'_> {
        Config::new([
            Url::new(ADMIN_DOC_NAME, ADMIN_OPENAPI_PATH),
            Url::new(SCIM_DOC_NAME, &self.scim_spec_path),
        ])
        .validator_url("none")
    }
}

fn to_json(doc: &utoipa::openapi::OpenApi) -> web::Bytes {
    match doc.to_pretty_json() {
        Ok(s) => web::Bytes::from(s),
        Err(e) => {
            tracing::error!(error = %e, "an OpenAPI document did not serialize");
            web::Bytes::from_static(b"{}")
        }
    }
}

/// Mounts Swagger UI and the two documents.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, scim_base_path: &str) {
    let scim_spec_path = format!("{scim_base_path}/openapi.json");
    let docs = Docs {
        admin_json: to_json(&openapi::admin_openapi()),
        scim_json: to_json(&openapi::scim_openapi(scim_base_path)),
        scim_base_path: scim_base_path.to_owned(),
        scim_spec_path: scim_spec_path.clone(),
    };
    cfg.app_data(web::Data::new(docs))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            }),
        )
        .route("/docs/{tail:.*}", web::get().to(swagger_file))
        .route(ADMIN_OPENAPI_PATH, web::get().to(admin_spec))
        .route(&scim_spec_path, web::get().to(scim_spec));
}

fn json(bytes: &web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes.clone())
}

async fn admin_spec(docs: web::Data<Docs>, _caller: Caller) -> HttpResponse {
    json(&docs.admin_json)
}

/// The SCIM document: built at startup, or, while custom schema
/// extensions are defined, for this request (administrators only ask for
/// it now and then), so that the User shows the extensions in force.
async fn scim_spec(
    docs: web::Data<Docs>,
    api: web::Data<crate::AdminApi>,
    _caller: Caller,
) -> Result<HttpResponse, AdminError> {
    let schemas = api.store().user_schemas().await?;
    if schemas.defs.is_empty() {
        return Ok(json(&docs.scim_json));
    }
    Ok(json(&to_json(&openapi::scim_openapi_with(
        &docs.scim_base_path,
        &schemas,
    ))))
}

/// A Swagger UI file; signed-out visitors go to the console's sign-in,
/// which brings them back.
async fn swagger_file(
    docs: web::Data<Docs>,
    tail: web::Path<String>,
    caller: Option<Caller>,
) -> Result<HttpResponse, AdminError> {
    if caller.is_none() {
        return Ok(console::see_other("/admin/login?next=%2Fdocs%2F"));
    }
    match utoipa_swagger_ui::serve(&tail, Arc::new(docs.config())) {
        Ok(Some(file)) if tail.as_str() == "swagger-initializer.js" => {
            let script = String::from_utf8_lossy(&file.bytes).replace(
                "SwaggerUIBundle({",
                "SwaggerUIBundle({\n  requestInterceptor: scimdRequestInterceptor,",
            );
            Ok(HttpResponse::Ok()
                .content_type(file.content_type)
                .body(format!("{CSRF_INTERCEPTOR}\n{script}")))
        }
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .body(file.bytes.to_vec())),
        Ok(None) => Err(AdminError::NotFound(format!(
            "no Swagger UI file {:?}; open /docs/",
            tail.as_str()
        ))),
        Err(e) => {
            tracing::error!(error = %e, "Swagger UI could not be served");
            Err(AdminError::Internal)
        }
    }
}
