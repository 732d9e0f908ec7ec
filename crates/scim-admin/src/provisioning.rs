//! Provisioning health for the operator: the traffic of every identity
//! provider credential, merged across the replicas that share the
//! database (`scim_store::health`), and the quarantine early warning.
//! `GET /admin/api/v1/provisioning` and the console's Provisioning page
//! show the same [`ProvisioningView`].

use actix_web::{get, web};
use scim_store::health::{
    self, Assessment, Credential, CredentialHealth, Cycle, Failure, Thresholds, Warning,
};
use scim_store::OrgId;
use scim_store::Store;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{AdminError, ErrorBody};
use crate::AdminApi;

/// Reads every replica's traffic of the organization's credentials and
/// its thresholds, and assesses them as of `now`. Requests with a
/// credential scimd does not know (`unknown`) cannot be told apart by
/// organization: they count for the default organization.
pub fn assess(
    store: &Store,
    org: OrgId,
    now: OffsetDateTime,
) -> Result<(Assessment, Thresholds), AdminError> {
    let (rows, gate) = store.read(|conn| {
        let rows = health::load_traffic(conn)?;
        Ok((rows, OrgGate::read(conn, org)?))
    })?;
    Ok(gate.assess(&rows, now))
}

/// Every organization's [`assess`]ment as of `now`, by slug, with the
/// traffic read once for all of them (the health round of every
/// replica).
pub fn assess_every_organization(
    store: &Store,
    now: OffsetDateTime,
) -> Result<Vec<(OrgId, String, Assessment, Thresholds)>, AdminError> {
    let (rows, orgs) = store.read(|conn| {
        let rows = health::load_traffic(conn)?;
        let orgs = scim_store::organizations::list_organizations(conn)?
            .into_iter()
            .map(|o| Ok((o.id, o.slug, OrgGate::read(conn, o.id)?)))
            .collect::<Result<Vec<_>, scim_store::StoreError>>()?;
        Ok((rows, orgs))
    })?;
    Ok(orgs
        .into_iter()
        .map(|(org, slug, gate)| {
            let (assessment, thresholds) = gate.assess(&rows, now);
            (org, slug, assessment, thresholds)
        })
        .collect())
}

/// What an organization's traffic is assessed by: its credentials, its
/// thresholds and its switch.
struct OrgGate {
    org: OrgId,
    credentials: Vec<Credential>,
    thresholds: Thresholds,
}

impl OrgGate {
    fn read(
        conn: &mut scim_store::DbConnection,
        org: OrgId,
    ) -> Result<OrgGate, scim_store::StoreError> {
        let credentials = health::org_credentials(conn, org)?;
        let settings = scim_store::settings::get_runtime_settings(conn, org)?;
        let sync = scim_store::sync::get_sync_state(conn, org)?;
        Ok(OrgGate {
            org,
            credentials,
            thresholds: Thresholds {
                failure_percent: settings.values.health_failure_percent,
                silence_minutes: settings.values.health_silence_minutes,
                window_requests: settings.values.health_window_requests,
                window_minutes: settings.values.health_window_minutes,
                sync_enabled: sync.enabled,
                sync_enabled_at: sync.enabled_at,
            },
        })
    }

    /// The organization's rows of `rows`, assessed.
    fn assess(self, rows: &[health::TrafficRow], now: OffsetDateTime) -> (Assessment, Thresholds) {
        let ours: Vec<health::TrafficRow> = rows
            .iter()
            .filter(|r| {
                self.credentials.contains(&r.credential)
                    || (self.org == OrgId::DEFAULT && r.credential.kind == "unknown")
            })
            .cloned()
            .collect();
        (
            health::assess(&ours, &self.thresholds, now),
            self.thresholds,
        )
    }
}

/// A warning: what is wrong, its likely cause and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WarningView {
    /// The likely cause: `sync_disabled`, `token_revoked_or_expired`,
    /// `unknown_token`, `database_unavailable`, `rate_limited`,
    /// `validation_error` or `silence`.
    #[schema(example = "token_revoked_or_expired")]
    pub cause: String,
    /// The credential's kind (`scim_token`, `oauth_client`, `unknown`);
    /// none for silence, which is about every credential.
    pub credential_kind: Option<String>,
    /// The credential's id.
    pub credential_id: Option<String>,
    /// The credential's name.
    #[schema(example = "Entra ID production")]
    pub credential_name: Option<String>,
    /// What is wrong.
    #[schema(
        example = "100% of the last 12 requests failed: the identity provider presents a token that was revoked or has expired (401)"
    )]
    pub message: String,
    /// What to do.
    pub action: String,
}

impl WarningView {
    fn new(credential: Option<&CredentialHealth>, w: &Warning) -> Self {
        WarningView {
            cause: w.cause.as_str().to_owned(),
            credential_kind: credential.map(|c| c.credential.kind.clone()),
            credential_id: credential.map(|c| c.credential.id.clone()),
            credential_name: credential.map(|c| display_name(&c.credential, c.name.as_deref())),
            message: w.message.clone(),
            action: w.action.clone(),
        }
    }
}

/// One provisioning cycle (requests separated by less than the cycle gap).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CycleView {
    /// Its first request.
    pub started_at: String,
    /// Its last request.
    pub last_request_at: String,
    /// From the first request to the last, seconds.
    pub length_secs: i64,
    /// Whether it is still going on (its last request is within the gap).
    pub in_progress: bool,
    /// Requests.
    pub requests: u64,
    /// Users and Groups created.
    pub creates: u64,
    /// Users and Groups replaced or patched.
    pub updates: u64,
    /// Users and Groups deleted.
    pub deletes: u64,
    /// Failed requests.
    pub failures: u64,
    /// Failed requests by class: `unauthorized` (401), `forbidden` (403),
    /// `throttled` (429), `server_error` (5xx), `rejected` (other 4xx).
    pub failures_by_class: std::collections::BTreeMap<String, u64>,
}

impl CycleView {
    fn new(c: &Cycle, in_progress: bool) -> Self {
        CycleView {
            started_at: health::format_ms(c.started_ms),
            last_request_at: health::format_ms(c.last_ms),
            length_secs: (c.last_ms - c.started_ms) / 1000,
            in_progress,
            requests: c.requests,
            creates: c.creates,
            updates: c.updates,
            deletes: c.deletes,
            failures: c.failures,
            failures_by_class: c
                .failures_by_class
                .iter()
                .map(|(class, n)| {
                    let name = serde_json::to_value(class)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (name, *n)
                })
                .collect(),
        }
    }
}

/// A failed SCIM request (never its body, headers or token).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FailureView {
    /// When it was answered.
    pub at: String,
    /// The HTTP method.
    #[schema(example = "POST")]
    pub method: String,
    /// The route template (`/Users/{id}`), not the path.
    #[schema(example = "/Users")]
    pub route: String,
    /// The status answered.
    #[schema(example = 400)]
    pub status: u16,
    /// The RFC 7644 §3.12 `scimType`, if any.
    #[schema(example = "invalidValue")]
    pub scim_type: Option<String>,
    /// The error's detail.
    #[schema(example = "userName is required")]
    pub detail: String,
    /// `revoked` or `expired`: why a known token was refused (401).
    pub refusal: Option<String>,
}

impl FailureView {
    fn new(f: &Failure) -> Self {
        FailureView {
            at: health::format_ms(f.at_ms),
            method: f.method.clone(),
            route: f.route.clone(),
            status: f.status,
            scim_type: f.scim_type.clone(),
            detail: f.detail.clone(),
            refusal: f.refusal.map(|r| match r {
                health::Refusal::Revoked => "revoked".to_owned(),
                health::Refusal::Expired => "expired".to_owned(),
            }),
        }
    }
}

/// One identity-provider credential's traffic, merged across replicas.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialTraffic {
    /// `scim_token`, `oauth_client`, or `unknown` (requests with a token
    /// scimd does not know, or none).
    #[schema(example = "scim_token")]
    pub kind: String,
    /// The token's id or the OAuth client's `client_id` (empty for
    /// `unknown`).
    pub id: String,
    /// Its name.
    #[schema(example = "Entra ID production")]
    pub name: String,
    /// Its last request; none if it never sent one.
    pub last_contact_at: Option<String>,
    /// The current cycle, or the last one.
    pub cycle: Option<CycleView>,
    /// The cycle before it.
    pub previous_cycle: Option<CycleView>,
    /// Requests in the recent window (the last `window_requests`, or the
    /// last `window_minutes` minutes' when more).
    pub recent_requests: u64,
    /// Failed requests among them.
    pub recent_failures: u64,
    /// Their failure ratio, percent.
    #[schema(example = 4.0)]
    pub recent_failure_percent: f64,
    /// The failure warning, if raised.
    pub warning: Option<WarningView>,
    /// The last 50 failed requests, newest first.
    pub failures: Vec<FailureView>,
}

/// Provisioning health: every credential's traffic and the warnings.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProvisioningView {
    /// Whether User Synchronization is enabled.
    pub sync_enabled: bool,
    /// The newest SCIM request of any credential.
    pub last_contact_at: Option<String>,
    /// Every warning raised (the banner).
    pub warnings: Vec<WarningView>,
    /// Every active SCIM token and OAuth client, and any other credential
    /// that sent requests; the most recently active first.
    pub credentials: Vec<CredentialTraffic>,
    /// `health_failure_percent`: the failure ratio that raises a warning.
    #[schema(example = 40)]
    pub failure_percent_threshold: i32,
    /// `health_silence_minutes`: the silence that raises a warning.
    #[schema(example = 120)]
    pub silence_minutes_threshold: i32,
    /// `health_window_requests`: the recent window is a credential's last
    /// this many requests…
    #[schema(example = 100)]
    pub window_requests: i32,
    /// …or, when they are more, all of its requests of the last
    /// `health_window_minutes` minutes.
    #[schema(example = 15)]
    pub window_minutes: i32,
    /// Minutes without a request that end a cycle.
    #[schema(example = 10)]
    pub cycle_gap_minutes: i64,
}

fn display_name(credential: &Credential, name: Option<&str>) -> String {
    match (credential.kind.as_str(), name) {
        ("unknown", _) => "Unknown token".to_owned(),
        (_, Some(name)) => name.to_owned(),
        (_, None) => credential.id.clone(),
    }
}

fn credential_view(c: &CredentialHealth) -> CredentialTraffic {
    CredentialTraffic {
        kind: c.credential.kind.clone(),
        id: c.credential.id.clone(),
        name: display_name(&c.credential, c.name.as_deref()),
        last_contact_at: Some(health::format_ms(c.last_ms)),
        cycle: Some(CycleView::new(&c.cycle, c.cycle_in_progress)),
        previous_cycle: c.previous_cycle.as_ref().map(|p| CycleView::new(p, false)),
        recent_requests: c.recent.requests,
        recent_failures: c.recent.failures,
        recent_failure_percent: (c.recent.failure_percent() * 10.0).round() / 10.0,
        warning: c.warning.as_ref().map(|w| WarningView::new(Some(c), w)),
        failures: c.failures.iter().map(FailureView::new).collect(),
    }
}

fn silent(kind: &str, id: String, name: String) -> CredentialTraffic {
    CredentialTraffic {
        kind: kind.to_owned(),
        id,
        name,
        last_contact_at: None,
        cycle: None,
        previous_cycle: None,
        recent_requests: 0,
        recent_failures: 0,
        recent_failure_percent: 0.0,
        warning: None,
        failures: Vec::new(),
    }
}

/// The organization's provisioning health as of `now`.
pub fn provisioning(
    store: &Store,
    org: OrgId,
    now: OffsetDateTime,
) -> Result<ProvisioningView, AdminError> {
    let (assessment, thresholds) = assess(store, org, now)?;
    let mut credentials: Vec<CredentialTraffic> =
        assessment.credentials.iter().map(credential_view).collect();
    // Credentials that never sent a request are listed too: a token the
    // identity provider should use and does not is worth seeing.
    let seen = |kind: &str, id: &str| {
        assessment
            .credentials
            .iter()
            .any(|c| c.credential.kind == kind && c.credential.id == id)
    };
    for t in crate::service::list_scim_tokens(store, org)? {
        if t.state == "active" && !seen("scim_token", &t.id) {
            credentials.push(silent("scim_token", t.id, t.name));
        }
    }
    for c in crate::oauth::service::list_clients(store, org)? {
        if !seen("oauth_client", &c.client_id) {
            credentials.push(silent("oauth_client", c.client_id, c.name));
        }
    }
    Ok(ProvisioningView {
        sync_enabled: thresholds.sync_enabled,
        last_contact_at: assessment.last_contact_ms.map(health::format_ms),
        warnings: assessment
            .warnings()
            .map(|(c, w)| WarningView::new(c, w))
            .collect(),
        credentials,
        failure_percent_threshold: thresholds.failure_percent,
        silence_minutes_threshold: thresholds.silence_minutes,
        window_requests: thresholds.window_requests,
        window_minutes: thresholds.window_minutes,
        cycle_gap_minutes: health::CYCLE_GAP,
    })
}

/// Provisioning health
///
/// Each identity-provider credential (SCIM token, OAuth client, and
/// `unknown` for tokens scimd does not know) with its last contact, its
/// current or last cycle (requests, creates, updates, deletes, failures;
/// a cycle ends after 10 minutes without a request), the failure ratio
/// of its recent requests (its last `health_window_requests` requests,
/// or the last `health_window_minutes` minutes' when more), and its last
/// 50 failed requests (status, `scimType`, detail; never a body or a
/// secret). `warnings` is the
/// quarantine early warning: a credential whose recent requests fail at
/// or above `health_failure_percent`, or no request for
/// `health_silence_minutes` while synchronization is enabled, each with
/// its likely cause and what to do. The traffic of every replica sharing
/// the database is merged; each replica saves its own every 10 seconds.
#[utoipa::path(
    tag = "Provisioning",
    responses(
        (status = 200, description = "Every credential's traffic and the warnings", body = ProvisioningView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/provisioning")]
pub async fn get_provisioning(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<ProvisioningView>, AdminError> {
    let store = api.store().clone();
    let now = api.config().clock.now();
    let org = caller.actor.org;
    Ok(web::Json(
        web::block(move || provisioning(&store, org, now)).await??,
    ))
}
