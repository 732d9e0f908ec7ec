//! The SCIM API's OpenAPI description (RFC 7644 §3): the functions below
//! carry no behaviour — the SCIM handlers live in `scim-server`, which this
//! crate does not depend on — they only anchor the documented operations.
//! Every operation needs `Authorization: Bearer <SCIM token>`, and answers
//! 403 while User Synchronization is disabled.
//!
//! The request examples are those the identity providers send (Entra ID in
//! both PATCH dialects, Okta), with the ids of [`EXAMPLE_USER_ID`],
//! [`EXAMPLE_MEMBER_ID`] and [`EXAMPLE_GROUP_ID`]: a test sends each of
//! them to scimd, with those ids replaced by real ones, and checks the
//! answer against the documented status and schema. The error responses
//! that every operation shares (401, 403, 429, 503; with a body also 400,
//! 408, 413 and 415) and every error example are added by [`ScimResponses`],
//! from one table of what scimd really sends.

use serde_json::{json, Value};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, Header, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::scim_types::{
    self, Group, GroupListResponse, ListResponse, PatchOp, ResourceListResponse, SearchRequest,
    User, UserListResponse,
};

/// The user id in the examples (RFC 7643 §8.1's).
pub const EXAMPLE_USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
/// A second user id in the examples: the member a group PATCH adds.
pub const EXAMPLE_MEMBER_ID: &str = "902c246b-6245-4190-8e05-00816be7344a";
/// The group id in the examples (RFC 7643 §8.4's).
pub const EXAMPLE_GROUP_ID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

const SCIM_JSON: &str = "application/scim+json";

/// Entra ID's POST /Users (its default attribute mappings).
fn entra_create() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
        "active": true,
        "addresses": [{
            "primary": true,
            "type": "work",
            "country": "JP",
            "locality": "Tokyo",
            "postalCode": "100-0001",
            "streetAddress": "1 Chiyoda"
        }],
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "User", "givenName": "Test", "formatted": "Test User"},
        "title": "Engineer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Platform",
            "organization": "Contoso",
            "employeeNumber": "1001"
        }
    })
}

/// Okta's POST /Users.
fn okta_create() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "okta.user@example.com",
        "name": {"givenName": "Okta", "familyName": "User"},
        "emails": [{"primary": true, "value": "okta.user@example.com", "type": "work"}],
        "displayName": "Okta User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// Entra ID's default PATCH dialect: capitalised `op`, one operation per
/// attribute with a path, booleans as the strings "True"/"False", the
/// manager as a bare id.
fn entra_patch_default() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Updated Name"},
            {"op": "Add", "path": "title", "value": "Principal"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "moved@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Changed"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": EXAMPLE_MEMBER_ID},
            {"op": "Replace", "path": "active", "value": "False"}
        ]
    })
}

/// Entra ID with the `aadOptscim062020` feature flag: RFC 7644 clean
/// (lower-case `op`, real booleans), several attributes in one path-less
/// replace whose keys are dotted, URN-qualified or value paths.
fn entra_patch_062020() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
            "op": "replace",
            "value": {
                "displayName": "New Display",
                "name.givenName": "Given",
                "name.familyName": "Family",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
                "emails[type eq \"work\"].value": "given.family@contoso.com",
                "active": false
            }
        }]
    })
}

fn okta_deactivate() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    })
}

/// Okta's PUT /Users/{id} on a profile change.
fn okta_replace() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": EXAMPLE_USER_ID,
        "userName": "okta.renamed@example.com",
        "name": {"givenName": "Okta", "familyName": "Renamed"},
        "emails": [{"primary": true, "value": "okta.renamed@example.com", "type": "work"}],
        "active": true
    })
}

fn group_create() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Sales",
        "members": [{"value": EXAMPLE_USER_ID}]
    })
}

fn group_replace() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Sales EMEA",
        "members": [{"value": EXAMPLE_USER_ID}, {"value": EXAMPLE_MEMBER_ID}]
    })
}

/// Entra ID adds a member.
fn group_add_member() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": EXAMPLE_MEMBER_ID}]}]
    })
}

/// Entra ID removes a member (a value list; Okta and RFC 7644 §3.5.2.2
/// use the `members[value eq "…"]` path instead, also accepted).
fn group_remove_member() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"value": EXAMPLE_USER_ID}]}]
    })
}

fn group_remove_member_filter() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{EXAMPLE_USER_ID}\"]")}]
    })
}

fn search_users_example() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com\" or externalId eq \"00ujl29u0le5T6Aj10h7\"",
        "startIndex": 1,
        "count": 10
    })
}

fn search_groups_example() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "displayName eq \"Sales\"",
        "excludedAttributes": ["members"]
    })
}

fn search_root_example() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "externalId pr",
        "count": 50
    })
}

/// A `/Bulk` request (RFC 7644 §3.7): a group naming a user created later
/// in the same request by its bulkId, a PATCH and a DELETE.
fn bulk_example() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "guides",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                      "displayName": "Tour Guides",
                      "members": [{"value": "bulkId:alice"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "alice",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                      "userName": "alice.bulk@contoso.com", "active": true}},
            {"method": "PATCH", "path": format!("/Users/{EXAMPLE_USER_ID}"),
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "active", "value": false}]}},
            {"method": "DELETE", "path": format!("/Groups/{EXAMPLE_GROUP_ID}")}
        ]
    })
}

/// The RFC 7644 §3.12 error scimd sends with `status` on `path`, as the
/// example of that response; `description` names the `scimType` first.
fn error_example(status: u16, description: &str, path: &str) -> Value {
    let resource = if path.starts_with("/Groups") {
        ("Group", EXAMPLE_GROUP_ID)
    } else {
        ("User", EXAMPLE_USER_ID)
    };
    let scim_type = scim_types::SCIM_TYPES
        .iter()
        .find(|t| description.starts_with(**t))
        .copied();
    let detail = match (status, scim_type) {
        (400, Some("invalidFilter")) => {
            "unknown operator \"eqq\" at position 9; expected one of eq, ne, co, sw, ew, pr, gt, ge, lt, le".to_owned()
        }
        (400, Some("invalidPath")) => {
            "name.givnName: name has no sub-attribute \"givnName\"".to_owned()
        }
        (400, Some("noTarget")) => {
            "Operations[0]: remove needs a path (RFC 7644 §3.5.2.2)".to_owned()
        }
        (400, Some("mutability")) => "id is readOnly".to_owned(),
        (400, Some("invalidValue")) if path == "/Bulk" => {
            "bulkId \"alice\" is used by more than one operation; each bulkId must be unique within the request".to_owned()
        }
        (400, Some("invalidValue")) => {
            "userName is required".to_owned()
        }
        (400, _) => "the request body is not valid JSON: expected `,` or `}` at line 1 column 27".to_owned(),
        (401, _) => "authentication required: send Authorization: Bearer <token>".to_owned(),
        (403, _) => scim_store::sync::SYNC_DISABLED_DETAIL.to_owned(),
        (404, _) if path.starts_with("/Schemas") => {
            "no schema \"urn:ietf:params:scim:schemas:core:2.0:Usr\"".to_owned()
        }
        (404, _) if path.starts_with("/ResourceTypes") => "no resource type \"Users\"".to_owned(),
        (404, _) => format!("{} {:?} not found", resource.0, resource.1),
        (408, _) => "the request body did not arrive within 30 seconds; send the whole body without pauses".to_owned(),
        (409, _) if resource.0 == "Group" => {
            "displayName \"Sales\" is already taken (displayName is unique, case-insensitively)".to_owned()
        }
        (409, _) => "userName \"okta.user@example.com\" is already taken (userName is unique, case-insensitively)".to_owned(),
        (412, _) => "the resource was modified: its version no longer matches If-Match".to_owned(),
        (413, _) if path == "/Bulk" => "the bulk request has 1001 operations, more than maxOperations (1000); split it into smaller requests".to_owned(),
        (413, _) => "the request body exceeds the limit of 1048576 bytes".to_owned(),
        (415, _) => "Content-Type \"text/plain\" is not supported; send application/scim+json or application/json".to_owned(),
        (429, _) => "too many requests with this bearer token; slow down and retry in 1 second".to_owned(),
        (503, _) => "the service is temporarily unavailable; retry later".to_owned(),
        _ => "the request failed".to_owned(),
    };
    let mut body = json!({
        "schemas": [scim_core::schema::ERROR_SCHEMA],
        "status": status.to_string(),
        "detail": detail,
    });
    let scim_type = match (status, scim_type) {
        (400, Some(t)) => Some(t),
        (400, None) => Some("invalidSyntax"),
        (409, _) => Some("uniqueness"),
        _ => None,
    };
    if let (Some(t), Some(obj)) = (scim_type, body.as_object_mut()) {
        obj.insert("scimType".into(), t.into());
    }
    body
}

/// The responses every operation shares, as (status, description, only
/// with a request body).
const SHARED_ERRORS: &[(u16, &str, bool)] = &[
    (400, "invalidSyntax: the body is not JSON, or invalidValue: an attribute's value is wrong", true),
    (401, "Missing, invalid, expired or revoked bearer token (`WWW-Authenticate: Bearer`)", false),
    (403, "User Synchronization is disabled: an administrator must enable it", false),
    (408, "The body did not arrive within server.body_timeout_secs of the request head; the connection is closed", true),
    (413, "The body exceeds server.max_body_bytes", true),
    (415, "Content-Type is neither application/scim+json nor application/json", true),
    (429, "The credential (SCIM token or OAuth grant) is over its request budget, scim.rate_limit_per_second with bursts of scim.rate_limit_burst (per scimd process; off by default): retry after `Retry-After` seconds", false),
    (503, "The database is unreachable or saturated; retry after `Retry-After` seconds", false),
];

/// Adds the shared error responses, gives every error its example, and
/// registers the component schemas.
struct ScimResponses;

impl ScimResponses {
    fn operation(path: &str, op: &mut Operation) {
        let has_body = op.request_body.is_some();
        for (status, description, with_body) in SHARED_ERRORS {
            if *with_body && !has_body {
                continue;
            }
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| RefOr::T(Response::new(*description)));
        }
        for (code, response) in op.responses.responses.iter_mut() {
            let (Ok(status), RefOr::T(response)) = (code.parse::<u16>(), response) else {
                continue;
            };
            if status < 400 {
                continue;
            }
            let mut content = Content::new(Some(RefOr::Ref(
                utoipa::openapi::Ref::from_schema_name("Error"),
            )));
            content.example = Some(error_example(status, &response.description, path));
            response.content.clear();
            response.content.insert(SCIM_JSON.to_owned(), content);
            let string = || {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
            };
            if status == 401 {
                let mut h = Header::new(string());
                h.description = Some("`Bearer realm=\"scimd\"`, with `error=\"invalid_token\"` when a token was sent".into());
                response.headers.insert("WWW-Authenticate".into(), h);
            }
            if status == 429 || status == 503 {
                let mut h = Header::new(string());
                h.description = Some("Seconds to wait before retrying".into());
                response.headers.insert("Retry-After".into(), h);
            }
        }
    }
}

impl Modify for ScimResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in scim_types::components() {
            components.schemas.insert(name, schema);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
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
                Self::operation(path, op);
            }
        }
    }
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
        description = "RFC 7643/7644 Users and Groups for identity providers (Entra ID, Okta). Every operation needs a SCIM bearer token (`Authorization: Bearer scimd_…`, from the admin console, the admin API or `scimd token create`, or an OAuth access token from Authorize). While User Synchronization is disabled every operation answers 403. Errors are RFC 7644 §3.12 documents (application/scim+json) whose `status` is a string. When scim.rate_limit_per_second is set, each credential (SCIM token or OAuth grant) has a request budget per scimd process, checked after authentication (401 first) and before the synchronization gate (403): over it, the answer is 429 with `Retry-After` (whole seconds). A 503 with `Retry-After` means the database is unreachable or saturated.",
        license(name = "Apache-2.0")
    ),
    paths(
        service_provider_config, schemas, schema, resource_types, resource_type, search_root,
        list_users, create_user, search_users, get_user, replace_user, patch_user, delete_user,
        list_groups, create_group, search_groups, get_group, replace_group, patch_group, delete_group,
        bulk
    ),
    modifiers(&Bearer, &ScimResponses),
    security(("scim_token" = [])),
    tags(
        (name = "Discovery", description = "What scimd supports (RFC 7644 §4)"),
        (name = "Users", description = "User accounts (RFC 7643 §4.1, with the Enterprise User extension §4.3)"),
        (name = "Groups", description = "Groups and their members (RFC 7643 §4.2)"),
        (name = "Bulk", description = "Many writes in one request (RFC 7644 §3.7)"),
    )
)]
pub struct ScimDoc;

/// The service provider configuration (RFC 7643 §5)
///
/// What scimd supports: PATCH, bulk (with its limits, scim.bulk_max_operations
/// and scim.bulk_max_payload_bytes), filtering (with the page sizes of the
/// run-time settings), sorting, ETags, password change.
#[utoipa::path(get, path = "/ServiceProviderConfig", tag = "Discovery",
    responses(
        (status = 200, description = "What scimd supports", content_type = "application/scim+json", body = serde_json::Value),
    ))]
pub fn service_provider_config() {}

/// The schemas (RFC 7643 §7)
///
/// User, the Enterprise User extension and Group, with every attribute's
/// type, mutability and returned characteristic.
#[utoipa::path(get, path = "/Schemas", tag = "Discovery",
    responses(
        (status = 200, description = "The schemas", content_type = "application/scim+json", body = ListResponse),
    ))]
pub fn schemas() {}

/// One schema
///
/// The schema with this URN.
#[utoipa::path(get, path = "/Schemas/{id}", tag = "Discovery",
    params(("id" = String, Path, description = "Schema URN", example = "urn:ietf:params:scim:schemas:core:2.0:User")),
    responses(
        (status = 200, description = "The schema", content_type = "application/scim+json", body = serde_json::Value),
        (status = 404, description = "Unknown schema"),
    ))]
pub fn schema() {}

/// The resource types (RFC 7643 §6)
///
/// User (with the optional Enterprise User extension) and Group.
#[utoipa::path(get, path = "/ResourceTypes", tag = "Discovery",
    responses(
        (status = 200, description = "User and Group", content_type = "application/scim+json", body = ListResponse),
    ))]
pub fn resource_types() {}

/// One resource type
///
/// `User` or `Group`.
#[utoipa::path(get, path = "/ResourceTypes/{name}", tag = "Discovery",
    params(("name" = String, Path, description = "`User` or `Group`", example = "User")),
    responses(
        (status = 200, description = "The resource type", content_type = "application/scim+json", body = serde_json::Value),
        (status = 404, description = "Unknown resource type"),
    ))]
pub fn resource_type() {}

/// Searches Users and Groups together (RFC 7644 §3.4.3)
///
/// The filter applies to both resource types; the results list the Users,
/// then the Groups.
#[utoipa::path(post, path = "/.search", tag = "Discovery",
    request_body(content = SearchRequest, content_type = "application/scim+json",
        examples(("Every resource with an externalId" = (value = json!(search_root_example()))))),
    responses(
        (status = 200, description = "Users then Groups", content_type = "application/scim+json", body = ResourceListResponse),
        (status = 400, description = "invalidFilter: the filter does not parse or names an unknown attribute"),
    ))]
pub fn search_root() {}

/// Lists or filters Users (RFC 7644 §3.4.2)
///
/// Entra ID's "Test Connection" and its matching step are this request
/// with `filter=userName eq "…"`; Okta's probe is `startIndex=1&count=2`.
/// Attribute names and `eq` on userName are case-insensitive.
#[utoipa::path(get, path = "/Users", tag = "Users",
    params(
        ("filter" = Option<String>, Query, description = "A filter (RFC 7644 §3.4.2.2)", example = "userName eq \"Test_User_dfeef4c5-5681-4387-b016-bdf221e82081\""),
        ("startIndex" = Option<i64>, Query, description = "1-based index of the first result", example = 1),
        ("cursor" = Option<String>, Query, description = "Cursor pagination (RFC 9865): empty for the first page, then the nextCursor or previousCursor of the previous response, with the same filter, sortBy and sortOrder; not combined with startIndex"),
        ("count" = Option<i64>, Query, description = "Page size; default and cap are the run-time settings default_page_size and max_page_size (see /ServiceProviderConfig)", example = 100),
        ("sortBy" = Option<String>, Query, description = "The attribute to sort by, e.g. userName"),
        ("sortOrder" = Option<String>, Query, description = "ascending or descending"),
        ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return, e.g. userName,active"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
    ),
    responses(
        (status = 200, description = "A page of users", content_type = "application/scim+json", body = UserListResponse),
        (status = 400, description = "invalidFilter: the filter does not parse or names an unknown attribute; invalidCursor, expiredCursor or invalidCount: a cursor (RFC 9865) that was not issued for this query, is older than cursorTimeout, or a count below 1 with a cursor"),
    ))]
pub fn list_users() {}

/// Creates a User (RFC 7644 §3.3)
///
/// Answers 201 with the user as stored, its `Location` and `ETag`.
/// `userName` is required and unique case-insensitively. Unknown and
/// readOnly attributes (`id`, `meta`, `groups`) are ignored (RFC 7644
/// §3.5.1).
#[utoipa::path(post, path = "/Users", tag = "Users",
    request_body(content = User, content_type = "application/scim+json",
        examples(
            ("Entra ID" = (summary = "Entra ID's create, with the Enterprise User extension", value = json!(entra_create()))),
            ("Okta" = (summary = "Okta's create, with a password", value = json!(okta_create()))),
        )),
    responses(
        (status = 201, description = "Created", content_type = "application/scim+json", body = User,
         headers(("Location" = String, description = "The user's URL"), ("ETag" = String, description = "The version, e.g. W/\"1\""))),
        (status = 400, description = "invalidValue: userName missing or an attribute of the wrong type; invalidSyntax: not a User"),
        (status = 409, description = "uniqueness: the userName is taken"),
    ))]
pub fn create_user() {}

/// Searches Users with POST (RFC 7644 §3.4.3)
///
/// The same query as GET /Users, in the body (for filters too long for a
/// URL).
#[utoipa::path(post, path = "/Users/.search", tag = "Users",
    request_body(content = SearchRequest, content_type = "application/scim+json",
        examples(("By userName or externalId" = (value = json!(search_users_example()))))),
    responses(
        (status = 200, description = "A page of users", content_type = "application/scim+json", body = UserListResponse),
        (status = 400, description = "invalidFilter: the filter does not parse or names an unknown attribute"),
    ))]
pub fn search_users() {}

/// Reads a User (RFC 7644 §3.4.1)
///
/// With `If-None-Match` set to the current ETag, answers 304.
#[utoipa::path(get, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id", example = "2819c223-7f76-453a-919d-413861904646"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier read")),
    responses(
        (status = 200, description = "The user", content_type = "application/scim+json", body = User,
         headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such user"),
    ))]
pub fn get_user() {}

/// Replaces a User (RFC 7644 §3.5.1)
///
/// Attributes not sent are removed; `id` and `meta` are ignored.
#[utoipa::path(put, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id", example = "2819c223-7f76-453a-919d-413861904646"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the user changed since")),
    request_body(content = User, content_type = "application/scim+json",
        examples(("Okta" = (summary = "Okta's profile update", value = json!(okta_replace()))))),
    responses(
        (status = 200, description = "Replaced", content_type = "application/scim+json", body = User),
        (status = 400, description = "invalidValue: userName missing or an attribute of the wrong type; mutability: a readOnly attribute changed"),
        (status = 404, description = "No such user"),
        (status = 409, description = "uniqueness: the userName is taken by another user"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn replace_user() {}

/// Modifies a User (RFC 7644 §3.5.2)
///
/// Applies the operations in order, all or nothing, and answers the user.
/// Both of Entra ID's dialects are accepted: the default one
/// (capitalised `op`, booleans as "True"/"False", the manager as a bare
/// id) and `aadOptscim062020` (RFC 7644 clean, several attributes in one
/// path-less replace with dotted, URN-qualified or value-path keys).
#[utoipa::path(patch, path = "/Users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id", example = "2819c223-7f76-453a-919d-413861904646"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the user changed since")),
    request_body(content = PatchOp, content_type = "application/scim+json",
        examples(
            ("Entra ID (default)" = (summary = "Entra ID's default dialect: update and disable", value = json!(entra_patch_default()))),
            ("Entra ID (aadOptscim062020)" = (summary = "Entra ID with the aadOptscim062020 flag", value = json!(entra_patch_062020()))),
            ("Okta" = (summary = "Okta's deactivation", value = json!(okta_deactivate()))),
        )),
    responses(
        (status = 200, description = "Patched", content_type = "application/scim+json", body = User),
        (status = 400, description = "invalidPath: the path names no attribute; noTarget, invalidValue, mutability, invalidSyntax"),
        (status = 404, description = "No such user"),
        (status = 409, description = "uniqueness: the new userName is taken"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn patch_user() {}

/// Deletes a User (RFC 7644 §3.6)
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
    params(("id" = String, Path, description = "The user's id", example = "2819c223-7f76-453a-919d-413861904646"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the user changed since")),
    responses(
        (status = 204, description = "Deleted (hard) or marked deleted (soft), per the deprovisioning setting"),
        (status = 404, description = "No such user (or already deleted)"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn delete_user() {}

/// Lists or filters Groups (RFC 7644 §3.4.2)
///
/// Entra ID matches a group with `filter=displayName eq "…"` and
/// `excludedAttributes=members`.
#[utoipa::path(get, path = "/Groups", tag = "Groups",
    params(
        ("filter" = Option<String>, Query, description = "A filter (RFC 7644 §3.4.2.2)", example = "displayName eq \"Sales\""),
        ("startIndex" = Option<i64>, Query, description = "1-based index of the first result"),
        ("cursor" = Option<String>, Query, description = "Cursor pagination (RFC 9865): empty for the first page, then the nextCursor or previousCursor of the previous response, with the same filter, sortBy and sortOrder; not combined with startIndex"),
        ("count" = Option<i64>, Query, description = "Page size; default and cap are the run-time settings default_page_size and max_page_size (see /ServiceProviderConfig)"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out", example = "members"),
    ),
    responses(
        (status = 200, description = "A page of groups", content_type = "application/scim+json", body = GroupListResponse),
        (status = 400, description = "invalidFilter: the filter does not parse or names an unknown attribute; invalidCursor, expiredCursor or invalidCount: a cursor (RFC 9865) that was not issued for this query, is older than cursorTimeout, or a count below 1 with a cursor"),
    ))]
pub fn list_groups() {}

/// Creates a Group (RFC 7644 §3.3)
///
/// `displayName` is required and unique case-insensitively; members are
/// Users or Groups by id.
#[utoipa::path(post, path = "/Groups", tag = "Groups",
    request_body(content = Group, content_type = "application/scim+json",
        examples(("With a member" = (value = json!(group_create()))))),
    responses(
        (status = 201, description = "Created", content_type = "application/scim+json", body = Group,
         headers(("Location" = String, description = "The group's URL"), ("ETag" = String, description = "The version"))),
        (status = 400, description = "invalidValue: displayName missing or a member that does not exist"),
        (status = 409, description = "uniqueness: the displayName is taken"),
    ))]
pub fn create_group() {}

/// Searches Groups with POST (RFC 7644 §3.4.3)
///
/// The same query as GET /Groups, in the body.
#[utoipa::path(post, path = "/Groups/.search", tag = "Groups",
    request_body(content = SearchRequest, content_type = "application/scim+json",
        examples(("By displayName" = (value = json!(search_groups_example()))))),
    responses(
        (status = 200, description = "A page of groups", content_type = "application/scim+json", body = GroupListResponse),
        (status = 400, description = "invalidFilter: the filter does not parse or names an unknown attribute"),
    ))]
pub fn search_groups() {}

/// Reads a Group (RFC 7644 §3.4.1)
///
/// With its members, unless `excludedAttributes=members`.
#[utoipa::path(get, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id", example = "e9e30dba-f08f-4109-8486-d5c6a331660a"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier read")),
    responses(
        (status = 200, description = "The group", content_type = "application/scim+json", body = Group,
         headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such group"),
    ))]
pub fn get_group() {}

/// Replaces a Group (RFC 7644 §3.5.1)
///
/// The members become exactly those sent.
#[utoipa::path(put, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id", example = "e9e30dba-f08f-4109-8486-d5c6a331660a"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the group changed since")),
    request_body(content = Group, content_type = "application/scim+json",
        examples(("Rename, two members" = (value = json!(group_replace()))))),
    responses(
        (status = 200, description = "Replaced", content_type = "application/scim+json", body = Group),
        (status = 400, description = "invalidValue: displayName missing or a member that does not exist"),
        (status = 404, description = "No such group"),
        (status = 409, description = "uniqueness: the displayName is taken by another group"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn replace_group() {}

/// Modifies a Group (RFC 7644 §3.5.2)
///
/// Answers 204 without a body, as Entra ID expects, unless `attributes`
/// or `excludedAttributes` asks for the group back (200).
#[utoipa::path(patch, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id", example = "e9e30dba-f08f-4109-8486-d5c6a331660a"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the group changed since")),
    request_body(content = PatchOp, content_type = "application/scim+json",
        examples(
            ("Add a member" = (summary = "Entra ID adds a member", value = json!(group_add_member()))),
            ("Remove a member" = (summary = "Entra ID removes a member", value = json!(group_remove_member()))),
            ("Remove a member (filter)" = (summary = "Okta and RFC 7644 §3.5.2.2 remove a member by path filter", value = json!(group_remove_member_filter()))),
        )),
    responses(
        (status = 204, description = "Patched"),
        (status = 200, description = "Patched, with attributes/excludedAttributes given", content_type = "application/scim+json", body = Group),
        (status = 400, description = "invalidPath: the path names no attribute; noTarget, invalidValue, mutability"),
        (status = 404, description = "No such group"),
        (status = 409, description = "uniqueness: a new displayName is taken"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn patch_group() {}

/// Deletes a Group (RFC 7644 §3.6)
///
/// Its members are not touched.
#[utoipa::path(delete, path = "/Groups/{id}", tag = "Groups",
    params(("id" = String, Path, description = "The group's id", example = "e9e30dba-f08f-4109-8486-d5c6a331660a"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the group changed since")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group"),
        (status = 412, description = "If-Match is stale"),
    ))]
pub fn delete_group() {}

/// Runs many writes in one request (RFC 7644 §3.7)
///
/// POST, PUT, PATCH and DELETE on /Users and /Groups, each run exactly as
/// its single request (same validation, versions and change-log rows; a
/// `version` is that operation's If-Match). Each operation is atomic on
/// its own; the request is not: answers 200 with a BulkResponse holding
/// a result per operation run (`status`, `location`, `version`, and for a
/// failure `response`, the RFC 7644 §3.12 error). `bulkId:…` references
/// in `path` or `data` resolve to the resources POSTs of the same request
/// created, in any order; a cycle through Group members is resolved (the
/// group created first, those members added once every operation ran);
/// one that cannot be resolved fails that operation with 409.
/// `failOnErrors` stops after that many failed operations. See
/// docs/SCIM.md, "Bulk".
#[utoipa::path(post, path = "/Bulk", tag = "Bulk",
    request_body(content = serde_json::Value, content_type = "application/scim+json",
        examples(("Users and a group naming them" = (summary = "A group whose member is created later in the request, a PATCH and a DELETE", value = json!(bulk_example()))))),
    responses(
        (status = 200, description = "A BulkResponse: one result per operation run", content_type = "application/scim+json", body = serde_json::Value),
        (status = 400, description = "invalidValue: Operations missing, an operation that is not an object, a bulkId used twice, failOnErrors not a positive integer; invalidSyntax: the body is not JSON"),
        (status = 413, description = "More than maxOperations (scim.bulk_max_operations) operations, or a body over maxPayloadSize (scim.bulk_max_payload_bytes)"),
    ))]
pub fn bulk() {}
