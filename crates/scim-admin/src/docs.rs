//! The OpenAPI documents (`/admin/api/openapi.json`,
//! `<scim base>/openapi.json`) and Swagger UI (`/docs/`), served from the
//! binary (utoipa-swagger-ui's vendored files: no internet) to
//! administrators only: a console session or an admin API token. Only
//! `/healthz` and `/readyz`, the sign-in and setup pages and the console's
//! stylesheet and script are open to anyone.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::{Config, Url};

use crate::auth::Caller;
use crate::error::AdminError;
use crate::{console, openapi, ADMIN_OPENAPI_PATH};

/// What the documentation routes serve, built once at startup.
struct Docs {
    admin_json: web::Bytes,
    scim_json: web::Bytes,
    config: Arc<Config<'static>>,
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
        config: Arc::new(
            Config::new([
                Url::new("admin API", ADMIN_OPENAPI_PATH),
                Url::from(scim_spec_path.clone()),
            ])
            // Never contact validator.swagger.io: the page works offline.
            .validator_url("none"),
        ),
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

async fn scim_spec(docs: web::Data<Docs>, _caller: Caller) -> HttpResponse {
    json(&docs.scim_json)
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
    match utoipa_swagger_ui::serve(&tail, docs.config.clone()) {
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
