//! How many Users and Groups the store holds, by state: what scimd's
//! `GET /metrics` reports as gauges, counted at scrape time.

use diesel::prelude::*;

use crate::db::connection::DbConnection;
use crate::db::schema::scim::{groups, users};
use crate::error::StoreError;

/// The Users and Groups held, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Population {
    /// Live Users with `active` true.
    pub active_users: i64,
    /// Live Users with `active` false (suspended by the identity provider).
    pub suspended_users: i64,
    /// Soft-deleted Users awaiting the purge (invisible to the SCIM API).
    pub deleted_users: i64,
    /// Groups.
    pub groups: i64,
}

/// Counts the Users by state and the Groups: three `count(*)` queries on
/// one connection (a scan of `users` and one of `groups`' primary key).
pub fn population(conn: &mut DbConnection) -> Result<Population, StoreError> {
    let live = |conn: &mut DbConnection, active: bool| -> Result<i64, StoreError> {
        Ok(users::table
            .filter(users::deleted_at.is_null())
            .filter(users::active.eq(active))
            .count()
            .get_result(conn)?)
    };
    Ok(Population {
        active_users: live(conn, true)?,
        suspended_users: live(conn, false)?,
        deleted_users: users::table
            .filter(users::deleted_at.is_not_null())
            .count()
            .get_result(conn)?,
        groups: groups::table.count().get_result(conn)?,
    })
}
