//! The provisioning health round of `scimd serve`: every
//! [`SAVE_EVERY`], the process saves its record of each credential's SCIM
//! traffic (`scim_server::health::Health::save`), then assesses, for every
//! organization, the traffic of every replica with its credentials
//! (`scim_admin::provisioning::assess`) and publishes the quarantine early
//! warning:
//! - a WARN log line when a warning is raised, an INFO line when it
//!   clears (once per transition, in each replica), naming the
//!   organization (`org`, its slug);
//! - the gauges `scimd_provisioning_warning{org, kind, id, name, cause}`
//!   (1 while raised, 0 once cleared), `scimd_provisioning_failure_ratio`
//!   (per credential, 0–1, over its recent requests) and
//!   `scimd_provisioning_last_contact_age_seconds` (per organization).
//!
//! Without the database, the round assesses this process's own record
//! with the last thresholds it read, as the default organization's (the
//! organization of a credential is in the database): a replica whose
//! requests fail with 5xx still warns.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::web;
use scim_store::health::{self, Assessment, Thresholds};
use scim_store::organizations::DEFAULT_SLUG;
use scim_store::{OrgId, Store};
use time::OffsetDateTime;

/// How often a replica saves its traffic and assesses everyone's.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// What a round remembers: the warnings raised (for transitions) and the
/// default organization's last thresholds.
#[derive(Debug, Default)]
pub struct Watch {
    raised: BTreeSet<WarningKey>,
    thresholds: Option<Thresholds>,
}

/// A warning's identity across rounds: (organization slug, credential
/// kind, id, name, cause).
type WarningKey = (String, String, String, String, &'static str);

impl Watch {
    /// The warnings raised now, by key.
    pub fn raised(&self) -> impl Iterator<Item = &WarningKey> {
        self.raised.iter()
    }
}

/// One round (blocking: run it on the blocking pool): save, assess every
/// organization as of `now`, log the transitions and set the gauges.
/// Returns each organization's slug and assessment.
pub fn round(
    store: &Store,
    traffic: &scim_server::health::Health,
    watch: &mut Watch,
    now: OffsetDateTime,
) -> Vec<(String, Assessment)> {
    if let Err(e) = traffic.save(store, now) {
        tracing::warn!(error = %e, "provisioning health: this replica's traffic could not be saved");
    }
    let assessed = match scim_admin::provisioning::assess_every_organization(store, now) {
        Ok(assessed) => assessed,
        Err(e) => {
            tracing::warn!(error = %e, "provisioning health: assessed from this replica's traffic only");
            let assessment = local_assessment(traffic, watch, now);
            publish(DEFAULT_SLUG, &assessment, watch, now);
            return vec![(DEFAULT_SLUG.to_owned(), assessment)];
        }
    };
    // The warnings of an organization deleted since are dropped.
    watch
        .raised
        .retain(|key| assessed.iter().any(|(_, slug, _, _)| *slug == key.0));
    assessed
        .into_iter()
        .map(|(org, slug, assessment, thresholds)| {
            if org == OrgId::DEFAULT {
                watch.thresholds = Some(thresholds);
            }
            publish(&slug, &assessment, watch, now);
            (slug, assessment)
        })
        .collect()
}

/// This replica's own record, assessed with the default organization's
/// last thresholds (or the defaults): the round without the database.
fn local_assessment(
    traffic: &scim_server::health::Health,
    watch: &Watch,
    now: OffsetDateTime,
) -> Assessment {
    let rows: Vec<health::TrafficRow> = traffic
        .snapshot()
        .into_iter()
        .map(|(credential, traffic)| health::TrafficRow {
            replica_id: String::new(),
            credential,
            traffic,
        })
        .collect();
    let thresholds = watch.thresholds.clone().unwrap_or_else(|| {
        let defaults = scim_store::settings::default_settings();
        Thresholds {
            failure_percent: defaults.health_failure_percent,
            silence_minutes: defaults.health_silence_minutes,
            window_requests: defaults.health_window_requests,
            window_minutes: defaults.health_window_minutes,
            sync_enabled: false,
            sync_enabled_at: None,
        }
    });
    health::assess(&rows, &thresholds, now)
}

/// Logs the transitions of the organization `org`'s warnings and sets its
/// gauges; the other organizations' warnings stay as they are.
fn publish(org: &str, assessment: &Assessment, watch: &mut Watch, now: OffsetDateTime) {
    let mut raised = BTreeSet::new();
    for (credential, warning) in assessment.warnings() {
        let key: WarningKey = match credential {
            Some(c) => (
                org.to_owned(),
                c.credential.kind.clone(),
                c.credential.id.clone(),
                c.name.clone().unwrap_or_default(),
                warning.cause.as_str(),
            ),
            None => (
                org.to_owned(),
                "all".into(),
                String::new(),
                String::new(),
                warning.cause.as_str(),
            ),
        };
        if !watch.raised.contains(&key) {
            tracing::warn!(
                org = %key.0,
                credential_kind = %key.1,
                credential_id = %key.2,
                credential_name = %key.3,
                cause = key.4,
                action = %warning.action,
                "provisioning at risk in organization {org}: {}",
                warning.message
            );
        }
        warning_gauge(&key).set(1.0);
        raised.insert(key);
    }
    let cleared: Vec<WarningKey> = watch
        .raised
        .iter()
        .filter(|k| k.0 == org && !raised.contains(*k))
        .cloned()
        .collect();
    for key in cleared {
        tracing::info!(
            org = %key.0,
            credential_kind = %key.1,
            credential_id = %key.2,
            credential_name = %key.3,
            cause = key.4,
            "provisioning warning cleared in organization {org}"
        );
        warning_gauge(&key).set(0.0);
        watch.raised.remove(&key);
    }
    watch.raised.extend(raised);
    for c in &assessment.credentials {
        metrics::gauge!(
            "scimd_provisioning_failure_ratio",
            "org" => org.to_owned(),
            "kind" => c.credential.kind.clone(),
            "id" => c.credential.id.clone(),
            "name" => c.name.clone().unwrap_or_default()
        )
        .set(c.recent.failure_percent() / 100.0);
    }
    if let Some(last) = assessment.last_contact_ms {
        let now_ms = now.unix_timestamp_nanos() / 1_000_000;
        let age = (now_ms - i128::from(last)).max(0) as f64 / 1000.0;
        metrics::gauge!("scimd_provisioning_last_contact_age_seconds", "org" => org.to_owned())
            .set(age);
    }
}

fn warning_gauge(key: &WarningKey) -> metrics::Gauge {
    metrics::gauge!(
        "scimd_provisioning_warning",
        "org" => key.0.clone(),
        "kind" => key.1.clone(),
        "id" => key.2.clone(),
        "name" => key.3.clone(),
        "cause" => key.4
    )
}

/// Runs [`round`] every [`SAVE_EVERY`] on the server's runtime, until the
/// process stops; one last save when it is asked to stop is not needed
/// (at most [`SAVE_EVERY`] of traffic is lost, the next start begins a
/// new record).
pub fn spawn(store: Store, traffic: scim_server::health::Health, clock: scim_core::Clock) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(SAVE_EVERY);
        let mut watch = Some(Watch::default());
        loop {
            ticks.tick().await;
            let (store, traffic, now) = (store.clone(), traffic.clone(), clock.now());
            let Some(mut w) = watch.take() else {
                return;
            };
            match web::block(move || {
                round(&store, &traffic, &mut w, now);
                w
            })
            .await
            {
                Ok(w) => watch = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "provisioning health round failed");
                    watch = Some(Watch::default());
                }
            }
        }
    });
}
