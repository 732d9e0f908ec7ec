//! Provisioning health: each identity-provider credential's SCIM traffic,
//! and the quarantine early warning drawn from it.
//!
//! Microsoft Entra puts a provisioning job in quarantine when most of its
//! requests fail (401/403, 5xx, timeouts), and then retries rarely. This
//! module keeps what an operator needs to see that coming:
//! - [`Traffic`]: one credential's requests as one process saw them, in
//!   memory (the SCIM API records every request into it, no database
//!   write per request): the current and the previous *cycle* (a cycle
//!   ends after [`CYCLE_GAP`] without a request; Entra's cycles are about
//!   40 minutes apart), the outcomes of its last [`MAX_WINDOW_REQUESTS`]
//!   requests, per-minute counts of the last [`MAX_WINDOW_MINUTES`]
//!   minutes, and its last [`LAST_FAILURES`] failed requests (status,
//!   `scimType`, detail; never a body or a secret).
//! - [`save_traffic`]: each process (replica) writes its records to
//!   `provisioning_traffic`, one row per (replica, credential), every few
//!   seconds; [`load_traffic`] reads every replica's rows, and
//!   [`assess`] merges them per credential and raises the warnings, so the
//!   console shows the traffic of all replicas.
//!
//! A warning is raised when a credential's *recent requests* (its last
//! `health_window_requests` requests, or all of the last
//! `health_window_minutes` minutes' when they are more; at least
//! [`MIN_SAMPLE`]) fail at or above `health_failure_percent` (run-time
//! settings, 100 requests, 15 minutes and 40% by default), or when no SCIM
//! request at all arrived for `health_silence_minutes` (120 by default)
//! while synchronization is enabled. The record keeps what the widest
//! window allowed needs, so a changed window applies at once to the
//! traffic already recorded.

use std::collections::{BTreeMap, VecDeque};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::connection::DbConnection;
use crate::db::schema::admin::provisioning_traffic;
use crate::db::schema::oauth::{oauth_clients, oauth_grants, oauth_tokens};
use crate::db::schema::scim::scim_tokens;
use crate::error::StoreError;

/// Silence that ends a cycle: Entra's cycles are ~40 minutes apart, and
/// within one it sends requests seconds apart.
pub const CYCLE_GAP_MS: i64 = 10 * 60 * 1000;
/// [`CYCLE_GAP_MS`] in minutes, for the documentation and the console.
pub const CYCLE_GAP: i64 = 10;
/// The largest `health_window_requests`: how many of a credential's
/// newest outcomes the record keeps (about 16 bytes each in memory, 22 in
/// the saved JSON).
pub const MAX_WINDOW_REQUESTS: usize = 1000;
/// The smallest `health_window_requests` (a window is at least
/// [`MIN_SAMPLE`] requests, and a few more to be a ratio worth a warning).
pub const MIN_WINDOW_REQUESTS: usize = 10;
/// The largest `health_window_minutes`: the per-minute counts the record
/// keeps.
pub const MAX_WINDOW_MINUTES: i64 = 60;
/// Fewer recent requests than this raise no failure warning (one failed
/// request is not a trend).
pub const MIN_SAMPLE: u64 = 5;
/// Failed requests kept per credential (per replica; the merge keeps the
/// newest).
pub const LAST_FAILURES: usize = 50;
/// Longest detail kept of a failed request.
const DETAIL_CHARS: usize = 300;
/// Rows whose newest request is older than this are deleted when a
/// replica saves its own.
const KEEP_DAYS: i64 = 30;

/// Who sent a request: the change log's actor kinds for a credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Credential {
    /// `scim_token`, `oauth_client`, or `unknown` (a bearer token scimd
    /// does not know, or none at all).
    pub kind: String,
    /// The token's id or the OAuth client's `client_id`; empty for
    /// `unknown`.
    pub id: String,
}

impl Credential {
    /// A SCIM token by its id.
    pub fn scim_token(id: &str) -> Self {
        Credential {
            kind: "scim_token".into(),
            id: id.into(),
        }
    }

    /// An OAuth client by its `client_id`.
    pub fn oauth_client(id: &str) -> Self {
        Credential {
            kind: "oauth_client".into(),
            id: id.into(),
        }
    }

    /// Requests without a token scimd knows.
    pub fn unknown() -> Self {
        Credential {
            kind: "unknown".into(),
            id: String::new(),
        }
    }
}

/// Why a known credential was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Revoked by an administrator (a SCIM token, an OAuth grant or
    /// access token).
    Revoked,
    /// Past its expiry.
    Expired,
}

/// A credential scimd knows but refused: who it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The token or the OAuth client.
    pub credential: Credential,
    /// Its name.
    pub name: String,
    /// Why it was refused.
    pub refusal: Refusal,
}

/// The credential behind a bearer `secret` that failed authentication, if
/// scimd knows it (a revoked or expired SCIM token or OAuth access
/// token): asked only after a 401, so that the warning can say "token
/// revoked or expired" rather than "unknown token".
pub fn identify_refused(
    conn: &mut DbConnection,
    secret: &str,
    now: &str,
) -> Result<Option<Refused>, StoreError> {
    let hash = crate::admin::tokens::hash_secret(secret);
    let token: Option<(String, String, Option<String>, Option<String>)> = scim_tokens::table
        .filter(scim_tokens::secret_hash.eq(&hash))
        .select((
            scim_tokens::id,
            scim_tokens::name,
            scim_tokens::revoked_at,
            scim_tokens::expires_at,
        ))
        .first(conn)
        .optional()?;
    if let Some((id, name, revoked_at, expires_at)) = token {
        let refusal = if revoked_at.is_some() {
            Refusal::Revoked
        } else if expires_at.as_deref().is_some_and(|e| e <= now) {
            Refusal::Expired
        } else {
            return Ok(None);
        };
        return Ok(Some(Refused {
            credential: Credential::scim_token(&id),
            name,
            refusal,
        }));
    }
    // (expires_at, the token's revoked_at, the grant's revoked_at, client
    // id, client name)
    type Access = (String, Option<String>, Option<String>, String, String);
    let access: Option<Access> = oauth_tokens::table
        .inner_join(oauth_grants::table.inner_join(oauth_clients::table))
        .filter(oauth_tokens::token_hash.eq(&hash))
        .select((
            oauth_tokens::expires_at,
            oauth_tokens::revoked_at,
            oauth_grants::revoked_at,
            oauth_clients::id,
            oauth_clients::name,
        ))
        .first(conn)
        .optional()?;
    let Some((expires_at, token_revoked, grant_revoked, client_id, name)) = access else {
        return Ok(None);
    };
    let refusal = if token_revoked.is_some() || grant_revoked.is_some() {
        Refusal::Revoked
    } else if expires_at.as_str() <= now {
        Refusal::Expired
    } else {
        return Ok(None);
    };
    Ok(Some(Refused {
        credential: Credential::oauth_client(&client_id),
        name,
        refusal,
    }))
}

/// What kind of failure a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// 401: no valid credential.
    Unauthorized,
    /// 403: User Synchronization is disabled.
    Forbidden,
    /// 429: over the credential's rate limit.
    Throttled,
    /// 5xx: the database is unavailable, or an internal error.
    ServerError,
    /// Any other 4xx: a request scimd refused (with a `scimType` when
    /// RFC 7644 §3.12 gives one).
    Rejected,
}

impl FailureClass {
    /// The class of an HTTP status, or `None` for a success (< 400).
    pub fn of(status: u16) -> Option<Self> {
        match status {
            0..=399 => None,
            401 => Some(FailureClass::Unauthorized),
            403 => Some(FailureClass::Forbidden),
            429 => Some(FailureClass::Throttled),
            500.. => Some(FailureClass::ServerError),
            _ => Some(FailureClass::Rejected),
        }
    }
}

/// One request, as the SCIM API saw it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// When it was answered.
    pub at: OffsetDateTime,
    /// The HTTP method.
    pub method: &'a str,
    /// The route template (`/Users/{id}`): never the raw path.
    pub route: &'a str,
    /// `create`, `replace`, `patch`, `delete`, `get`, `list`, … .
    pub operation: &'a str,
    /// The status answered.
    pub status: u16,
    /// The error's `scimType`, if any.
    pub scim_type: Option<&'a str>,
    /// The error's detail, if it failed.
    pub detail: Option<&'a str>,
    /// Why a known credential was refused (401 only).
    pub refusal: Option<Refusal>,
}

/// One failed request, as kept (no body, no header, no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// When (milliseconds since the Unix epoch).
    pub at_ms: i64,
    /// The HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
    /// The status.
    pub status: u16,
    /// The class of the failure.
    pub class: FailureClass,
    /// The RFC 7644 §3.12 `scimType`, if any.
    pub scim_type: Option<String>,
    /// The error's detail (at most 300 characters).
    pub detail: String,
    /// Why a known credential was refused (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
}

/// The counts of one provisioning cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    /// First request (ms since the epoch).
    pub started_ms: i64,
    /// Last request (ms since the epoch).
    pub last_ms: i64,
    /// Requests.
    pub requests: u64,
    /// Successful creates (`POST`).
    pub creates: u64,
    /// Successful updates (`PUT`, `PATCH`).
    pub updates: u64,
    /// Successful deletes.
    pub deletes: u64,
    /// Failed requests.
    pub failures: u64,
    /// Failed requests by class.
    #[serde(default)]
    pub failures_by_class: BTreeMap<FailureClass, u64>,
}

impl Cycle {
    fn add(&mut self, other: &Cycle) {
        self.started_ms = self.started_ms.min(other.started_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.requests += other.requests;
        self.creates += other.creates;
        self.updates += other.updates;
        self.deletes += other.deletes;
        self.failures += other.failures;
        for (class, n) in &other.failures_by_class {
            *self.failures_by_class.entry(*class).or_default() += n;
        }
    }

    /// Whether `other` belongs to the same cycle (it overlaps this one,
    /// give or take the gap that ends a cycle).
    fn touches(&self, other: &Cycle) -> bool {
        other.started_ms <= self.last_ms + CYCLE_GAP_MS
            && other.last_ms + CYCLE_GAP_MS >= self.started_ms
    }
}

/// One credential's traffic as one process saw it: recorded per request
/// in memory, saved to `provisioning_traffic` as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// The credential's name, when known.
    pub name: Option<String>,
    /// The cycle of the newest request.
    pub current: Cycle,
    /// The cycle before it, if any.
    pub previous: Option<Cycle>,
    /// The last [`MAX_WINDOW_REQUESTS`] requests: (ms, failed).
    pub recent: VecDeque<(i64, bool)>,
    /// Per-minute (minute since the epoch, requests, failures) of the last
    /// [`MAX_WINDOW_MINUTES`] minutes with requests.
    pub minutes: VecDeque<(i64, u64, u64)>,
    /// The last [`LAST_FAILURES`] failed requests, oldest first.
    pub failures: VecDeque<Failure>,
}

impl Traffic {
    /// Counts `req` (O(1): a few integer updates and bounded pushes).
    pub fn record(&mut self, req: &Request<'_>) {
        let at_ms = millis(req.at);
        let class = FailureClass::of(req.status);
        if self.current.requests > 0 && at_ms - self.current.last_ms > CYCLE_GAP_MS {
            self.previous = Some(std::mem::take(&mut self.current));
        }
        let cycle = &mut self.current;
        if cycle.requests == 0 {
            cycle.started_ms = at_ms;
        }
        cycle.last_ms = cycle.last_ms.max(at_ms);
        cycle.requests += 1;
        match class {
            Some(class) => {
                cycle.failures += 1;
                *cycle.failures_by_class.entry(class).or_default() += 1;
            }
            None => match req.operation {
                "create" => cycle.creates += 1,
                "replace" | "patch" => cycle.updates += 1,
                "delete" => cycle.deletes += 1,
                _ => {}
            },
        }
        self.recent.push_back((at_ms, class.is_some()));
        while self.recent.len() > MAX_WINDOW_REQUESTS {
            self.recent.pop_front();
        }
        let minute = at_ms.div_euclid(60_000);
        match self.minutes.back_mut() {
            Some((m, requests, failures)) if *m == minute => {
                *requests += 1;
                *failures += u64::from(class.is_some());
            }
            _ => self
                .minutes
                .push_back((minute, 1, u64::from(class.is_some()))),
        }
        while self
            .minutes
            .front()
            .is_some_and(|(m, _, _)| *m <= minute - MAX_WINDOW_MINUTES)
        {
            self.minutes.pop_front();
        }
        if let Some(class) = class {
            self.failures.push_back(Failure {
                at_ms,
                method: req.method.to_owned(),
                route: req.route.to_owned(),
                status: req.status,
                class,
                scim_type: req.scim_type.map(str::to_owned),
                detail: req
                    .detail
                    .unwrap_or("")
                    .chars()
                    .take(DETAIL_CHARS)
                    .collect(),
                refusal: req.refusal,
            });
            while self.failures.len() > LAST_FAILURES {
                self.failures.pop_front();
            }
        }
    }

    /// The newest request (ms since the epoch).
    pub fn last_ms(&self) -> i64 {
        self.current.last_ms
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// An RFC 3339 date-time (UTC, milliseconds) from ms since the epoch.
pub fn format_ms(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    scim_core::datetime::format(at)
}

/// One replica's saved record of one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRow {
    /// The replica that saved it.
    pub replica_id: String,
    /// The credential.
    pub credential: Credential,
    /// What the replica saw.
    pub traffic: Traffic,
}

/// Replaces the rows of `replica_id` with `records`, and deletes every
/// replica's rows without a request for 30 days (a stopped replica's
/// rows age out). Run inside `Store::write`.
///
/// Not a change log event: this is the record of requests, not a change
/// to a resource or a setting.
pub fn save_traffic(
    conn: &mut DbConnection,
    replica_id: &str,
    now: OffsetDateTime,
    records: &[(Credential, Traffic)],
) -> Result<(), StoreError> {
    let now_text = scim_core::datetime::format(now);
    let expired = scim_core::datetime::format(now - time::Duration::days(KEEP_DAYS));
    diesel::delete(
        provisioning_traffic::table.filter(
            provisioning_traffic::replica_id
                .eq(replica_id)
                .or(provisioning_traffic::last_request_at.lt(&expired)),
        ),
    )
    .execute(conn)?;
    for (credential, traffic) in records {
        let state = serde_json::to_string(traffic)
            .map_err(|e| StoreError::internal("serialising provisioning traffic", &e))?;
        diesel::insert_into(provisioning_traffic::table)
            .values((
                provisioning_traffic::replica_id.eq(replica_id),
                provisioning_traffic::credential_kind.eq(&credential.kind),
                provisioning_traffic::credential_id.eq(&credential.id),
                provisioning_traffic::credential_name.eq(&traffic.name),
                provisioning_traffic::last_request_at.eq(format_ms(traffic.last_ms())),
                provisioning_traffic::state.eq(state),
                provisioning_traffic::updated_at.eq(&now_text),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The credentials of the organization `org`: its SCIM tokens' ids and
/// its OAuth clients' `client_id`s, as [`Credential`]s.
pub fn org_credentials(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
) -> Result<Vec<Credential>, StoreError> {
    let tokens: Vec<String> = scim_tokens::table
        .filter(scim_tokens::org_id.eq(org.0))
        .select(scim_tokens::id)
        .load(conn)?;
    let clients: Vec<String> = oauth_clients::table
        .filter(oauth_clients::org_id.eq(org.0))
        .select(oauth_clients::id)
        .load(conn)?;
    Ok(tokens
        .iter()
        .map(|id| Credential::scim_token(id))
        .chain(clients.iter().map(|id| Credential::oauth_client(id)))
        .collect())
}

/// Every replica's rows. A row whose state cannot be read (written by
/// another version of scimd) is skipped.
pub fn load_traffic(conn: &mut DbConnection) -> Result<Vec<TrafficRow>, StoreError> {
    let rows: Vec<(String, String, String, String)> = provisioning_traffic::table
        .select((
            provisioning_traffic::replica_id,
            provisioning_traffic::credential_kind,
            provisioning_traffic::credential_id,
            provisioning_traffic::state,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(replica_id, kind, id, state)| {
            let traffic = serde_json::from_str(&state).ok()?;
            Some(TrafficRow {
                replica_id,
                credential: Credential { kind, id },
                traffic,
            })
        })
        .collect())
}

mod assess;

pub use assess::{assess, Assessment, Cause, CredentialHealth, Recent, Thresholds, Warning};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn at(minutes: i64, seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + minutes * 60 + seconds).unwrap()
    }

    fn request(at: OffsetDateTime, status: u16, operation: &'static str) -> Request<'static> {
        Request {
            at,
            method: "POST",
            route: "/Users",
            operation,
            status,
            scim_type: (status == 400).then_some("invalidValue"),
            detail: (status >= 400).then_some("userName is required"),
            refusal: None,
        }
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            failure_percent: 40,
            silence_minutes: 120,
            window_requests: 100,
            window_minutes: 15,
            sync_enabled: true,
            sync_enabled_at: None,
        }
    }

    fn row(replica: &str, traffic: Traffic) -> TrafficRow {
        TrafficRow {
            replica_id: replica.into(),
            credential: Credential::scim_token("t1"),
            traffic,
        }
    }

    #[test]
    fn a_gap_of_ten_minutes_starts_a_new_cycle() {
        let mut t = Traffic::default();
        t.record(&request(at(0, 0), 201, "create"));
        t.record(&request(at(9, 59), 200, "patch"));
        assert_eq!(t.current.requests, 2);
        assert!(t.previous.is_none());
        t.record(&request(at(20, 0), 204, "delete"));
        let previous = t.previous.clone().unwrap();
        assert_eq!(
            (previous.requests, previous.creates, previous.updates),
            (2, 1, 1)
        );
        assert_eq!(previous.last_ms - previous.started_ms, 599_000);
        assert_eq!((t.current.requests, t.current.deletes), (1, 1));
    }

    #[test]
    fn windows_and_failures_stay_bounded() {
        let mut t = Traffic::default();
        for i in 0..3000 {
            t.record(&request(
                at(i / 20, i % 20),
                if i % 2 == 0 { 400 } else { 200 },
                "create",
            ));
        }
        assert_eq!(t.recent.len(), MAX_WINDOW_REQUESTS);
        assert_eq!(t.minutes.len(), MAX_WINDOW_MINUTES as usize);
        assert_eq!(t.failures.len(), LAST_FAILURES);
    }

    #[test]
    fn the_failure_warning_names_the_recurring_validation_error() {
        let mut t = Traffic::default();
        for i in 0..10 {
            t.record(&request(at(0, i), if i < 6 { 400 } else { 201 }, "create"));
        }
        let a = assess(&[row("r1", t.clone())], &thresholds(), at(1, 0));
        let w = a.credentials[0].warning.clone().unwrap();
        assert_eq!(w.cause, Cause::ValidationError);
        assert!(w.message.contains("60% of the last 10"), "{}", w.message);
        assert!(
            w.message.contains("invalidValue: userName is required"),
            "{}",
            w.message
        );
        // Below the threshold: no warning.
        let mut lower = thresholds();
        lower.failure_percent = 61;
        assert!(assess(&[row("r1", t)], &lower, at(1, 0)).credentials[0]
            .warning
            .is_none());
    }

    #[test]
    fn the_window_is_the_last_requests_or_the_last_minutes_when_more() {
        // 30 successes at minute 0, then 8 failures at minute 20.
        let mut t = Traffic::default();
        for i in 0..30 {
            t.record(&request(at(0, i), 201, "create"));
        }
        for i in 0..8 {
            t.record(&request(at(20, i), 400, "create"));
        }
        let rows = [row("r", t)];
        let recent_of = |th: &Thresholds| assess(&rows, th, at(21, 0)).credentials[0].clone();
        // The default window, the last 100 requests: 8 of 38 failed.
        let c = recent_of(&thresholds());
        assert_eq!((c.recent.requests, c.recent.failures), (38, 8));
        assert!(c.warning.is_none());
        // The last 10 requests (the last 15 minutes hold only 8).
        let mut narrow = thresholds();
        narrow.window_requests = 10;
        let c = recent_of(&narrow);
        assert_eq!((c.recent.requests, c.recent.failures), (10, 8));
        let w = c.warning.unwrap();
        assert!(w.message.contains("80% of the last 10"), "{}", w.message);
        // The last 30 minutes hold 38 requests, more than 10: all count.
        narrow.window_minutes = 30;
        let c = recent_of(&narrow);
        assert_eq!((c.recent.requests, c.recent.failures), (38, 8));
        assert!(c.warning.is_none());
        // A window stored out of range is brought within the record's.
        narrow.window_requests = 0;
        narrow.window_minutes = -5;
        let c = recent_of(&narrow);
        assert_eq!(c.recent.requests, MIN_WINDOW_REQUESTS as u64);
    }

    #[test]
    fn replicas_are_merged_per_credential() {
        let (mut a, mut b) = (Traffic::default(), Traffic::default());
        for i in 0..4 {
            a.record(&request(at(0, i), 201, "create"));
            b.record(&request(at(0, 30 + i), 500, "create"));
        }
        let merged = assess(&[row("a", a), row("b", b)], &thresholds(), at(1, 0));
        let c = &merged.credentials[0];
        assert_eq!(
            (c.cycle.requests, c.cycle.creates, c.cycle.failures),
            (8, 4, 4)
        );
        assert_eq!(c.recent.requests, 8);
        assert_eq!(
            c.warning.as_ref().unwrap().cause,
            Cause::DatabaseUnavailable
        );
        assert_eq!(c.failures.len(), 4);
        assert!(c.failures.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    }

    #[test]
    fn silence_is_only_a_warning_while_sync_is_enabled() {
        let mut t = Traffic::default();
        t.record(&request(at(0, 0), 200, "get"));
        let rows = [row("r", t)];
        assert!(assess(&rows, &thresholds(), at(119, 0)).silence.is_none());
        let w = assess(&rows, &thresholds(), at(121, 0)).silence.unwrap();
        assert_eq!(w.cause, Cause::Silence);
        let mut off = thresholds();
        off.sync_enabled = false;
        assert!(assess(&rows, &off, at(600, 0)).silence.is_none());
    }
}
