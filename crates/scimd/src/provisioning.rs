//! The provisioning health round of `scimd serve`: every
//! [`SAVE_EVERY`], the process saves its record of each credential's SCIM
//! traffic (`scim_server::health::Health::save`), then assesses the
//! traffic of every replica (`scim_admin::provisioning::assess`) and
//! publishes the quarantine early warning:
//! - a WARN log line when a warning is raised, an INFO line when it
//!   clears (once per transition, in each replica);
//! - the gauges `scimd_provisioning_warning{kind, id, name, cause}` (1
//!   while raised, 0 once cleared), `scimd_provisioning_failure_ratio`
//!   (per credential, 0–1, over its recent requests) and
//!   `scimd_provisioning_last_contact_age_seconds`.
//!
//! Without the database, the round assesses this process's own record
//! with the last thresholds it read: a replica whose requests fail with
//! 5xx still warns.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::web;
use scim_store::health::{self, Assessment, Thresholds};
use scim_store::Store;
use time::OffsetDateTime;

/// How often a replica saves its traffic and assesses everyone's.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// What a round remembers: the warnings raised (for transitions) and the
/// last thresholds read.
#[derive(Debug, Default)]
pub struct Watch {
    raised: BTreeSet<WarningKey>,
    thresholds: Option<Thresholds>,
}

/// A warning's identity across rounds: (credential kind, id, name, cause).
type WarningKey = (String, String, String, &'static str);

impl Watch {
    /// The warnings raised now, by key.
    pub fn raised(&self) -> impl Iterator<Item = &WarningKey> {
        self.raised.iter()
    }
}

/// One round (blocking: run it on the blocking pool): save, assess as of
/// `now`, log the transitions and set the gauges. Returns the assessment.
pub fn round(
    store: &Store,
    traffic: &scim_server::health::Health,
    watch: &mut Watch,
    now: OffsetDateTime,
) -> Assessment {
    if let Err(e) = traffic.save(store, now) {
        tracing::warn!(error = %e, "provisioning health: this replica's traffic could not be saved");
    }
    // The default organization's (docs/ORGANIZATIONS.md): the other
    // organizations' health is on their Provisioning pages.
    let assessment = match scim_admin::provisioning::assess(store, scim_store::OrgId::DEFAULT, now)
    {
        Ok((assessment, thresholds)) => {
            watch.thresholds = Some(thresholds);
            assessment
        }
        Err(e) => {
            tracing::warn!(error = %e, "provisioning health: assessed from this replica's traffic only");
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
    };
    publish(&assessment, watch, now);
    assessment
}

fn publish(assessment: &Assessment, watch: &mut Watch, now: OffsetDateTime) {
    let mut raised = BTreeSet::new();
    for (credential, warning) in assessment.warnings() {
        let key: WarningKey = match credential {
            Some(c) => (
                c.credential.kind.clone(),
                c.credential.id.clone(),
                c.name.clone().unwrap_or_default(),
                warning.cause.as_str(),
            ),
            None => (
                "all".into(),
                String::new(),
                String::new(),
                warning.cause.as_str(),
            ),
        };
        if !watch.raised.contains(&key) {
            tracing::warn!(
                credential_kind = %key.0,
                credential_id = %key.1,
                credential_name = %key.2,
                cause = key.3,
                action = %warning.action,
                "provisioning at risk: {}",
                warning.message
            );
        }
        metrics::gauge!(
            "scimd_provisioning_warning",
            "kind" => key.0.clone(),
            "id" => key.1.clone(),
            "name" => key.2.clone(),
            "cause" => key.3
        )
        .set(1.0);
        raised.insert(key);
    }
    for key in watch.raised.iter().filter(|k| !raised.contains(*k)) {
        tracing::info!(
            credential_kind = %key.0,
            credential_id = %key.1,
            credential_name = %key.2,
            cause = key.3,
            "provisioning warning cleared"
        );
        metrics::gauge!(
            "scimd_provisioning_warning",
            "kind" => key.0.clone(),
            "id" => key.1.clone(),
            "name" => key.2.clone(),
            "cause" => key.3
        )
        .set(0.0);
    }
    watch.raised = raised;
    for c in &assessment.credentials {
        metrics::gauge!(
            "scimd_provisioning_failure_ratio",
            "kind" => c.credential.kind.clone(),
            "id" => c.credential.id.clone(),
            "name" => c.name.clone().unwrap_or_default()
        )
        .set(c.recent.failure_percent() / 100.0);
    }
    if let Some(last) = assessment.last_contact_ms {
        let now_ms = now.unix_timestamp_nanos() / 1_000_000;
        let age = (now_ms - i128::from(last)).max(0) as f64 / 1000.0;
        metrics::gauge!("scimd_provisioning_last_contact_age_seconds").set(age);
    }
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
