//! Organizations in the admin API (docs/ORGANIZATIONS.md): list, create,
//! rename, suspend, resume and delete the customer directories this scimd
//! serves, through the same store functions as `scimd org`.
//!
//! Every other admin endpoint acts on one organization: the one the
//! `X-Scimd-Organization` header names by slug (`crate::auth`), else the
//! default organization.

use actix_web::web::Json;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use scim_store::changes::Actor;
use scim_store::organizations::{self, Organization};
use scim_store::{OrgId, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::console::blocking;
use crate::error::{AdminError, ErrorBody};
use crate::AdminApi;

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrganizationView {
    /// Its URL name.
    #[schema(example = "acme")]
    pub slug: String,
    /// Its display name.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// A host name whose requests reach it at the plain `/scim/v2`.
    #[schema(example = "acme.scim.example.com")]
    pub host: Option<String>,
    /// Whether its SCIM API refuses every request (403).
    pub suspended: bool,
    /// When it was suspended.
    pub suspended_at: Option<String>,
    /// The path of its SCIM API (the Tenant URL's path in Entra).
    #[schema(example = "/scim/v2/o/acme")]
    pub scim_path: String,
    /// Whether it is the default organization (served at `/scim/v2`; it
    /// cannot be deleted).
    pub default: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        let default = o.id == OrgId::DEFAULT;
        OrganizationView {
            scim_path: if default {
                "/scim/v2".to_owned()
            } else {
                format!("/scim/v2/o/{}", o.slug)
            },
            suspended: o.suspended(),
            slug: o.slug,
            name: o.name,
            host: o.host,
            suspended_at: o.suspended_at,
            default,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A new organization.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// Its URL name: 1-63 characters of a-z, 0-9 and '-'.
    #[schema(example = "acme")]
    pub slug: String,
    /// Its display name.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// A host name whose requests reach it at the plain `/scim/v2`.
    pub host: Option<String>,
}

/// A change of an organization: the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// Its new display name.
    pub name: Option<String>,
    /// Its new host name; `""` removes it.
    pub host: Option<String>,
    /// `true` suspends it (every SCIM request 403), `false` resumes it.
    pub suspended: Option<bool>,
}

/// The query of a deletion.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfirmSlug {
    /// The organization's slug again.
    pub confirm: Option<String>,
}

fn find(store: &Store, slug: &str) -> Result<Organization, AdminError> {
    store
        .read(|c| organizations::find_organization(c, slug))?
        .ok_or_else(|| AdminError::NotFound(format!("no organization {slug:?}")))
}

/// Every organization, the default one first.
pub fn list(store: &Store) -> Result<Vec<OrganizationView>, AdminError> {
    Ok(store
        .read(organizations::list_organizations)?
        .into_iter()
        .map(OrganizationView::from)
        .collect())
}

/// Every organization with its id, the default one first.
pub fn list_with_ids(store: &Store) -> Result<Vec<(OrgId, OrganizationView)>, AdminError> {
    Ok(store
        .read(organizations::list_organizations)?
        .into_iter()
        .map(|o| (o.id, OrganizationView::from(o)))
        .collect())
}

/// Creates an organization (synchronization off).
pub fn create(
    store: &Store,
    actor: &Actor,
    req: &CreateOrganization,
) -> Result<OrganizationView, AdminError> {
    let org = store.write(|c| {
        organizations::create_organization(c, &req.slug, &req.name, req.host.as_deref(), actor)
    })?;
    store.invalidate_organizations();
    Ok(org.into())
}

/// Applies `req` to the organization `slug`.
pub fn update(
    store: &Store,
    actor: &Actor,
    slug: &str,
    req: &UpdateOrganization,
) -> Result<OrganizationView, AdminError> {
    let current = find(store, slug)?;
    let name = req.name.clone().unwrap_or(current.name);
    let host = match &req.host {
        Some(h) if h.trim().is_empty() => None,
        Some(h) => Some(h.clone()),
        None => current.host,
    };
    let org = store.write(|c| {
        let mut org =
            organizations::update_organization(c, current.id, &name, host.as_deref(), actor)?;
        if let Some(suspended) = req.suspended {
            if suspended != org.suspended() {
                org = organizations::set_organization_suspended(c, current.id, suspended, actor)?;
            }
        }
        Ok(org)
    })?;
    store.invalidate_organizations();
    Ok(org.into())
}

/// Deletes the organization `slug` with all its data; `confirm` must
/// repeat the slug.
pub fn remove(
    store: &Store,
    actor: &Actor,
    slug: &str,
    confirm: Option<&str>,
) -> Result<(), AdminError> {
    let org = find(store, slug)?;
    store.write(|c| organizations::delete_organization(c, org.id, confirm.unwrap_or(""), actor))?;
    store.invalidate_organizations();
    Ok(())
}

/// The organizations
///
/// Every customer directory this scimd serves, each at its own SCIM path
/// with its own tokens, switch and data (docs/ORGANIZATIONS.md). An
/// organization administrator sees the organizations granted to it.
#[utoipa::path(
    tag = "Organizations",
    responses(
        (status = 200, description = "Every organization the caller may act on, the default one first", body = [OrganizationView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/organizations")]
pub async fn list_organizations(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<OrganizationView>>, AdminError> {
    let store = api.store().clone();
    let all = blocking(move || list_with_ids(&store)).await?;
    Ok(web::Json(
        all.into_iter()
            .filter(|(id, _)| caller.scope.may_act_on(*id))
            .map(|(_, view)| view)
            .collect(),
    ))
}

/// Creates an organization
///
/// With User Synchronization off; give it a SCIM token and SAML settings
/// through the other endpoints with `X-Scimd-Organization: <slug>`.
#[utoipa::path(
    tag = "Organizations",
    request_body(content = CreateOrganization,
        example = json!({"slug": "acme", "name": "Acme Corp"})),
    responses(
        (status = 201, description = "Created", body = OrganizationView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 409, description = "The slug or host name is taken", body = ErrorBody),
        (status = 422, description = "An invalid slug, name or host name: the message says what to fix", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/organizations")]
pub async fn create_organization(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<CreateOrganization>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let body = body.map(|Json(b)| b).map_err(crate::json::body_error)?;
    let store = api.store().clone();
    let created = blocking(move || create(&store, &caller.actor, &body)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Changes an organization
///
/// Its name or host name, or suspends it (every SCIM request 403) or
/// resumes it. Other replicas see the change within a second.
#[utoipa::path(
    tag = "Organizations",
    params(("slug" = String, Path, description = "The organization", example = "globex")),
    request_body(content = UpdateOrganization, example = json!({"suspended": true})),
    responses(
        (status = 200, description = "Changed", body = OrganizationView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "The host name is taken", body = ErrorBody),
        (status = 422, description = "An invalid name or host name", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[patch("/organizations/{slug}")]
pub async fn update_organization(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    body: Result<Json<UpdateOrganization>, actix_web::Error>,
) -> Result<web::Json<OrganizationView>, AdminError> {
    let body = body.map(|Json(b)| b).map_err(crate::json::body_error)?;
    let (store, slug) = (api.store().clone(), path.into_inner());
    Ok(web::Json(
        blocking(move || update(&store, &caller.actor, &slug, &body)).await?,
    ))
}

/// Deletes an organization
///
/// With all its users, groups, tokens, OAuth clients, settings and
/// history. `confirm` must repeat the slug. The default organization
/// cannot be deleted.
#[utoipa::path(
    tag = "Organizations",
    params(
        ("slug" = String, Path, description = "The organization", example = "globex"),
        ("confirm" = Option<String>, Query, description = "The slug again", example = "globex"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 422, description = "`confirm` is not the slug, or the organization is the default one", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/organizations/{slug}")]
pub async fn delete_organization(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ConfirmSlug>,
) -> Result<HttpResponse, AdminError> {
    let (store, slug, confirm) = (api.store().clone(), path.into_inner(), query.into_inner());
    blocking(move || remove(&store, &caller.actor, &slug, confirm.confirm.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}
