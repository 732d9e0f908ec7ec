//! Administrator roles (docs/ORGANIZATIONS.md, "Administrators"): an
//! **instance administrator** acts on every organization and on what
//! belongs to no single organization; an **organization administrator**
//! acts only on the organizations granted to it in `admin_organizations`.
//!
//! Admin API tokens and console sessions carry the organization they act
//! within (`admin_tokens.org_id`, `admin_sessions.org_id`).

use diesel::prelude::*;

use crate::admin::admins::{
    actor_of, ensure_another_enabled, find_admin, lock_admins, AdminRecord,
};
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::admin::{admin_organizations, admin_sessions, admin_tokens, admins};
use crate::error::StoreError;

pub use crate::admin::admins::Role;

/// What an administrator (or an admin API token) may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminScope {
    /// The role.
    pub role: Role,
    /// The organizations granted (organization administrators; empty for
    /// instance administrators, who act on every one), by id.
    pub orgs: Vec<OrgId>,
}

impl AdminScope {
    /// An instance administrator's scope.
    pub fn instance() -> Self {
        AdminScope {
            role: Role::Instance,
            orgs: Vec::new(),
        }
    }

    /// An organization administrator of `orgs`.
    pub fn organization(orgs: Vec<OrgId>) -> Self {
        AdminScope {
            role: Role::Organization,
            orgs,
        }
    }

    /// Whether this is an instance administrator.
    pub fn is_instance(&self) -> bool {
        self.role == Role::Instance
    }

    /// Whether it may act on `org`.
    pub fn may_act_on(&self, org: OrgId) -> bool {
        self.is_instance() || self.orgs.contains(&org)
    }
}

/// The scope of administrator `admin_id` (an unknown id: an organization
/// administrator of nothing).
pub fn admin_scope(conn: &mut DbConnection, admin_id: &str) -> Result<AdminScope, StoreError> {
    let role: Option<String> = admins::table
        .filter(admins::id.eq(admin_id))
        .select(admins::role)
        .first(conn)
        .optional()?;
    if role.as_deref().and_then(Role::parse) == Some(Role::Instance) {
        return Ok(AdminScope::instance());
    }
    let orgs: Vec<i32> = admin_organizations::table
        .filter(admin_organizations::admin_id.eq(admin_id))
        .select(admin_organizations::org_id)
        .order(admin_organizations::org_id)
        .load(conn)?;
    Ok(AdminScope::organization(
        orgs.into_iter().map(OrgId).collect(),
    ))
}

/// Gives administrator `id` the scope `scope` (its role and, for an
/// organization administrator, its organizations, replacing the former
/// grants); returns the administrator and its former scope. The admin API
/// tokens it created that the new scope does not cover are revoked. An
/// instance administrator that is the last enabled one keeps its role
/// (`Conflict`); unknown id → `NotFound`; an organization administrator
/// without organizations → `Invalid`. Run inside
/// [`crate::engine::Store::write`].
pub fn set_admin_scope(
    conn: &mut DbConnection,
    id: &str,
    scope: &AdminScope,
    now: &str,
) -> Result<(AdminRecord, AdminScope), StoreError> {
    if scope.role == Role::Organization && scope.orgs.is_empty() {
        return Err(StoreError::Invalid(scim_core::ScimError::invalid_value(
            "an organization administrator needs at least one organization",
        )));
    }
    lock_admins(conn)?;
    let admin = find_admin(conn, id)?.ok_or(StoreError::NotFound)?;
    let before = admin_scope(conn, id)?;
    if before.is_instance() && !scope.is_instance() && admin.disabled_at.is_none() {
        ensure_another_enabled(conn, &admin)?;
    }
    diesel::update(admins::table.filter(admins::id.eq(id)))
        .set(admins::role.eq(scope.role.as_str()))
        .execute(conn)?;
    diesel::delete(admin_organizations::table.filter(admin_organizations::admin_id.eq(id)))
        .execute(conn)?;
    if !scope.is_instance() {
        // One statement per grant: a multi-row INSERT is not available
        // on the two-backend connection.
        for org in &scope.orgs {
            diesel::insert_into(admin_organizations::table)
                .values((
                    admin_organizations::admin_id.eq(id),
                    admin_organizations::org_id.eq(org.0),
                ))
                .execute(conn)?;
        }
        // What it set up beyond its new organizations stops working.
        let ids: Vec<i32> = scope.orgs.iter().map(|o| o.0).collect();
        diesel::update(
            admin_tokens::table
                .filter(admin_tokens::created_by.eq(actor_of(&admin)))
                .filter(admin_tokens::revoked_at.is_null())
                .filter(
                    admin_tokens::org_id
                        .is_null()
                        .or(admin_tokens::org_id.ne_all(ids)),
                ),
        )
        .set(admin_tokens::revoked_at.eq(now))
        .execute(conn)?;
    }
    Ok((admin, before))
}

/// Binds admin API token `token_id` to `org`: it acts within that
/// organization only (a token an organization administrator creates).
pub fn bind_admin_token(
    conn: &mut DbConnection,
    token_id: &str,
    org: OrgId,
) -> Result<(), StoreError> {
    diesel::update(admin_tokens::table.filter(admin_tokens::id.eq(token_id)))
        .set(admin_tokens::org_id.eq(Some(org.0)))
        .execute(conn)?;
    Ok(())
}

/// The organization the console session `session_id` shows (`None`: not
/// chosen yet, or no such session).
pub fn session_org(conn: &mut DbConnection, session_id: &str) -> Result<Option<OrgId>, StoreError> {
    let found: Option<Option<i32>> = admin_sessions::table
        .filter(admin_sessions::id_hash.eq(hash_secret(session_id)))
        .select(admin_sessions::org_id)
        .first(conn)
        .optional()?;
    Ok(found.flatten().map(OrgId))
}

/// Makes the console session `session_id` show `org` (the organization
/// switcher).
pub fn set_session_org(
    conn: &mut DbConnection,
    session_id: &str,
    org: OrgId,
) -> Result<(), StoreError> {
    diesel::update(
        admin_sessions::table.filter(admin_sessions::id_hash.eq(hash_secret(session_id))),
    )
    .set(admin_sessions::org_id.eq(Some(org.0)))
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::admin::admins::{disable_admin, insert_admin};
    use crate::testing::backends;

    #[test]
    fn roles_grants_and_the_last_instance_administrator() {
        for db in backends() {
            let store = db.store();
            let (root, bob) = store
                .write(|c| Ok((insert_admin(c, "root", "x")?, insert_admin(c, "bob", "x")?)))
                .unwrap();
            let now = "2026-12-08T00:00:00Z";
            // Both start as instance administrators.
            let scope = store.read(|c| admin_scope(c, &bob.id)).unwrap();
            assert!(scope.is_instance());
            // bob becomes an organization administrator of the default
            // organization; the token he made for every organization goes.
            let token = store
                .write(|c| crate::admin::admins::create_admin_token(c, "t", None, "admin:bob"))
                .unwrap()
                .0;
            let (_, before) = store
                .write(|c| {
                    set_admin_scope(
                        c,
                        &bob.id,
                        &AdminScope::organization(vec![OrgId::DEFAULT]),
                        now,
                    )
                })
                .unwrap();
            assert!(before.is_instance());
            let scope = store.read(|c| admin_scope(c, &bob.id)).unwrap();
            assert_eq!(scope, AdminScope::organization(vec![OrgId::DEFAULT]));
            assert!(scope.may_act_on(OrgId::DEFAULT));
            assert!(!scope.may_act_on(OrgId(2)));
            let tokens = store.read(crate::admin::admins::list_admin_tokens).unwrap();
            let t = tokens.iter().find(|t| t.id == token.id).unwrap();
            assert!(t.revoked_at.is_some());
            // root is now the last instance administrator: it cannot be
            // demoted, disabled or deleted.
            let err = store
                .write(|c| {
                    set_admin_scope(
                        c,
                        &root.id,
                        &AdminScope::organization(vec![OrgId::DEFAULT]),
                        now,
                    )
                })
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
            let err = store
                .write(|c| disable_admin(c, &root.id, now))
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
            // bob, an organization administrator, can be disabled.
            store.write(|c| disable_admin(c, &bob.id, now)).unwrap();
            // No organization at all is refused.
            let err = store
                .write(|c| set_admin_scope(c, &bob.id, &AdminScope::organization(vec![]), now))
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        }
    }
}
