//! Discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`,
//! `/Schemas` and `/ResourceTypes`, describing exactly what scimd
//! implements and stores.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::schema::{
    resource_type_json, schema_json, ResourceType, Schema, GROUP, LIST_RESPONSE_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::{scim_json, ScimApi};

/// The resource types served, the User with `user`'s extensions (the
/// built-in ones and the custom ones, `ScimApi::user_type`).
pub fn resource_types_served(user: &'static ResourceType) -> [&'static ResourceType; 2] {
    [user, &GROUP]
}

/// Every schema served: each resource type's core schema and extensions.
fn schemas_served(user: &'static ResourceType) -> Vec<&'static Schema> {
    let mut out = Vec::new();
    for rt in resource_types_served(user) {
        out.push(rt.schema);
        out.extend(rt.extensions.iter().map(|e| e.schema));
    }
    out
}

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `GET /ServiceProviderConfig` (RFC 7643 §5).
pub async fn service_provider_config(
    api: web::Data<ScimApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The page sizes are the run-time settings, read with the sync gate:
    // a change shows here on the next request.
    let settings = api.require_sync(crate::request_org(&req)?).await?;
    let base = api.location_base(&req);
    let bulk = api.config().bulk;
    let body = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": { "supported": true },
        // RFC 7644 §3.7, configured by `scim.bulk_max_operations` and
        // `scim.bulk_max_payload_bytes`.
        "bulk": {
            "supported": true,
            "maxOperations": bulk.max_operations,
            "maxPayloadSize": bulk.max_payload_bytes,
        },
        "filter": { "supported": true, "maxResults": settings.max_page_size },
        "changePassword": { "supported": true },
        "sort": { "supported": true },
        "etag": { "supported": true },
        // RFC 9865 §4. Index paging stays the default, so that clients
        // written for RFC 7644 see no change (RFC 9865 §2.4).
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": settings.default_page_size,
            "maxPageSize": settings.max_page_size,
            "cursorTimeout": crate::cursor::CURSOR_TIMEOUT_SECS,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token minted by `scimd token create`, sent as Authorization: Bearer <token>.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    });
    Ok(scim_json(StatusCode::OK, &body))
}

/// `GET /Schemas`.
pub async fn schemas(api: web::Data<ScimApi>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    api.require_sync(crate::request_org(&req)?).await?;
    let user = api.user_type().await?;
    let base = api.location_base(&req);
    let items = schemas_served(user)
        .into_iter()
        .map(|s| schema_json(s, &base))
        .collect();
    Ok(scim_json(StatusCode::OK, &list_response(items)))
}

/// `GET /Schemas/{urn}`.
pub async fn schema(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    api.require_sync(crate::request_org(&req)?).await?;
    let id = path.into_inner().id;
    let user = api.user_type().await?;
    let base = api.location_base(&req);
    let found = schemas_served(user)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| ApiError::NotFound(format!("no schema {id:?}")))?;
    Ok(scim_json(StatusCode::OK, &schema_json(found, &base)))
}

/// `GET /ResourceTypes`.
pub async fn resource_types(
    api: web::Data<ScimApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    api.require_sync(crate::request_org(&req)?).await?;
    let user = api.user_type().await?;
    let base = api.location_base(&req);
    let items = resource_types_served(user)
        .into_iter()
        .map(|rt| resource_type_json(rt, &base))
        .collect();
    Ok(scim_json(StatusCode::OK, &list_response(items)))
}

/// `GET /ResourceTypes/{name}`.
pub async fn resource_type(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    api.require_sync(crate::request_org(&req)?).await?;
    let name = path.into_inner().id;
    let user = api.user_type().await?;
    let base = api.location_base(&req);
    let found = resource_types_served(user)
        .into_iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| ApiError::NotFound(format!("no resource type {name:?}")))?;
    Ok(scim_json(StatusCode::OK, &resource_type_json(found, &base)))
}
