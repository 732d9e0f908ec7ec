//! The merge of every replica's traffic per credential, and the warnings
//! drawn from it (see the parent module for what raises them).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::OffsetDateTime;

use super::{
    millis, Credential, Cycle, Failure, FailureClass, Traffic, TrafficRow, CYCLE_GAP_MS,
    LAST_FAILURES, MAX_WINDOW_MINUTES, MAX_WINDOW_REQUESTS, MIN_SAMPLE, MIN_WINDOW_REQUESTS,
};

/// What an assessment is made against.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// `health_failure_percent`.
    pub failure_percent: i32,
    /// `health_silence_minutes`.
    pub silence_minutes: i32,
    /// `health_window_requests`: the recent window's newest requests.
    pub window_requests: i32,
    /// `health_window_minutes`: the recent window covers at least these
    /// last minutes.
    pub window_minutes: i32,
    /// Whether User Synchronization is enabled.
    pub sync_enabled: bool,
    /// Since when (RFC 3339), if enabled.
    pub sync_enabled_at: Option<String>,
}

/// The likely cause of a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The requests get 403: User Synchronization is disabled.
    SyncDisabled,
    /// The credential is known but revoked or expired.
    TokenRevokedOrExpired,
    /// A bearer token scimd does not know (a wrong or deleted secret).
    UnknownToken,
    /// 5xx: the database is unavailable (or an internal error).
    DatabaseUnavailable,
    /// 429: the credential is over its rate limit.
    RateLimited,
    /// The same request keeps being refused.
    ValidationError,
    /// No request arrived for `health_silence_minutes`.
    Silence,
}

impl Cause {
    /// The metric label and API keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::SyncDisabled => "sync_disabled",
            Cause::TokenRevokedOrExpired => "token_revoked_or_expired",
            Cause::UnknownToken => "unknown_token",
            Cause::DatabaseUnavailable => "database_unavailable",
            Cause::RateLimited => "rate_limited",
            Cause::ValidationError => "validation_error",
            Cause::Silence => "silence",
        }
    }

    fn of(failure: &Failure, credential: &Credential) -> Cause {
        match failure.class {
            FailureClass::Unauthorized if failure.refusal.is_some() => Cause::TokenRevokedOrExpired,
            FailureClass::Unauthorized if credential.kind != "unknown" => {
                Cause::TokenRevokedOrExpired
            }
            FailureClass::Unauthorized => Cause::UnknownToken,
            FailureClass::Forbidden => Cause::SyncDisabled,
            FailureClass::ServerError => Cause::DatabaseUnavailable,
            FailureClass::Throttled => Cause::RateLimited,
            FailureClass::Rejected => Cause::ValidationError,
        }
    }
}

/// A warning about a credential (or, for silence, about all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The likely cause.
    pub cause: Cause,
    /// What is wrong, in a sentence.
    pub message: String,
    /// What to do.
    pub action: String,
}

/// The recent window of a credential, merged across replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent {
    /// Requests in it.
    pub requests: u64,
    /// Failed requests in it.
    pub failures: u64,
    /// Its oldest request (ms), if any.
    pub since_ms: Option<i64>,
}

impl Recent {
    /// The failure ratio in percent (0 without requests).
    pub fn failure_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 * 100.0 / self.requests as f64
        }
    }
}

/// One credential's traffic merged across replicas, and its warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHealth {
    /// The credential.
    pub credential: Credential,
    /// Its name, when known.
    pub name: Option<String>,
    /// Its newest request (ms).
    pub last_ms: i64,
    /// The current cycle (if its last request is within the gap) or the
    /// last one.
    pub cycle: Cycle,
    /// Whether [`CredentialHealth::cycle`] is still going on.
    pub cycle_in_progress: bool,
    /// The cycle before it, if known.
    pub previous_cycle: Option<Cycle>,
    /// The recent window.
    pub recent: Recent,
    /// The last failed requests, newest first.
    pub failures: Vec<Failure>,
    /// The failure warning, if raised.
    pub warning: Option<Warning>,
}

/// The provisioning health of every credential seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Per credential, the most recently active first.
    pub credentials: Vec<CredentialHealth>,
    /// The newest request of any credential (ms).
    pub last_contact_ms: Option<i64>,
    /// The silence warning, if raised.
    pub silence: Option<Warning>,
}

impl Assessment {
    /// Every warning raised, with the credential it is about (`None`:
    /// silence, about all of them).
    pub fn warnings(&self) -> impl Iterator<Item = (Option<&CredentialHealth>, &Warning)> {
        self.silence.iter().map(|w| (None, w)).chain(
            self.credentials
                .iter()
                .filter_map(|c| c.warning.as_ref().map(|w| (Some(c), w))),
        )
    }
}

/// Merges the rows of every replica per credential, and raises the
/// warnings as of `now`.
pub fn assess(rows: &[TrafficRow], thresholds: &Thresholds, now: OffsetDateTime) -> Assessment {
    let now_ms = millis(now);
    let mut by_credential: HashMap<&Credential, Vec<&Traffic>> = HashMap::new();
    for row in rows {
        by_credential
            .entry(&row.credential)
            .or_default()
            .push(&row.traffic);
    }
    let mut credentials: Vec<CredentialHealth> = by_credential
        .into_iter()
        .filter(|(_, t)| t.iter().any(|t| t.current.requests > 0))
        .map(|(credential, traffic)| merge(credential, &traffic, thresholds, now_ms))
        .collect();
    credentials.sort_by(|a, b| {
        b.last_ms
            .cmp(&a.last_ms)
            .then_with(|| a.credential.cmp(&b.credential))
    });
    let last_contact_ms = credentials.iter().map(|c| c.last_ms).max();
    let silence = silence(last_contact_ms, thresholds, now_ms);
    Assessment {
        credentials,
        last_contact_ms,
        silence,
    }
}

fn merge(
    credential: &Credential,
    traffic: &[&Traffic],
    thresholds: &Thresholds,
    now_ms: i64,
) -> CredentialHealth {
    let name = traffic
        .iter()
        .max_by_key(|t| t.last_ms())
        .and_then(|t| t.name.clone());
    let last_ms = traffic.iter().map(|t| t.last_ms()).max().unwrap_or(0);
    // The cycle: the newest replica's, joined by every replica's cycle
    // that overlaps it; the one before it likewise.
    let mut cycles: Vec<&Cycle> = traffic
        .iter()
        .flat_map(|t| std::iter::once(&t.current).chain(t.previous.iter()))
        .filter(|c| c.requests > 0)
        .collect();
    cycles.sort_by_key(|c| std::cmp::Reverse(c.last_ms));
    let join = |cycles: &mut Vec<&Cycle>| -> Option<Cycle> {
        let first = cycles.first().copied()?;
        let mut merged = first.clone();
        cycles.remove(0);
        cycles.retain(|c| {
            if merged.touches(c) {
                merged.add(c);
                false
            } else {
                true
            }
        });
        Some(merged)
    };
    let cycle = join(&mut cycles).unwrap_or_default();
    let previous_cycle = join(&mut cycles);
    let recent = recent(traffic, thresholds, now_ms);
    let mut failures: Vec<Failure> = traffic
        .iter()
        .flat_map(|t| t.failures.iter().cloned())
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
    failures.truncate(LAST_FAILURES);
    let warning = failure_warning(credential, &recent, &failures, thresholds);
    CredentialHealth {
        credential: credential.clone(),
        name,
        last_ms,
        cycle_in_progress: now_ms - cycle.last_ms <= CYCLE_GAP_MS,
        cycle,
        previous_cycle,
        recent,
        failures,
        warning,
    }
}

/// The last `window_requests` requests of every replica together, or the
/// last `window_minutes` minutes' when they are more. A window stored out
/// of range (edited by hand) is brought within what the record keeps.
fn recent(traffic: &[&Traffic], thresholds: &Thresholds, now_ms: i64) -> Recent {
    let window_requests = usize::try_from(thresholds.window_requests)
        .unwrap_or(MIN_WINDOW_REQUESTS)
        .clamp(MIN_WINDOW_REQUESTS, MAX_WINDOW_REQUESTS);
    let window_minutes = i64::from(thresholds.window_minutes).clamp(1, MAX_WINDOW_MINUTES);
    let since_minute = now_ms.div_euclid(60_000) - window_minutes;
    let (mut requests, mut failures) = (0, 0);
    for (_, r, f) in traffic
        .iter()
        .flat_map(|t| t.minutes.iter())
        .filter(|(m, _, _)| *m > since_minute)
    {
        requests += r;
        failures += f;
    }
    if requests >= window_requests as u64 {
        return Recent {
            requests,
            failures,
            since_ms: Some((since_minute + 1) * 60_000),
        };
    }
    let mut all: Vec<(i64, bool)> = traffic
        .iter()
        .flat_map(|t| t.recent.iter().copied())
        .collect();
    all.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    all.truncate(window_requests);
    Recent {
        requests: all.len() as u64,
        failures: all.iter().filter(|(_, failed)| *failed).count() as u64,
        since_ms: all.last().map(|(at, _)| *at),
    }
}

fn failure_warning(
    credential: &Credential,
    recent: &Recent,
    failures: &[Failure],
    thresholds: &Thresholds,
) -> Option<Warning> {
    let threshold = f64::from(thresholds.failure_percent.clamp(1, 100));
    if recent.requests < MIN_SAMPLE || recent.failure_percent() < threshold {
        return None;
    }
    // The cause: the most frequent among the window's failures (those
    // kept); for validation errors, the most frequent scimType + detail.
    let since = recent.since_ms.unwrap_or(0);
    let in_window: Vec<&Failure> = failures.iter().filter(|f| f.at_ms >= since).collect();
    let mut counts: BTreeMap<Cause, usize> = BTreeMap::new();
    for f in &in_window {
        *counts.entry(Cause::of(f, credential)).or_default() += 1;
    }
    let cause = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map_or(Cause::ValidationError, |(c, _)| *c);
    let ratio = format!(
        "{:.0}% of the last {} requests failed",
        recent.failure_percent(),
        recent.requests
    );
    let (message, action) = match cause {
        Cause::SyncDisabled => (
            format!("{ratio}: User Synchronization is disabled, so every SCIM request gets 403"),
            "Enable User Synchronization (console: User Synchronization), or pause the provisioning job in the identity provider until you do.".to_owned(),
        ),
        Cause::TokenRevokedOrExpired => (
            format!("{ratio}: the identity provider presents a token that was revoked or has expired (401)"),
            "Create a new SCIM token (console: Tokens) or authorize the OAuth client again, and save it in the identity provider's provisioning settings (Entra: Admin Credentials, then Test Connection).".to_owned(),
        ),
        Cause::UnknownToken => (
            format!("{ratio}: requests carry a bearer token scimd does not know (401)"),
            "Check the Secret Token in the identity provider's provisioning settings: create a new SCIM token (console: Tokens), save it there and Test Connection.".to_owned(),
        ),
        Cause::DatabaseUnavailable => (
            format!("{ratio}: scimd answered 5xx (the database unavailable or saturated)"),
            "Check the database (GET /readyz, scimd's log) and its connection settings; the identity provider retries once scimd answers again.".to_owned(),
        ),
        Cause::RateLimited => (
            format!("{ratio}: the credential is over its rate limit (429)"),
            "Raise scim.rate_limit in scimd's configuration, or lower the identity provider's request rate.".to_owned(),
        ),
        Cause::ValidationError | Cause::Silence => {
            let mut pairs: BTreeMap<(Option<&str>, &str), usize> = BTreeMap::new();
            for f in in_window
                .iter()
                .filter(|f| f.class == FailureClass::Rejected)
            {
                *pairs
                    .entry((f.scim_type.as_deref(), f.detail.as_str()))
                    .or_default() += 1;
            }
            let top = pairs
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|((t, d), n)| (t.unwrap_or("no scimType"), *d, *n));
            let message = match top {
                Some((scim_type, detail, n)) => format!(
                    "{ratio}: a recurring validation error ({n} times {scim_type}: {detail})"
                ),
                None => format!("{ratio}: scimd refused the requests (4xx)"),
            };
            (
                message,
                "Fix the attribute mapping in the identity provider (Entra: Provisioning, Mappings) so that it sends what the error asks for; the failed requests below show each one.".to_owned(),
            )
        }
    };
    Some(Warning {
        cause,
        message,
        action,
    })
}

fn silence(last_contact_ms: Option<i64>, thresholds: &Thresholds, now_ms: i64) -> Option<Warning> {
    if !thresholds.sync_enabled {
        return None;
    }
    let limit_ms = i64::from(thresholds.silence_minutes.max(1)) * 60_000;
    // Never contacted: silent since synchronization was enabled.
    let since_ms = last_contact_ms.or_else(|| {
        let at = thresholds.sync_enabled_at.as_deref()?;
        let at = OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
        Some(millis(at))
    })?;
    let silent_ms = now_ms - since_ms;
    if silent_ms < limit_ms {
        return None;
    }
    let minutes = silent_ms / 60_000;
    let message = match last_contact_ms {
        Some(_) => format!(
            "No SCIM request for {} h {:02} min while User Synchronization is enabled (threshold {} min): the provisioning job may be stopped or in quarantine",
            minutes / 60,
            minutes % 60,
            thresholds.silence_minutes
        ),
        None => format!(
            "No SCIM request since User Synchronization was enabled {} h {:02} min ago (threshold {} min): the provisioning job may not be started",
            minutes / 60,
            minutes % 60,
            thresholds.silence_minutes
        ),
    };
    Some(Warning {
        cause: Cause::Silence,
        message,
        action: "Check the provisioning job in the identity provider (Entra: Enterprise application, Provisioning: its status, quarantine and provisioning logs); restart provisioning once the cause is fixed.".to_owned(),
    })
}
