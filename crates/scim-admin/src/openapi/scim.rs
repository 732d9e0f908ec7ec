//! The SCIM API's OpenAPI description (RFC 7644 §3): the functions below
//! carry no behaviour — the SCIM handlers live in `scim-server`, which this
//! crate does not depend on — they only anchor the documented operations.
//! Every operation needs `Authorization: Bearer <SCIM token>`, and answers
//! 403 while User Synchronization is disabled.

use serde::Serialize;
use utoipa::{Modify, OpenApi, ToSchema};

/// An RFC 7644 §3.12 error document.
#[derive(Serialize, ToSchema)]
pub struct ScimErrorDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:Error"]`.
    pub schemas: Vec<String>,
    /// The HTTP status, as a string.
    #[schema(example = "400")]
    pub status: String,
    /// `invalidFilter`, `invalidPath`, `invalidValue`, `invalidSyntax`,
    /// `noTarget`, `mutability`, `uniqueness`, `tooMany` (400 and 409 only).
    #[serde(rename = "scimType")]
    pub scim_type: Option<String>,
    /// What went wrong and what to fix.
    pub detail: String,
}

/// A User (RFC 7643 §4.1, with the enterprise extension §4.3); every
/// attribute of the core schema is accepted.
#[derive(Serialize, ToSchema)]
pub struct ScimUserDoc {
    /// Schema URNs.
    pub schemas: Vec<String>,
    /// Assigned by scimd.
    pub id: Option<String>,
    /// Required; unique case-insensitively.
    #[serde(rename = "userName")]
    pub user_name: String,
    /// The identity provider's id.
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    /// Whether the user may sign in (false = suspended).
    pub active: Option<bool>,
    /// Display name.
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
    /// `givenName`, `familyName`, `formatted`, …
    pub name: Option<serde_json::Value>,
    /// `[{"value", "type", "primary"}]`.
    pub emails: Option<Vec<serde_json::Value>>,
    /// Read-only: direct group memberships.
    pub groups: Option<Vec<serde_json::Value>>,
    /// `resourceType`, `created`, `lastModified`, `location`, `version`.
    pub meta: Option<serde_json::Value>,
}

/// A Group (RFC 7643 §4.2).
#[derive(Serialize, ToSchema)]
pub struct ScimGroupDoc {
    /// Schema URNs.
    pub schemas: Vec<String>,
    /// Assigned by scimd.
    pub id: Option<String>,
    /// Required; unique case-insensitively.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// The identity provider's id.
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    /// `[{"value", "type", "display", "$ref"}]`.
    pub members: Option<Vec<serde_json::Value>>,
    /// Resource metadata.
    pub meta: Option<serde_json::Value>,
}

/// A ListResponse (RFC 7644 §3.4.2).
#[derive(Serialize, ToSchema)]
pub struct ScimListResponseDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:ListResponse"]`.
    pub schemas: Vec<String>,
    /// Matches in total.
    #[serde(rename = "totalResults")]
    pub total_results: i64,
    /// 1-based index of the first result.
    #[serde(rename = "startIndex")]
    pub start_index: i64,
    /// Results in this page.
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: i64,
    /// The resources.
    #[serde(rename = "Resources")]
    pub resources: Vec<serde_json::Value>,
}

/// A PatchOp request (RFC 7644 §3.5.2).
#[derive(Serialize, ToSchema)]
pub struct ScimPatchDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`.
    pub schemas: Vec<String>,
    /// `[{"op": "add"|"replace"|"remove", "path", "value"}]`.
    #[serde(rename = "Operations")]
    pub operations: Vec<serde_json::Value>,
}

/// A SearchRequest (RFC 7644 §3.4.3).
#[derive(Serialize, ToSchema)]
pub struct ScimSearchDoc {
    /// `["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]`.
    pub schemas: Vec<String>,
    /// A filter (RFC 7644 §3.4.2.2).
    pub filter: Option<String>,
    /// Sort attribute.
    #[serde(rename = "sortBy")]
    pub sort_by: Option<String>,
    /// `ascending` or `descending`.
    #[serde(rename = "sortOrder")]
    pub sort_order: Option<String>,
    /// 1-based start.
    #[serde(rename = "startIndex")]
    pub start_index: Option<i64>,
    /// Page size.
    pub count: Option<i64>,
    /// Attributes to return.
    pub attributes: Option<Vec<String>>,
    /// Attributes to omit.
    #[serde(rename = "excludedAttributes")]
    pub excluded_attributes: Option<Vec<String>>,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "scim_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A SCIM token from `scimd token create` or the admin API",
                    ))
                    .build(),
            ),
        );
    }
}

/// The SCIM API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimd SCIM 2.0 API",
        description = "RFC 7643/7644 Users and Groups for identity providers (Entra ID, Okta). Every operation needs a SCIM bearer token; while User Synchronization is disabled every operation answers 403. Errors are RFC 7644 §3.12 documents (application/scim+json).",
        license(name = "Apache-2.0")
    ),
    paths(
        service_provider_config, schemas, schema, resource_types, resource_type, search_root,
        list_users, create_user, search_users, get_user, replace_user, patch_user, delete_user,
        list_groups, create_group, search_groups, get_group, replace_group, patch_group, delete_group
    ),
    modifiers(&Bearer),
    security(("scim_token" = [])),
    tags(
        (name = "Discovery", description = "RFC 7644 §4"),
        (name = "Users", description = "RFC 7643 §4.1"),
        (name = "Groups", description = "RFC 7643 §4.2"),
    )
)]
pub struct ScimDoc;

/// `GET /ServiceProviderConfig` (RFC 7643 §5).
#[utoipa::path(get, path = "/ServiceProviderConfig", tag = "Discovery",
    responses(
        (status = 200, description = "What scimd supports", content_type = "application/scim+json", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn service_provider_config() {}

/// `GET /Schemas` (RFC 7643 §7).
#[utoipa::path(get, path = "/Schemas", tag = "Discovery",
    responses(
        (status = 200, description = "The schemas", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn schemas() {}

/// `GET /Schemas/{id}`.
#[utoipa::path(get, path = "/Schemas/{id}", tag = "Discovery",
    params(("id" = String, Path, description = "Schema URN")),
    responses(
        (status = 200, description = "The schema", content_type = "application/scim+json", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "Unknown schema", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn schema() {}

/// `GET /ResourceTypes` (RFC 7643 §6).
#[utoipa::path(get, path = "/ResourceTypes", tag = "Discovery",
    responses(
        (status = 200, description = "User and Group", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn resource_types() {}

/// `GET /ResourceTypes/{name}`.
#[utoipa::path(get, path = "/ResourceTypes/{name}", tag = "Discovery",
    params(("name" = String, Path, description = "`User` or `Group`")),
    responses(
        (status = 200, description = "The resource type", content_type = "application/scim+json", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "Unknown resource type", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn resource_type() {}

/// `POST /.search` across Users and Groups (RFC 7644 §3.4.3).
#[utoipa::path(post, path = "/.search", tag = "Discovery",
    request_body(content = ScimSearchDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "Users then Groups", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 400, description = "invalidFilter, invalidSyntax", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn search_root() {}

/// `GET /Users` (RFC 7644 §3.4.2).
#[utoipa::path(get, path = "/Users", tag = "Users",
    params(
        ("filter" = Option<String>, Query, description = "e.g. userName eq \"a@example.com\""),
        ("startIndex" = Option<i64>, Query, description = "1-based"),
        ("count" = Option<i64>, Query, description = "Page size; default and cap are the run-time settings default_page_size and max_page_size (see /ServiceProviderConfig)"),
        ("sortBy" = Option<String>, Query, description = "Attribute"),
        ("sortOrder" = Option<String>, Query, description = "ascending or descending"),
        ("attributes" = Option<String>, Query, description = "Comma-separated"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated"),
    ),
    responses(
        (status = 200, description = "A page of users", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 400, description = "invalidFilter", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn list_users() {}

/// `POST /Users` (RFC 7644 §3.3).
#[utoipa::path(post, path = "/Users", tag = "Users",
    request_body(content = ScimUserDoc, content_type = "application/scim+json"),
    responses(
        (status = 201, description = "Created; Location and ETag headers", content_type = "application/scim+json", body = ScimUserDoc),
        (status = 400, description = "invalidValue, invalidSyntax", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 409, description = "uniqueness: userName taken", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn create_user() {}

/// `POST /Users/.search` (RFC 7644 §3.4.3).
#[utoipa::path(post, path = "/Users/.search", tag = "Users",
    request_body(content = ScimSearchDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "A page of users", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 400, description = "invalidFilter", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn search_users() {}

/// `GET /Users/{id}` (RFC 7644 §3.4.1).
#[utoipa::path(get, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id"), ("If-None-Match" = Option<String>, Header, description = "ETag")),
    responses(
        (status = 200, description = "The user", content_type = "application/scim+json", body = ScimUserDoc),
        (status = 304, description = "Not modified"),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such user", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn get_user() {}

/// `PUT /Users/{id}` (RFC 7644 §3.5.1).
#[utoipa::path(put, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id"), ("If-Match" = Option<String>, Header, description = "ETag")),
    request_body(content = ScimUserDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "Replaced", content_type = "application/scim+json", body = ScimUserDoc),
        (status = 400, description = "invalidValue, mutability", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such user", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 409, description = "uniqueness", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 412, description = "If-Match is stale", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn replace_user() {}

/// `PATCH /Users/{id}` (RFC 7644 §3.5.2).
#[utoipa::path(patch, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id"), ("If-Match" = Option<String>, Header, description = "ETag")),
    request_body(content = ScimPatchDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "Patched", content_type = "application/scim+json", body = ScimUserDoc),
        (status = 400, description = "invalidPath, noTarget, invalidValue, mutability, invalidSyntax", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such user", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 412, description = "If-Match is stale", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn patch_user() {}

/// `DELETE /Users/{id}` (RFC 7644 §3.6).
///
/// What happens follows the run-time setting `deprovisioning` (admin API
/// `/admin/api/v1/settings`, read on every request). Either way the user
/// leaves every group (those groups' versions change) and from then on is
/// answered 404 by GET, PUT, PATCH and DELETE, and is absent from lists,
/// filters, `totalResults`, `/.search` and group members. `hard` (the
/// default) removes the user at once. `soft` marks it deleted instead: it
/// is set `active: false`, its version is bumped, every other attribute is
/// kept in the database, and its userName is free again (the identity
/// provider may create the same userName anew); it is purged for good
/// `soft_delete_retention_days` days later. `If-Match` applies as on PUT.
#[utoipa::path(delete, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted (hard) or marked deleted (soft), per the deprovisioning setting"),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such user (or already deleted)", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 412, description = "If-Match is stale", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn delete_user() {}

/// `GET /Groups`.
#[utoipa::path(get, path = "/Groups", tag = "Groups",
    params(
        ("filter" = Option<String>, Query, description = "e.g. displayName eq \"Sales\""),
        ("startIndex" = Option<i64>, Query, description = "1-based"),
        ("count" = Option<i64>, Query, description = "Page size; default and cap are the run-time settings default_page_size and max_page_size (see /ServiceProviderConfig)"),
        ("excludedAttributes" = Option<String>, Query, description = "e.g. members"),
    ),
    responses(
        (status = 200, description = "A page of groups", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 400, description = "invalidFilter", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn list_groups() {}

/// `POST /Groups`.
#[utoipa::path(post, path = "/Groups", tag = "Groups",
    request_body(content = ScimGroupDoc, content_type = "application/scim+json"),
    responses(
        (status = 201, description = "Created", content_type = "application/scim+json", body = ScimGroupDoc),
        (status = 400, description = "invalidValue", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 409, description = "uniqueness: displayName taken", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn create_group() {}

/// `POST /Groups/.search`.
#[utoipa::path(post, path = "/Groups/.search", tag = "Groups",
    request_body(content = ScimSearchDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "A page of groups", content_type = "application/scim+json", body = ScimListResponseDoc),
        (status = 400, description = "invalidFilter", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn search_groups() {}

/// `GET /Groups/{id}`.
#[utoipa::path(get, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", content_type = "application/scim+json", body = ScimGroupDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such group", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn get_group() {}

/// `PUT /Groups/{id}`.
#[utoipa::path(put, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id")),
    request_body(content = ScimGroupDoc, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "Replaced", content_type = "application/scim+json", body = ScimGroupDoc),
        (status = 400, description = "invalidValue", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such group", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn replace_group() {}

/// `PATCH /Groups/{id}`: 204 by default.
#[utoipa::path(patch, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id")),
    request_body(content = ScimPatchDoc, content_type = "application/scim+json"),
    responses(
        (status = 204, description = "Patched"),
        (status = 200, description = "Patched, with attributes/excludedAttributes given", content_type = "application/scim+json", body = ScimGroupDoc),
        (status = 400, description = "invalidPath, noTarget, invalidValue, mutability", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such group", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn patch_group() {}

/// `DELETE /Groups/{id}`.
#[utoipa::path(delete, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 403, description = "User Synchronization is disabled", content_type = "application/scim+json", body = ScimErrorDoc),
        (status = 404, description = "No such group", content_type = "application/scim+json", body = ScimErrorDoc),
    ))]
pub fn delete_group() {}
