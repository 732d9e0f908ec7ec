//! `GET /metrics`: scimd's metrics in the Prometheus text format
//! (docs/OPERATIONS.md lists every series, with a scrape configuration
//! and alert rules).
//!
//! The crates record through the `metrics` facade (the SCIM API in
//! `scim_server::metrics`, the store's queues, pools, write batches and
//! SQLite checkpoints, OAuth token issuance); this module installs the
//! process's one recorder (`metrics-exporter-prometheus`), counts HTTP
//! requests ([`observe_http`]), and at each scrape sets the gauges that
//! describe the database: Users and Groups by state, and per
//! organization (label `org`, its slug) the User Synchronization switch,
//! each credential's last use and each event stream's delivery.
//!
//! `/metrics` is served on the main listener and authenticated: the
//! dedicated read-only `metrics.token`, or an admin API token, or a
//! console session. `metrics.enabled = false` removes the route and
//! installs no recorder (every `metrics` macro then does nothing).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpRequest, HttpResponse};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use scim_admin::AdminError;
use scim_store::events::streams::{self, StreamStatus};
use scim_store::events::Stream;
use scim_store::Store;
use subtle::ConstantTimeEq;

/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// The Prometheus text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of every `…_seconds` histogram: 100 µs to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Buckets of `scimd_store_write_batch_size` (writes per transaction).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How often histogram samples are folded into their buckets between
/// scrapes (bounds the memory they hold).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A gauge not set for this long disappears from the output: the
/// last-use age of a revoked token or a deleted OAuth client stops being
/// reported after its last scrape.
const GAUGE_IDLE: Duration = Duration::from_secs(120);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return
/// the same handle), with a thread folding histogram samples every
/// [`UPKEEP_EVERY`]. `None` if another recorder was installed first.
///
/// Called before the store connects, so that the handles the store
/// registers when it starts (its pools and queues) record into it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("scimd_store_write_batch_size".into()),
                        &BATCH_BUCKETS,
                    )
                })
                .map(|b| b.idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE)))
                .and_then(PrometheusBuilder::install_recorder);
            let handle = match built {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::error!(error = %e, "metrics are not recorded");
                    return None;
                }
            };
            describe();
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = started {
                tracing::warn!(error = %e, "metrics upkeep thread not started; histograms are folded at each scrape only");
            }
            Some(handle)
        })
        .clone()
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "scimd_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        "scimd_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    describe_counter!(
        "scimd_scim_requests_total",
        "SCIM requests by resource, operation, outcome and scimType"
    );
    describe_counter!(
        "scimd_scim_credential_requests_total",
        "SCIM requests per bearer credential, success or failure"
    );
    describe_histogram!(
        "scimd_store_queue_wait_seconds",
        Unit::Seconds,
        "Time a job waited for a store thread, by queue"
    );
    describe_histogram!(
        "scimd_store_pool_wait_seconds",
        Unit::Seconds,
        "Time a database connection checkout waited, by pool"
    );
    describe_counter!(
        "scimd_store_pool_timeouts_total",
        "Connection checkouts that timed out, by pool"
    );
    describe_histogram!(
        "scimd_store_write_batch_size",
        "Writes committed per write transaction (group commit), by backend"
    );
    describe_histogram!(
        "scimd_store_write_batch_seconds",
        Unit::Seconds,
        "Time from a write batch's BEGIN to its end, by backend"
    );
    describe_histogram!(
        "scimd_store_commit_seconds",
        Unit::Seconds,
        "Time of a write batch's COMMIT (SQLite)"
    );
    describe_gauge!(
        "scimd_sqlite_wal_bytes",
        Unit::Bytes,
        "Size of the SQLite WAL file"
    );
    describe_counter!(
        "scimd_sqlite_checkpoints_total",
        "SQLite WAL checkpoints by mode and outcome"
    );
    describe_gauge!(
        "scimd_database_up",
        "1 when the last scrape read the database, else 0"
    );
    describe_gauge!("scimd_users", "Users by state (active, suspended, deleted)");
    describe_gauge!("scimd_groups", "Groups");
    describe_gauge!(
        "scimd_sync_enabled",
        "1 while User Synchronization is enabled, else 0"
    );
    describe_gauge!(
        "scimd_credential_last_use_age_seconds",
        Unit::Seconds,
        "Seconds since a SCIM token or OAuth client was last used (written at most once a minute)"
    );
    describe_gauge!(
        "scimd_provisioning_warning",
        "1 while a provisioning warning (quarantine risk) is raised, by credential and cause; 0 once cleared"
    );
    describe_gauge!(
        "scimd_provisioning_failure_ratio",
        "Failure ratio (0-1) of a credential's recent SCIM requests, every replica merged"
    );
    describe_gauge!(
        "scimd_provisioning_last_contact_age_seconds",
        Unit::Seconds,
        "Seconds since the newest SCIM request of any credential, every replica merged"
    );
    describe_counter!(
        "scimd_oauth_tokens_issued_total",
        "OAuth access tokens issued by grant type"
    );
    describe_counter!(
        "scimd_oauth_token_failures_total",
        "Refused OAuth token requests by HTTP status"
    );
    describe_gauge!(
        "scimd_event_delivery_lag_seconds",
        Unit::Seconds,
        "Seconds since the oldest change an event stream has not gone past was recorded (0: caught up)"
    );
    describe_gauge!(
        "scimd_event_stream_pending_changes",
        "Changes of the log after an event stream's cursor (those it does not select included)"
    );
    describe_gauge!(
        "scimd_event_stream_consecutive_failures",
        "Failed push deliveries of an event stream in a row (0 after a success)"
    );
    describe_counter!(
        "scimd_event_deliveries_total",
        "Pushed SETs by outcome (delivered: 202, rejected: 400 from the receiver, failed: to retry)"
    );
}

/// What `GET /metrics` needs.
#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Store,
    /// `metrics.token`; `None` when unset.
    token: Option<String>,
}

/// Mounts `GET /metrics`, if a recorder is installed.
pub fn configure(cfg: &mut web::ServiceConfig, store: &Store, token: Option<String>) {
    let Some(handle) = install() else {
        return;
    };
    let scrape = Scrape {
        handle,
        store: store.clone(),
        token,
    };
    cfg.route(
        METRICS_PATH,
        web::get().to(move |req: HttpRequest| {
            let scrape = scrape.clone();
            async move { scrape.answer(req).await }
        }),
    );
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

impl Scrape {
    /// The metrics token (compared in constant time), else an admin API
    /// token or a console session (`scim_admin::auth::Caller`).
    async fn authorize(&self, req: &HttpRequest) -> Result<(), AdminError> {
        if let (Some(expected), Some(given)) = (&self.token, bearer(req)) {
            if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                return Ok(());
            }
        }
        match scim_admin::auth::Caller::extract(req).await {
            Ok(_) => Ok(()),
            Err(AdminError::Unauthorized(_)) => Err(AdminError::Unauthorized(
                "GET /metrics needs Authorization: Bearer <metrics.token> (or an admin API token, or a console session)".into(),
            )),
            Err(e) => Err(e),
        }
    }

    async fn answer(&self, req: HttpRequest) -> Result<HttpResponse, AdminError> {
        self.authorize(&req).await?;
        let store = self.store.clone();
        // The counters are worth most during an outage: without the
        // database the scrape still answers, with `scimd_database_up` 0
        // (the database gauges keep their last values until they expire).
        match web::block(move || Snapshot::read(&store)).await {
            Ok(Ok(snapshot)) => {
                metrics::gauge!("scimd_database_up").set(1.0);
                snapshot.publish(time::OffsetDateTime::now_utc());
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: the database gauges could not be read");
                metrics::gauge!("scimd_database_up").set(0.0);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database gauges could not be read");
                metrics::gauge!("scimd_database_up").set(0.0);
            }
        }
        self.handle.run_upkeep();
        Ok(HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .body(self.handle.render()))
    }
}

/// A credential's last use, for its age gauge.
struct LastUse {
    kind: &'static str,
    id: String,
    name: String,
    at: String,
}

/// What the gauges report of one organization, read at scrape time.
struct OrgSnapshot {
    slug: String,
    sync_enabled: bool,
    last_uses: Vec<LastUse>,
    streams: Vec<(Stream, StreamStatus)>,
}

/// What the gauges report, read at scrape time.
struct Snapshot {
    population: scim_store::scim::counts::Population,
    orgs: Vec<OrgSnapshot>,
}

impl Snapshot {
    /// Cheap queries: counts of `users` and `groups`, then per
    /// organization the sync switch, the (few) tokens and OAuth grants,
    /// and the event streams.
    fn read(store: &Store) -> Result<Snapshot, AdminError> {
        let population = store.read(scim_store::scim::counts::population)?;
        let orgs = store
            .read(scim_store::organizations::list_organizations)?
            .into_iter()
            .map(|org| OrgSnapshot::read(store, org.id, org.slug))
            .collect::<Result<_, _>>()?;
        Ok(Snapshot { population, orgs })
    }

    /// Sets the gauges, ages counted to `now`.
    fn publish(self, now: time::OffsetDateTime) {
        let p = self.population;
        metrics::gauge!("scimd_users", "state" => "active").set(p.active_users as f64);
        metrics::gauge!("scimd_users", "state" => "suspended").set(p.suspended_users as f64);
        metrics::gauge!("scimd_users", "state" => "deleted").set(p.deleted_users as f64);
        metrics::gauge!("scimd_groups").set(p.groups as f64);
        for org in self.orgs {
            org.publish(now);
        }
    }
}

impl OrgSnapshot {
    fn read(
        store: &Store,
        org: scim_store::OrgId,
        slug: String,
    ) -> Result<OrgSnapshot, AdminError> {
        let sync_enabled = store.read(|c| scim_store::sync::sync_enabled(c, org))?;
        let mut last_uses: Vec<LastUse> = scim_admin::service::list_scim_tokens(store, org)?
            .into_iter()
            .filter(|t| t.state == "active")
            .filter_map(|t| {
                Some(LastUse {
                    kind: "scim_token",
                    at: t.last_used_at?,
                    id: t.id,
                    name: t.name,
                })
            })
            .collect();
        // An OAuth client's last use is its most recent active grant's.
        for grant in scim_admin::oauth::service::list_grants(store, org)? {
            let Some(at) = grant.last_used_at.filter(|_| grant.state == "active") else {
                continue;
            };
            match last_uses
                .iter_mut()
                .find(|u| u.kind == "oauth_client" && u.id == grant.client_id)
            {
                Some(known) if known.at < at => known.at = at,
                Some(_) => {}
                None => last_uses.push(LastUse {
                    kind: "oauth_client",
                    id: grant.client_id,
                    name: grant.client_name,
                    at,
                }),
            }
        }
        // Where each event stream stands (a few rows each).
        let streams = store.read(|c| {
            streams::list_streams(c, org)?
                .into_iter()
                .map(|s| {
                    // The state is not reported here (the failures are),
                    // so any failing threshold will do.
                    let status = streams::stream_status(c, &s, 1)?;
                    Ok((s, status))
                })
                .collect::<Result<Vec<_>, scim_store::StoreError>>()
        })?;
        Ok(OrgSnapshot {
            slug,
            sync_enabled,
            last_uses,
            streams,
        })
    }

    /// Sets the organization's gauges, ages counted to `now`.
    fn publish(self, now: time::OffsetDateTime) {
        let org = self.slug;
        metrics::gauge!("scimd_sync_enabled", "org" => org.clone()).set(if self.sync_enabled {
            1.0
        } else {
            0.0
        });
        for (stream, status) in self.streams {
            // Seconds since the oldest change the stream has not gone
            // past was recorded (0: caught up).
            let lag = status
                .oldest_pending_at
                .as_deref()
                .and_then(|at| {
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
            let labels = [
                ("org", org.clone()),
                ("stream", stream.id),
                ("name", stream.name),
            ];
            metrics::gauge!("scimd_event_delivery_lag_seconds", &labels).set(lag);
            metrics::gauge!("scimd_event_stream_pending_changes", &labels).set(status.lag as f64);
            metrics::gauge!("scimd_event_stream_consecutive_failures", &labels)
                .set(f64::from(stream.failures));
        }
        for u in self.last_uses {
            let Ok(at) =
                time::OffsetDateTime::parse(&u.at, &time::format_description::well_known::Rfc3339)
            else {
                continue;
            };
            metrics::gauge!(
                "scimd_credential_last_use_age_seconds",
                "org" => org.clone(),
                "kind" => u.kind,
                "id" => u.id,
                "name" => u.name
            )
            .set((now - at).as_seconds_f64().max(0.0));
        }
    }
}

/// The `method` label: the standard methods, else `other` (a client may
/// send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route of `req`, decided before it is routed (the request cannot be
/// kept for afterwards: routing needs it alone). A SCIM request is
/// classified from its path ([`scim_server::metrics::classify`], string
/// comparisons); anything else asks the route table.
enum Route {
    /// A SCIM route template (`/Users/{id}`), below an organization's base
    /// path (`true`) or the base path itself.
    Scim(&'static str, bool),
    /// Any other route's template, or `unmatched`.
    Other(String),
}

fn route_of(req: &ServiceRequest) -> Route {
    if let Some(api) = req.app_data::<web::Data<scim_server::ScimApi>>() {
        if let Some((org, rest)) =
            scim_server::metrics::below_base(req.path(), &api.config().base_path)
        {
            return match scim_server::metrics::classify(rest, req.method()).template {
                "unmatched" => Route::Other("unmatched".to_owned()),
                template => Route::Scim(template, org),
            };
        }
    }
    Route::Other(
        req.match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned()),
    )
}

/// The `route` label of a SCIM route template.
fn scim_route_label(api: Option<&scim_server::ScimApi>, template: &str, org: bool) -> String {
    let base = api.map_or("", |api| api.config().base_path.as_str());
    if org {
        format!("{base}/o/{{org}}{template}")
    } else {
        format!("{base}{template}")
    }
}

/// Middleware (for `actix_web::middleware::from_fn`, outermost) counting
/// every request by route template, method and status, and timing it:
/// `scimd_http_requests_total` and `scimd_http_request_duration_seconds`.
/// The route is the template (`/scim/v2/Users/{id}`; an organization's
/// `/scim/v2/o/{org}/Users/{id}`), never the raw path, so ids and slugs
/// do not multiply the series; a path no route matches is `unmatched`.
///
/// The SCIM routes' handles are kept per worker thread
/// (`scim_server::metrics::cached`): identity providers drive those.
pub async fn observe_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    thread_local! {
        #[allow(clippy::type_complexity)]
        static SCIM: std::cell::RefCell<
            std::collections::HashMap<(&'static str, bool, &'static str, u16), (Counter, Histogram)>,
        > = std::cell::RefCell::default();
    }
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_of(&req);
    // The base path, for a SCIM route's label the first time this thread
    // sees it.
    let api = match route {
        Route::Scim(..) => req.app_data::<web::Data<scim_server::ScimApi>>().cloned(),
        Route::Other(_) => None,
    };
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let (counter, histogram) = match route {
        Route::Scim(template, org) => {
            scim_server::metrics::cached(&SCIM, (template, org, method, status.as_u16()), |_| {
                series(
                    scim_route_label(api.as_ref().map(|a| a.get_ref()), template, org),
                    method,
                    status,
                )
            })
        }
        Route::Other(route) => series(route, method, status),
    };
    counter.increment(1);
    histogram.record(started.elapsed());
    result
}

/// The handles of a route's request counter and latency histogram.
fn series(route: String, method: &'static str, status: StatusCode) -> (Counter, Histogram) {
    (
        metrics::counter!(
            "scimd_http_requests_total",
            "route" => route.clone(),
            "method" => method,
            "status" => status.as_str().to_owned()
        ),
        metrics::histogram!(
            "scimd_http_request_duration_seconds",
            "route" => route,
            "method" => method
        ),
    )
}
