//! Settings an operator changes at run time (deprovisioning policy, page
//! sizes), in one versioned row: the version is the ETag, and an update
//! names the version it was based on, so two administrators cannot
//! silently overwrite each other (RFC 7232 §3.1 `If-Match`).

use diesel::prelude::*;

use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::admin::runtime_settings;
use crate::error::StoreError;

/// What `DELETE /Users/{id}` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deprovisioning {
    /// The user is removed at once.
    Hard,
    /// The user is suspended and kept for the retention period, then purged.
    Soft,
}

impl Deprovisioning {
    /// The stored keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovisioning::Hard => "hard",
            Deprovisioning::Soft => "soft",
        }
    }

    /// Parses the stored keyword.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "hard" => Some(Deprovisioning::Hard),
            "soft" => Some(Deprovisioning::Soft),
            _ => None,
        }
    }
}

/// The values an update sets (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsValues {
    /// Deprovisioning policy.
    pub deprovisioning: Deprovisioning,
    /// Days a soft-deleted user is kept.
    pub soft_delete_retention_days: i32,
    /// Page size when a list request gives no `count`.
    pub default_page_size: i32,
    /// Largest page size.
    pub max_page_size: i32,
    /// Days the change log keeps a row (the retention purge deletes older
    /// ones).
    pub change_log_retention_days: i32,
    /// Failure ratio (percent, 1–100) of a credential's recent SCIM
    /// requests at which the quarantine warning is raised
    /// ([`crate::admin::health`]).
    pub health_failure_percent: i32,
    /// Minutes without any SCIM request, while synchronization is
    /// enabled, after which the silence warning is raised.
    pub health_silence_minutes: i32,
    /// How many of a credential's newest requests make its recent window
    /// (the failure ratio is taken over it).
    pub health_window_requests: i32,
    /// The recent window covers at least these last minutes (all of their
    /// requests, when they are more than `health_window_requests`).
    pub health_window_minutes: i32,
}

/// The stored settings with their version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// The values.
    pub values: SettingsValues,
    /// The version (the ETag).
    pub version: i64,
    /// Last change, if ever changed.
    pub updated_at: Option<String>,
    /// Who made the last change.
    pub updated_by: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = runtime_settings)]
struct Row {
    deprovisioning: String,
    soft_delete_retention_days: i32,
    default_page_size: i32,
    max_page_size: i32,
    version: i64,
    updated_at: Option<String>,
    updated_by: Option<String>,
    change_log_retention_days: i32,
    health_failure_percent: i32,
    health_silence_minutes: i32,
    health_window_requests: i32,
    health_window_minutes: i32,
}

/// The settings the SCIM API applies, as read on every request together
/// with the User Synchronization state ([`crate::admin::sync::scim_gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimRuntime {
    /// The organization whose gate was read: the one every repository
    /// call of the request is scoped to.
    pub org: OrgId,
    /// What `DELETE /Users/{id}` does.
    pub deprovisioning: Deprovisioning,
    /// Page size when a list request gives no `count` (at least 1, at most
    /// `max_page_size`).
    pub default_page_size: i64,
    /// Largest page size (at least 1).
    pub max_page_size: i64,
}

impl ScimRuntime {
    /// From stored values; a missing row means the defaults. Page sizes
    /// edited by hand into nonsense are brought into range rather than
    /// failing every request (the admin API validates them).
    pub(crate) fn from_stored(
        org: OrgId,
        deprovisioning: Option<&str>,
        default_page_size: Option<i32>,
        max_page_size: Option<i32>,
    ) -> Result<Self, StoreError> {
        let defaults = default_settings();
        let deprovisioning = match deprovisioning {
            None => defaults.deprovisioning,
            Some(raw) => Deprovisioning::parse(raw).ok_or_else(|| {
                StoreError::internal(
                    "runtime_settings.deprovisioning holds an unknown policy",
                    &raw,
                )
            })?,
        };
        let max_page_size = i64::from(max_page_size.unwrap_or(defaults.max_page_size)).max(1);
        let default_page_size = i64::from(default_page_size.unwrap_or(defaults.default_page_size))
            .clamp(1, max_page_size);
        Ok(ScimRuntime {
            org,
            deprovisioning,
            default_page_size,
            max_page_size,
        })
    }

    /// The page size of a list request asking for `count` results (RFC 7644
    /// §3.4.2.4): the default without one, negative means 0, and more than
    /// the maximum is capped (the response says how many came).
    pub fn page_size(&self, count: Option<i64>) -> i64 {
        count
            .unwrap_or(self.default_page_size)
            .clamp(0, self.max_page_size)
    }
}

/// The defaults the migration installs.
pub fn default_settings() -> SettingsValues {
    SettingsValues {
        deprovisioning: Deprovisioning::Hard,
        soft_delete_retention_days: 30,
        default_page_size: 100,
        max_page_size: 1000,
        change_log_retention_days: 90,
        health_failure_percent: 40,
        health_silence_minutes: 120,
        health_window_requests: 100,
        health_window_minutes: 15,
    }
}

/// The organization's current settings.
pub fn get_runtime_settings(
    conn: &mut DbConnection,
    org: OrgId,
) -> Result<RuntimeSettings, StoreError> {
    let row: Option<Row> = runtime_settings::table
        .filter(runtime_settings::id.eq(org.0))
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(RuntimeSettings {
            values: default_settings(),
            version: 0,
            updated_at: None,
            updated_by: None,
        });
    };
    let deprovisioning = Deprovisioning::parse(&row.deprovisioning).ok_or_else(|| {
        StoreError::internal(
            "runtime_settings.deprovisioning holds an unknown policy",
            &row.deprovisioning,
        )
    })?;
    Ok(RuntimeSettings {
        values: SettingsValues {
            deprovisioning,
            soft_delete_retention_days: row.soft_delete_retention_days,
            default_page_size: row.default_page_size,
            max_page_size: row.max_page_size,
            change_log_retention_days: row.change_log_retention_days,
            health_failure_percent: row.health_failure_percent,
            health_silence_minutes: row.health_silence_minutes,
            health_window_requests: row.health_window_requests,
            health_window_minutes: row.health_window_minutes,
        },
        version: row.version,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
    })
}

/// Replaces the organization's settings if their version is still `expected_version`
/// (else `PreconditionFailed`), bumping the version. Run inside
/// `Store::write`.
pub fn update_runtime_settings(
    conn: &mut DbConnection,
    org: OrgId,
    values: &SettingsValues,
    expected_version: i64,
    actor: &str,
) -> Result<RuntimeSettings, StoreError> {
    let now = scim_core::datetime::now();
    let current = get_runtime_settings(conn, org)?;
    if current.version != expected_version {
        return Err(StoreError::PreconditionFailed);
    }
    let set = (
        runtime_settings::deprovisioning.eq(values.deprovisioning.as_str()),
        runtime_settings::soft_delete_retention_days.eq(values.soft_delete_retention_days),
        runtime_settings::default_page_size.eq(values.default_page_size),
        runtime_settings::max_page_size.eq(values.max_page_size),
        runtime_settings::change_log_retention_days.eq(values.change_log_retention_days),
        runtime_settings::health_failure_percent.eq(values.health_failure_percent),
        runtime_settings::health_silence_minutes.eq(values.health_silence_minutes),
        runtime_settings::health_window_requests.eq(values.health_window_requests),
        runtime_settings::health_window_minutes.eq(values.health_window_minutes),
        runtime_settings::version.eq(expected_version + 1),
        runtime_settings::updated_at.eq(&now),
        runtime_settings::updated_by.eq(actor),
    );
    // The version condition makes the write race-proof on PostgreSQL, where
    // two transactions may both have read the same version.
    let updated = diesel::update(
        runtime_settings::table
            .filter(runtime_settings::id.eq(org.0))
            .filter(runtime_settings::version.eq(expected_version)),
    )
    .set(set)
    .execute(conn)?;
    if updated == 0 {
        if expected_version != 0 {
            return Err(StoreError::PreconditionFailed);
        }
        // Version 0 is a missing row (deleted by hand): recreate it.
        diesel::insert_into(runtime_settings::table)
            .values((runtime_settings::id.eq(org.0), set))
            .execute(conn)?;
    }
    get_runtime_settings(conn, org)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    #[test]
    fn versioned_updates() {
        for db in backends() {
            let store = db.store();
            let s = store
                .read(|c| get_runtime_settings(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            assert_eq!(s.values, default_settings());
            assert_eq!(s.version, 1);
            let new = SettingsValues {
                deprovisioning: Deprovisioning::Soft,
                soft_delete_retention_days: 7,
                default_page_size: 50,
                max_page_size: 500,
                change_log_retention_days: 30,
                health_failure_percent: 25,
                health_silence_minutes: 60,
                health_window_requests: 20,
                health_window_minutes: 5,
            };
            let s2 = store
                .write(|c| {
                    update_runtime_settings(c, crate::db::org::OrgId::DEFAULT, &new, 1, "admin:a")
                })
                .unwrap();
            assert_eq!(s2.values, new);
            assert_eq!(s2.version, 2);
            assert_eq!(s2.updated_by.as_deref(), Some("admin:a"));
            // A stale version is refused and changes nothing.
            let err = store
                .write(|c| {
                    update_runtime_settings(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &default_settings(),
                        1,
                        "admin:b",
                    )
                })
                .unwrap_err();
            assert!(matches!(err, StoreError::PreconditionFailed));
            assert_eq!(
                store
                    .read(|c| get_runtime_settings(c, crate::db::org::OrgId::DEFAULT))
                    .unwrap(),
                s2
            );
        }
    }

    #[test]
    fn policy_keywords_round_trip() {
        for p in [Deprovisioning::Hard, Deprovisioning::Soft] {
            assert_eq!(Deprovisioning::parse(p.as_str()), Some(p));
        }
        assert_eq!(Deprovisioning::parse("HARD"), None);
    }
}
