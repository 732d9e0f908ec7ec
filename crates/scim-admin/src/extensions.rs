//! Custom schema extensions of the User in the admin API
//! (`/admin/api/v1/schema-extensions`), shared with the console and the
//! CLI (`scimd schema …`): define, list, change (attributes added,
//! characteristics changed, values kept), and remove an extension or one of
//! its attributes together with the values users hold, behind a
//! confirmation (the URN, or `<urn>:<name>`, given again as `confirm`).
//!
//! Definitions are validated by `scim_core::extensions` and stored by
//! `scim_store::scim::extensions`; each change records its admin event in
//! the change log, last in its transaction, and makes this process's next
//! SCIM request read the definitions again (other replicas within
//! `scim_store::scim::extensions::REFRESH`). docs/SCIM.md describes what
//! identity providers see.

use actix_web::{delete, get, post, put, web, HttpResponse};
use scim_core::extensions::ExtensionDef;
use scim_core::ScimType;
use scim_store::changes::{Actor, Event};
use scim_store::scim::extensions as store_ext;
use scim_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::activity::record_event;
use crate::auth::Caller;
use crate::error::{AdminError, ErrorBody};
use crate::json::Json;
use crate::AdminApi;

/// The `resource_type` of the change-log rows of these changes.
const RESOURCE_TYPE: &str = "SchemaExtension";

/// A custom schema extension: its URN and its attributes, in the
/// RFC 7643 §7 representation (`name`, `type`, `multiValued`, `required`,
/// `caseExact`, `mutability`, `returned`, `uniqueness`, `canonicalValues`,
/// `subAttributes`, `description`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    /// The URN, `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`.
    #[schema(example = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User")]
    pub id: String,
    /// A description.
    #[serde(default)]
    pub description: String,
    /// The attributes (at most 50; complex ones with `subAttributes`, one
    /// level deep).
    #[schema(value_type = Vec<Object>, example = json!([
        {"name": "CustomAttribute", "type": "string"},
        {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200"]},
        {"name": "badgeNumber", "type": "integer", "mutability": "immutable"}
    ]))]
    pub attributes: Vec<serde_json::Value>,
}

/// The confirmation of a removal: `confirm` must repeat what is removed.
#[derive(Debug, Clone, Deserialize)]
pub struct Confirm {
    /// The extension's URN (removing an extension) or `<urn>:<name>`
    /// (removing an attribute): the values users hold go with it.
    pub confirm: Option<String>,
}

/// What a removal did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemovedView {
    /// What was removed (`<urn>` or `<urn>:<name>`).
    pub removed: String,
    /// How many users held values of it (their values are gone, their
    /// version bumped).
    pub users: usize,
}

fn body_of(def: ExtensionDef) -> Result<ExtensionBody, AdminError> {
    let v = serde_json::to_value(&def).map_err(|_| AdminError::Internal)?;
    serde_json::from_value(v).map_err(|_| AdminError::Internal)
}

fn store_error(e: StoreError) -> AdminError {
    match e {
        StoreError::Invalid(e) if e.scim_type == ScimType::Uniqueness => {
            AdminError::Conflict(e.detail)
        }
        StoreError::Invalid(e) if e.scim_type == ScimType::InvalidSyntax => {
            AdminError::field("body", e.detail)
        }
        other => other.into(),
    }
}

/// Every custom extension, in the order they were defined.
pub fn list(store: &Store) -> Result<Vec<ExtensionBody>, AdminError> {
    store
        .read(store_ext::list_extensions)
        .map_err(store_error)?
        .into_iter()
        .map(body_of)
        .collect()
}

/// Defines an extension (`definition`: the RFC 7643 §7 JSON of
/// [`ExtensionBody`]).
pub fn create(
    store: &Store,
    actor: &Actor,
    definition: &serde_json::Value,
) -> Result<ExtensionBody, AdminError> {
    let def =
        ExtensionDef::from_json(definition).map_err(|e| AdminError::field("body", e.detail))?;
    store
        .write(|c| {
            store_ext::create_extension(c, &def, &actor.label())?;
            record_event(
                c,
                actor,
                Event::SchemaExtensionCreated,
                RESOURCE_TYPE,
                Some(&def.id),
                serde_json::json!({ "attributes": def.attributes.iter().map(|a| &a.name).collect::<Vec<_>>() }),
            )
        })
        .map_err(store_error)?;
    store.invalidate_user_schemas();
    body_of(def)
}

/// What a change of a definition did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdatedView {
    /// The definition now in force.
    pub extension: ExtensionBody,
    /// The attributes added.
    pub added: Vec<String>,
    /// The attributes whose characteristics changed.
    pub changed: Vec<String>,
}

/// Changes the definition of the extension `urn` to `definition` (its
/// whole RFC 7643 §7 JSON, the same URN), keeping the values users hold:
/// attributes added, characteristics changed where stored values still
/// fit (`scim_store::scim::extensions::update_extension` says which).
pub fn update(
    store: &Store,
    actor: &Actor,
    urn: &str,
    definition: &serde_json::Value,
) -> Result<UpdatedView, AdminError> {
    let def =
        ExtensionDef::from_json(definition).map_err(|e| AdminError::field("body", e.detail))?;
    if !def.id.eq_ignore_ascii_case(urn) {
        return Err(AdminError::field(
            "id",
            format!("id must be the URN of the extension changed, {urn}"),
        ));
    }
    let updated = store
        .write(|c| {
            let updated = store_ext::update_extension(c, &def)?;
            record_event(
                c,
                actor,
                Event::SchemaExtensionChanged,
                RESOURCE_TYPE,
                Some(&updated.def.id),
                serde_json::json!({ "added": updated.added, "changed": updated.changed }),
            )?;
            Ok(updated)
        })
        .map_err(not_found(urn))?;
    store.invalidate_user_schemas();
    Ok(UpdatedView {
        extension: body_of(updated.def)?,
        added: updated.added,
        changed: updated.changed,
    })
}

fn confirmed(confirm: Option<&str>, what: &str) -> Result<(), AdminError> {
    if confirm == Some(what) {
        return Ok(());
    }
    Err(AdminError::field(
        "confirm",
        format!(
            "removing {what} deletes the values every user holds of it; to confirm, give confirm={what} (in the CLI: --confirm {what})"
        ),
    ))
}

/// Removes the extension `urn` with its values, if `confirm` is the URN
/// as defined.
pub fn remove(
    store: &Store,
    actor: &Actor,
    urn: &str,
    confirm: Option<&str>,
) -> Result<RemovedView, AdminError> {
    let def = store
        .read(|c| store_ext::find_extension(c, urn))
        .map_err(not_found(urn))?;
    confirmed(confirm, &def.id)?;
    let (def, users) = store
        .write(|c| {
            let (def, users) = store_ext::delete_extension(c, &def.id)?;
            record_event(
                c,
                actor,
                Event::SchemaExtensionDeleted,
                RESOURCE_TYPE,
                Some(&def.id),
                serde_json::json!({ "users": users }),
            )?;
            Ok((def, users))
        })
        .map_err(not_found(urn))?;
    store.invalidate_user_schemas();
    Ok(RemovedView {
        removed: def.id,
        users,
    })
}

/// Removes the attribute `name` of extension `urn` with its values, if
/// `confirm` is `<urn>:<name>` as defined.
pub fn remove_attribute(
    store: &Store,
    actor: &Actor,
    urn: &str,
    name: &str,
    confirm: Option<&str>,
) -> Result<RemovedView, AdminError> {
    let def = store
        .read(|c| store_ext::find_extension(c, urn))
        .map_err(not_found(urn))?;
    let attr = def
        .attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| AdminError::NotFound(format!("{} has no attribute {name:?}", def.id)))?;
    let what = format!("{}:{}", def.id, attr.name);
    confirmed(confirm, &what)?;
    let users = store
        .write(|c| {
            let (_, users) = store_ext::delete_extension_attribute(c, &def.id, name)?;
            record_event(
                c,
                actor,
                Event::SchemaExtensionChanged,
                RESOURCE_TYPE,
                Some(&def.id),
                serde_json::json!({ "removed_attribute": what, "users": users }),
            )?;
            Ok(users)
        })
        .map_err(not_found(urn))?;
    store.invalidate_user_schemas();
    Ok(RemovedView {
        removed: what,
        users,
    })
}

fn not_found(urn: &str) -> impl Fn(StoreError) -> AdminError + '_ {
    move |e| match e {
        StoreError::NotFound => AdminError::NotFound(format!("no custom schema extension {urn:?}")),
        other => store_error(other),
    }
}

async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

/// The custom schema extensions
///
/// Every custom extension of the User, as defined (RFC 7643 §7 attribute
/// representations). SCIM clients see them at `/Schemas` and in the User
/// resource type's `schemaExtensions`.
#[utoipa::path(
    tag = "Schema extensions",
    responses(
        (status = 200, description = "Every extension, in the order defined", body = [ExtensionBody]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/schema-extensions")]
pub async fn list_extensions(
    api: web::Data<AdminApi>,
    _caller: Caller,
) -> Result<web::Json<Vec<ExtensionBody>>, AdminError> {
    let store = api.store().clone();
    Ok(web::Json(blocking(move || list(&store)).await?))
}

/// Defines a custom schema extension
///
/// Its attributes are then accepted, validated, stored, returned,
/// filterable and sortable on Users (docs/SCIM.md), on this replica from
/// its next request and on the others within a second.
#[utoipa::path(
    tag = "Schema extensions",
    request_body(content = ExtensionBody,
        example = json!({"id": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User", "description": "Entra custom attributes", "attributes": [{"name": "CustomAttribute", "type": "string"}, {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200"]}]})),
    responses(
        (status = 201, description = "Defined", body = ExtensionBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 409, description = "An extension with this URN exists", body = ErrorBody),
        (status = 422, description = "An invalid definition: the message says what to fix", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/schema-extensions")]
pub async fn create_extension(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<ExtensionBody>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let body = body.map(|Json(b)| b).map_err(crate::json::body_error)?;
    let definition = serde_json::to_value(&body).map_err(|_| AdminError::Internal)?;
    let store = api.store().clone();
    let created = blocking(move || create(&store, &caller.actor, &definition)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Changes a custom schema extension
///
/// The whole definition, as for a new one, with the same URN: attributes
/// may be added, and the characteristics of existing ones changed where
/// the values users hold still fit (`description`, `canonicalValues`,
/// `returned`, `mutability`, `required`, `caseExact`, `uniqueness`,
/// sub-attributes added). Every value users hold is kept. Leaving an
/// attribute out is refused (remove it with its values through
/// `DELETE …/attributes/{name}`).
#[utoipa::path(
    tag = "Schema extensions",
    params(
        ("urn" = String, Path, description = "The extension's URN", example = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"),
    ),
    request_body(content = ExtensionBody,
        example = json!({"id": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User", "description": "Entra custom attributes", "attributes": [{"name": "CustomAttribute", "type": "string", "uniqueness": "server"}, {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200", "CC-300"]}, {"name": "site", "type": "string"}]})),
    responses(
        (status = 200, description = "Changed; what was added and changed", body = UpdatedView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such extension", body = ErrorBody),
        (status = 409, description = "A change the values users hold would not fit (`type` or `multiValued` of an attribute with values), or uniqueness over values two users share: the message names it", body = ErrorBody),
        (status = 422, description = "An invalid definition, another URN, or an attribute left out or renamed: the message says what to fix", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[put("/schema-extensions/{urn}")]
pub async fn update_extension(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    body: Result<Json<ExtensionBody>, actix_web::Error>,
) -> Result<web::Json<UpdatedView>, AdminError> {
    let body = body.map(|Json(b)| b).map_err(crate::json::body_error)?;
    let definition = serde_json::to_value(&body).map_err(|_| AdminError::Internal)?;
    let (store, urn) = (api.store().clone(), path.into_inner());
    Ok(web::Json(
        blocking(move || update(&store, &caller.actor, &urn, &definition)).await?,
    ))
}

/// Removes a custom schema extension
///
/// With the values every user holds of it (each such user's version is
/// bumped). `confirm` must repeat the URN.
#[utoipa::path(
    tag = "Schema extensions",
    params(
        ("urn" = String, Path, description = "The extension's URN", example = "urn:ietf:params:scim:schemas:extension:Example:2.0:User"),
        ("confirm" = Option<String>, Query, description = "The extension's URN again: its values go with it", example = "urn:ietf:params:scim:schemas:extension:Example:2.0:User"),
    ),
    responses(
        (status = 200, description = "Removed", body = RemovedView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such extension", body = ErrorBody),
        (status = 422, description = "`confirm` is missing or is not the URN", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/schema-extensions/{urn}")]
pub async fn delete_extension(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<Confirm>,
) -> Result<web::Json<RemovedView>, AdminError> {
    let (store, urn, confirm) = (api.store().clone(), path.into_inner(), query.into_inner());
    Ok(web::Json(
        blocking(move || remove(&store, &caller.actor, &urn, confirm.confirm.as_deref())).await?,
    ))
}

/// Removes an attribute of a custom schema extension
///
/// With the values every user holds of it. `confirm` must be
/// `<urn>:<name>`. An extension keeps at least one attribute.
#[utoipa::path(
    tag = "Schema extensions",
    params(
        ("urn" = String, Path, description = "The extension's URN", example = "urn:ietf:params:scim:schemas:extension:Example:2.0:User"),
        ("name" = String, Path, description = "The attribute's name", example = "costCenter"),
        ("confirm" = Option<String>, Query, description = "`<urn>:<name>`: the attribute's values go with it", example = "urn:ietf:params:scim:schemas:extension:Example:2.0:User:costCenter"),
    ),
    responses(
        (status = 200, description = "Removed", body = RemovedView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such extension or attribute", body = ErrorBody),
        (status = 422, description = "`confirm` is missing or wrong, or it is the last attribute", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/schema-extensions/{urn}/attributes/{name}")]
pub async fn delete_extension_attribute(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<Confirm>,
) -> Result<web::Json<RemovedView>, AdminError> {
    let store = api.store().clone();
    let ((urn, name), confirm) = (path.into_inner(), query.into_inner());
    Ok(web::Json(
        blocking(move || {
            remove_attribute(
                &store,
                &caller.actor,
                &urn,
                &name,
                confirm.confirm.as_deref(),
            )
        })
        .await?,
    ))
}
