//! Organizations (docs/ORGANIZATIONS.md): the customer directories one
//! scimd serves, each with its own users, groups, tokens, User
//! Synchronization switch, SAML and run-time settings.
//!
//! Every directory-scoped row carries its organization's id (`org_id`);
//! the per-organization one-row tables (`sync_state`, `runtime_settings`,
//! `saml_settings`) are keyed by it. The default organization
//! ([`OrgId::DEFAULT`], slug `default`) always exists and cannot be
//! deleted: it is what a single-directory installation is.

use diesel::prelude::*;
use serde_json::json;

use scim_core::ScimError;

use crate::admin::settings::default_settings;
use crate::changes::{record, Actor, Event, NewChange};
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::admin::{admin_organizations, organizations, runtime_settings, sync_state};
use crate::db::sql::{execute, load, Bind, SqlBuilder};
use crate::error::{is_unique_violation, StoreError};

/// The slug of the default organization.
pub const DEFAULT_SLUG: &str = "default";

/// The longest slug.
const MAX_SLUG: usize = 63;

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    /// Its id (`org_id` of its rows).
    #[diesel(deserialize_as = i32)]
    pub id: OrgId,
    /// The URL name: its SCIM API is at `/scim/v2/o/{slug}`.
    pub slug: String,
    /// The display name.
    pub name: String,
    /// A host name (lower-cased) whose requests reach it at the plain
    /// `/scim/v2`.
    pub host: Option<String>,
    /// When it was suspended (every SCIM request gets 403), if it is.
    pub suspended_at: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<i32> for OrgId {
    fn from(id: i32) -> OrgId {
        OrgId(id)
    }
}

impl Organization {
    /// Whether its SCIM API refuses every request (403).
    pub fn suspended(&self) -> bool {
        self.suspended_at.is_some()
    }
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid(ScimError::invalid_value(detail))
}

/// `slug` if it is a valid slug: 1–63 characters of `a-z`, `0-9` and `-`,
/// starting with a letter or a digit (it is a URL path segment and may be
/// a DNS label).
pub fn valid_slug(slug: &str) -> Result<&str, StoreError> {
    let ok = !slug.is_empty()
        && slug.len() <= MAX_SLUG
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(invalid(format!(
            "slug \"{slug}\" must be 1-{MAX_SLUG} characters of a-z, 0-9 and '-', \
             not starting with '-' (it names the organization in URLs: /scim/v2/o/{{slug}})"
        )))
    }
}

/// `name` trimmed, if it is a valid display name (1–200 characters).
fn valid_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid(
            "an organization's name must be 1-200 characters".to_owned(),
        ));
    }
    Ok(name)
}

/// `host` lower-cased, if it is a plausible host name (no scheme, path or
/// port).
fn valid_host(host: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let host = host.to_ascii_lowercase();
    let ok = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(Some(host))
    } else {
        Err(invalid(format!(
            "host \"{host}\" must be a host name such as scim.example.com (no scheme, port or path)"
        )))
    }
}

fn taken(e: diesel::result::Error, slug: &str, host: Option<&str>) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(match host {
            Some(host) => {
                format!("an organization with slug \"{slug}\" or host \"{host}\" already exists")
            }
            None => format!("an organization with slug \"{slug}\" already exists"),
        })
    } else {
        e.into()
    }
}

/// Every organization, the default one first, then by slug.
pub fn list_organizations(conn: &mut DbConnection) -> Result<Vec<Organization>, StoreError> {
    Ok(organizations::table
        .select(Organization::as_select())
        .order((organizations::id.ne(OrgId::DEFAULT.0), organizations::slug))
        .load(conn)?)
}

/// The organization whose slug is `slug`.
pub fn find_organization(
    conn: &mut DbConnection,
    slug: &str,
) -> Result<Option<Organization>, StoreError> {
    Ok(organizations::table
        .filter(organizations::slug.eq(slug))
        .select(Organization::as_select())
        .first(conn)
        .optional()?)
}

/// The organization `org`.
pub fn get_organization(conn: &mut DbConnection, org: OrgId) -> Result<Organization, StoreError> {
    organizations::table
        .filter(organizations::id.eq(org.0))
        .select(Organization::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Creates an organization, with User Synchronization disabled and the
/// default run-time settings, recording `organization.created` by
/// `actor`. A slug or host already taken is `Conflict`.
pub fn create_organization(
    conn: &mut DbConnection,
    slug: &str,
    name: &str,
    host: Option<&str>,
    actor: &Actor,
) -> Result<Organization, StoreError> {
    let slug = valid_slug(slug)?;
    let name = valid_name(name)?;
    let host = valid_host(host)?;
    let now = scim_core::datetime::now();
    #[derive(diesel::QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
    }
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("INSERT INTO organizations (slug, name, host, created_at, updated_at) VALUES (")
        .bind_text(slug)
        .push(", ")
        .bind_text(name)
        .push(", ")
        .bind(Bind::NullableText(host.clone()))
        .push(", ")
        .bind_text(now.as_str())
        .push(", ")
        .bind_text(now.as_str())
        .push(") RETURNING id");
    let id = load::<IdRow>(conn, &b)
        .map_err(|e| taken(e, slug, host.as_deref()))?
        .first()
        .map(|r| r.id)
        .ok_or_else(|| {
            StoreError::Internal("creating an organization returned no id".to_owned())
        })?;
    diesel::insert_into(sync_state::table)
        .values((
            sync_state::id.eq(id),
            sync_state::enabled.eq(false),
            sync_state::accepted_cautions.eq(""),
        ))
        .execute(conn)?;
    let d = default_settings();
    diesel::insert_into(runtime_settings::table)
        .values((
            runtime_settings::id.eq(id),
            runtime_settings::deprovisioning.eq(d.deprovisioning.as_str()),
            runtime_settings::soft_delete_retention_days.eq(d.soft_delete_retention_days),
            runtime_settings::default_page_size.eq(d.default_page_size),
            runtime_settings::max_page_size.eq(d.max_page_size),
            runtime_settings::version.eq(1_i64),
            runtime_settings::change_log_retention_days.eq(d.change_log_retention_days),
            runtime_settings::health_failure_percent.eq(d.health_failure_percent),
            runtime_settings::health_silence_minutes.eq(d.health_silence_minutes),
        ))
        .execute(conn)?;
    let org = OrgId(id);
    let change = NewChange::new(
        Event::OrganizationCreated,
        "Organization",
        Some(&id.to_string()),
    )
    .detail(json!({ "slug": slug, "name": name, "host": host }));
    record(conn, &actor.clone().in_org(org), &now, &[change])?;
    get_organization(conn, org)
}

/// Renames an organization and sets its host name (`None`: none),
/// recording `organization.changed`.
pub fn update_organization(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
    host: Option<&str>,
    actor: &Actor,
) -> Result<Organization, StoreError> {
    let name = valid_name(name)?;
    let host = valid_host(host)?;
    let now = scim_core::datetime::now();
    let current = get_organization(conn, org)?;
    diesel::update(organizations::table.filter(organizations::id.eq(org.0)))
        .set((
            organizations::name.eq(name),
            organizations::host.eq(host.as_deref()),
            organizations::updated_at.eq(&now),
        ))
        .execute(conn)
        .map_err(|e| taken(e, &current.slug, host.as_deref()))?;
    let change = NewChange::new(
        Event::OrganizationChanged,
        "Organization",
        Some(&org.to_string()),
    )
    .detail(json!({ "name": name, "host": host }));
    record(conn, &actor.clone().in_org(org), &now, &[change])?;
    get_organization(conn, org)
}

/// Suspends an organization (every SCIM request of it gets 403) or lifts
/// the suspension, recording `organization.changed`.
pub fn set_organization_suspended(
    conn: &mut DbConnection,
    org: OrgId,
    suspended: bool,
    actor: &Actor,
) -> Result<Organization, StoreError> {
    let now = scim_core::datetime::now();
    let updated = diesel::update(organizations::table.filter(organizations::id.eq(org.0)))
        .set((
            organizations::suspended_at.eq(suspended.then_some(now.as_str())),
            organizations::updated_at.eq(&now),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    let change = NewChange::new(
        Event::OrganizationChanged,
        "Organization",
        Some(&org.to_string()),
    )
    .detail(json!({ "suspended": suspended }));
    record(conn, &actor.clone().in_org(org), &now, &[change])?;
    get_organization(conn, org)
}

/// The tables whose rows carry `org_id`, children before parents where a
/// foreign key cascades (the rows of tables that reference these go by
/// cascade: `group_members`, OAuth grants, codes and tokens, event
/// streams' keys and acknowledgements).
const SCOPED_TABLES: [&str; 8] = [
    "user_values",
    "users",
    "groups",
    "scim_tokens",
    "oauth_clients",
    "sync_events",
    "provisioning_traffic",
    "event_streams",
];

/// The tables keyed by the organization's id.
const KEYED_TABLES: [&str; 3] = ["sync_state", "runtime_settings", "saml_settings"];

/// Deletes an organization with all its data, in the caller's
/// transaction, after checking that `confirm` is its slug. The default
/// organization cannot be deleted. Its change log rows go too, but the
/// deletion itself is recorded (`organization.deleted`, in the default
/// organization's log, as the organization no longer exists).
pub fn delete_organization(
    conn: &mut DbConnection,
    org: OrgId,
    confirm: &str,
    actor: &Actor,
) -> Result<(), StoreError> {
    if org == OrgId::DEFAULT {
        return Err(StoreError::Invalid(ScimError::mutability(
            "the default organization cannot be deleted",
        )));
    }
    let current = get_organization(conn, org)?;
    if confirm != current.slug {
        return Err(invalid(format!(
            "deleting organization \"{}\" deletes all its users, groups, tokens and history; \
             confirm with its slug",
            current.slug
        )));
    }
    let backend = conn.backend();
    // Members of this organization's groups, and memberships of its
    // users in them, go with the groups (ON DELETE CASCADE); a member
    // reference never crosses organizations.
    for table in SCOPED_TABLES {
        let mut b = SqlBuilder::fixed(backend);
        b.push("DELETE FROM ")
            .push(table)
            .push(" WHERE org_id = ")
            .bind(Bind::Integer(org.0));
        execute(conn, &b)?;
    }
    let mut b = SqlBuilder::fixed(backend);
    b.push("DELETE FROM change_log WHERE org_id = ")
        .bind(Bind::Integer(org.0));
    execute(conn, &b)?;
    for table in KEYED_TABLES {
        let mut b = SqlBuilder::fixed(backend);
        b.push("DELETE FROM ")
            .push(table)
            .push(" WHERE id = ")
            .bind(Bind::Integer(org.0));
        execute(conn, &b)?;
    }
    diesel::delete(organizations::table.filter(organizations::id.eq(org.0))).execute(conn)?;
    let change = NewChange::new(
        Event::OrganizationDeleted,
        "Organization",
        Some(&org.to_string()),
    )
    .detail(json!({ "slug": current.slug, "name": current.name }));
    record(
        conn,
        &actor.clone().in_org(OrgId::DEFAULT),
        &scim_core::datetime::now(),
        &[change],
    )?;
    Ok(())
}

/// Lets the administrator `admin_id` manage the organization `org` (an
/// organization administrator's access; docs/ORGANIZATIONS.md). Giving it
/// twice changes nothing. An unknown administrator or organization is
/// `NotFound`.
pub fn grant_organization(
    conn: &mut DbConnection,
    admin_id: &str,
    org: OrgId,
) -> Result<(), StoreError> {
    get_organization(conn, org)?;
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("INSERT INTO admin_organizations (admin_id, org_id) SELECT a.id, ")
        .bind(Bind::Integer(org.0))
        .push(" FROM admins a WHERE a.id = ")
        .bind_text(admin_id)
        .push(" ON CONFLICT (admin_id, org_id) DO NOTHING");
    execute(conn, &b)?;
    let granted: i64 = admin_organizations::table
        .filter(admin_organizations::admin_id.eq(admin_id))
        .filter(admin_organizations::org_id.eq(org.0))
        .count()
        .get_result(conn)?;
    if granted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The organizations the administrator `admin_id` has been given, by id.
pub fn granted_organizations(
    conn: &mut DbConnection,
    admin_id: &str,
) -> Result<Vec<OrgId>, StoreError> {
    let ids: Vec<i32> = admin_organizations::table
        .filter(admin_organizations::admin_id.eq(admin_id))
        .select(admin_organizations::org_id)
        .order(admin_organizations::org_id)
        .load(conn)?;
    Ok(ids.into_iter().map(OrgId).collect())
}
