//! The OAuth parts of the admin API: client registration, secret rotation
//! and deletion, and grants (list, revoke). Documented with utoipa; the
//! paths are collected from the route macros.

use actix_web::{delete, get, post, web, HttpResponse};

use super::model::{ClientView, CreateClientRequest, CreatedClient, GrantView};
use super::service;
use crate::auth::Caller;
use crate::error::{AdminError, ErrorBody};
use crate::AdminApi;

async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

/// The registered OAuth clients
///
/// Every client with its redirect URIs and scopes, oldest first; never
/// the secrets.
#[utoipa::path(
    tag = "OAuth clients",
    responses(
        (status = 200, description = "Every client, oldest first", body = [ClientView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/oauth-clients")]
pub async fn list_clients(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<ClientView>>, AdminError> {
    let store = api.store().clone();
    let org = caller.actor.org;
    Ok(web::Json(
        blocking(move || service::list_clients(&store, org)).await?,
    ))
}

/// Registers an OAuth client
///
/// For an identity provider's Authorize connection (e.g. Entra ID with the
/// redirect URI `https://portal.azure.com/TokenAuthorize`). The client
/// secret is in this response only.
#[utoipa::path(
    tag = "OAuth clients",
    request_body(content = CreateClientRequest,
        example = json!({"name": "Microsoft Entra ID", "redirect_uris": ["https://portal.azure.com/TokenAuthorize"], "scopes": ["scim"]})),
    responses(
        (status = 201, description = "Registered", body = CreatedClient),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid name, redirect URIs or scopes; `fields` names each", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/oauth-clients")]
pub async fn create_client(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<crate::json::Json<CreateClientRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let req = body
        .map(|crate::json::Json(req)| req)
        .map_err(crate::json::body_error)?;
    let created = blocking(move || service::create_client(&store, &caller.actor, &req)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Rotates a client's secret
///
/// The new secret is in this response only. The old secret stops working
/// at once; tokens already issued keep working.
#[utoipa::path(
    tag = "OAuth clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The new secret", body = CreatedClient),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/oauth-clients/{client_id}/rotate-secret")]
pub async fn rotate_client_secret(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<CreatedClient>, AdminError> {
    let store = api.store().clone();
    let id = path.into_inner();
    Ok(web::Json(
        blocking(move || service::rotate_client_secret(&store, &caller.actor, &id)).await?,
    ))
}

/// Deletes a client
///
/// With its grants and tokens: they stop working (replicas that cached an
/// access token accept it for at most `auth.token_cache_ttl_secs` more).
#[utoipa::path(
    tag = "OAuth clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/oauth-clients/{client_id}")]
pub async fn delete_client(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let id = path.into_inner();
    blocking(move || service::delete_client(&store, &caller.actor, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The OAuth grants
///
/// Which client, which administrator approved it, when, last use, and
/// revocation; newest first.
#[utoipa::path(
    tag = "OAuth grants",
    responses(
        (status = 200, description = "Every grant, newest first", body = [GrantView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/oauth-grants")]
pub async fn list_grants(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<GrantView>>, AdminError> {
    let (store, org) = (api.store().clone(), caller.actor.org);
    Ok(web::Json(
        blocking(move || service::list_grants(&store, org)).await?,
    ))
}

/// Revokes a grant
///
/// Its refresh tokens stop working at once, its access tokens within
/// `auth.token_cache_ttl_secs` on every replica.
#[utoipa::path(
    tag = "OAuth grants",
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such grant", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/oauth-grants/{id}")]
pub async fn revoke_grant(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let store = api.store().clone();
    let id = path.into_inner();
    blocking(move || service::revoke_grant(&store, &caller.actor, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
