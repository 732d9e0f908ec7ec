//! The `scimd` binary's library: configuration, logging, the CLI and the
//! wiring of the SCIM API (and, later, the admin API) into one actix app.
//!
//! `main.rs` only parses arguments and calls [`run`]; tests build the very
//! same app through [`configure_app`].

pub mod body_deadline;
pub mod cli;
pub mod connections;
pub mod logging;
pub mod metrics;
pub mod provisioning;
pub mod root;
pub mod settings;
pub mod tls;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use scim_store::Store;

use crate::cli::{Cli, Command, SamlCommand, SyncCommand, TokenCommand};
use crate::settings::Settings;

/// Errors that stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] scim_store::StoreError),
    /// The listener failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The listen address (`server.bind`) cannot be bound.
    #[error("server.bind: cannot listen on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why (address in use, permission denied, …).
        source: std::io::Error,
    },
    /// A command was given a bad argument.
    #[error("{0}")]
    Usage(String),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// An admin operation was refused; the message says why and what to do.
    #[error("{}", admin_message(.0))]
    Admin(#[from] scim_admin::AdminError),
    /// `scimd copy` failed; the target was left as it was.
    #[error("copy: {0}")]
    Copy(#[from] scim_store::copy::CopyError),
    /// A command's output could not be written to standard output.
    #[error("cannot write to standard output: {0}")]
    Output(std::io::Error),
}

impl Error {
    /// Whether the output's reader went away (`scimd token list | head
    /// -n1`): the command's work is done and `main` exits 0, as if the
    /// reader had read everything.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// `writeln!` for a command's output: a failed write becomes
/// [`Error::Output`] (where `println!` would panic, e.g. on a closed pipe).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(Error::Output)
    };
}

// After `outln!`, which it uses.
mod admins;
mod extensions;
mod organizations;

/// An admin error with its field-level messages, one per line.
fn admin_message(err: &scim_admin::AdminError) -> String {
    let body = err.body();
    if body.fields.is_empty() {
        return body.message;
    }
    let mut out = String::from(match err {
        scim_admin::AdminError::SyncNotReady { .. } => {
            "user synchronization cannot be enabled yet:"
        }
        _ => "invalid input:",
    });
    for f in body.fields {
        out.push_str(&format!("\n  - {}: {}", f.field, f.message));
    }
    out
}

/// Who the CLI acts as in the change log: the operating-system user
/// (`cli:<login name>` in the `…_by` columns).
pub(crate) fn cli_actor() -> scim_store::changes::Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    scim_store::changes::Actor::cli(&user)
}

pub(crate) fn connect(settings: &Settings) -> Result<Store, Error> {
    let store = Store::connect(&settings.store_config())?;
    store.migrate()?;
    Ok(store)
}

/// Runs a parsed command line, writing what a command prints to standard
/// output (a reader that went away ends it with [`Error::Output`]).
pub fn run(cli: Cli) -> Result<(), Error> {
    let settings = Settings::load(cli.config.as_deref())?;
    logging::init(&settings.log);
    let out = &mut std::io::stdout();
    run_command(out, settings, &cli.org, cli.command)?;
    out.flush().map_err(Error::Output)
}

fn run_command(
    out: &mut impl Write,
    settings: Settings,
    org: &str,
    command: Command,
) -> Result<(), Error> {
    match command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let store = Store::connect(&settings.store_config())?;
            let applied = store.migrate()?;
            if applied.is_empty() {
                outln!(out, "database is up to date")?;
            }
            for name in applied {
                outln!(out, "applied {name}")?;
            }
            Ok(())
        }
        Command::Token(cmd) => token_command(out, &settings, org, cmd),
        Command::Sync(cmd) => sync_command(out, &settings, org, cmd),
        Command::Saml(cmd) => saml_command(out, &settings, org, cmd),
        Command::Org(cmd) => organizations::org_command(out, &settings, cmd),
        Command::Admin(cmd) => admins::admin_command(out, &settings, org, cmd),
        Command::Schema(cmd) => extensions::schema_command(out, &settings, cmd),
        Command::Copy { from, to, force } => copy_command(out, &from, &to, force),
        Command::Backup { file } => backup(out, &settings, &file),
        Command::Purge => {
            let store = connect(&settings)?;
            let purged = purge(&store)?;
            outln!(
                out,
                "purged {purged} soft-deleted user{}",
                if purged == 1 { "" } else { "s" }
            )?;
            let expired = purge_changes(&store, time::OffsetDateTime::now_utc())?;
            outln!(
                out,
                "purged {expired} change log entr{} past the retention",
                if expired == 1 { "y" } else { "ies" }
            )?;
            Ok(())
        }
    }
}

/// `scimd copy`: copies, then prints what was verified per table.
fn copy_command(out: &mut impl Write, from: &str, to: &str, force: bool) -> Result<(), Error> {
    let report = scim_store::copy::copy_database(from, to, force)?;
    for name in &report.migrations_applied {
        outln!(out, "applied {name} to the target")?;
    }
    if report.rows_replaced > 0 {
        outln!(
            out,
            "replaced {} rows the target held (--force)",
            report.rows_replaced
        )?;
    }
    outln!(
        out,
        "{:<20}  {:>10}  CHECKSUM (SHA-256 sum)",
        "TABLE",
        "ROWS"
    )?;
    for t in &report.tables {
        outln!(out, "{:<20}  {:>10}  {}", t.table, t.rows, t.checksum)?;
    }
    let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
    outln!(
        out,
        "copied {rows} rows in {} tables from {} to {}; counts and checksums verified",
        report.tables.len(),
        report.from,
        report.to
    )?;
    Ok(())
}

/// `scimd backup FILE`: the store is opened as it is, without migrating,
/// so that a backup taken before an upgrade holds the old schema.
fn backup(out: &mut impl Write, settings: &Settings, file: &std::path::Path) -> Result<(), Error> {
    let url = &settings.database.url;
    if let Some(db) = scim_store::connection::sqlite_file(url) {
        // Opening a missing SQLite file would create an empty database
        // and back that up.
        if !db.is_file() {
            return Err(Error::Usage(format!(
                "database.url: no SQLite database at {}; check --config or SCIMD__DATABASE__URL",
                db.display()
            )));
        }
    }
    let store = Store::connect(&settings.store_config())?;
    scim_store::backup_sqlite(&store, file).map_err(|e| Error::Usage(e.to_string()))?;
    outln!(out, "backed up the SQLite database to {}", file.display())?;
    Ok(())
}

/// Users hard-deleted per transaction by the purge: small enough that one
/// batch holds the SQLite writer for milliseconds, not seconds.
pub const PURGE_BATCH: i64 = 500;

/// Runs the purge of soft-deleted users once (`scim_store::purge_expired_users`:
/// the retention period is read now, batches of [`PURGE_BATCH`]).
pub fn purge(store: &Store) -> Result<usize, Error> {
    Ok(scim_store::purge_expired_users(
        store,
        time::OffsetDateTime::now_utc(),
        PURGE_BATCH,
    )?)
}

/// Runs the change log's retention purge once, as of `now`
/// (`scim_store::purge_expired_changes`: `change_log_retention_days` is
/// read now, batches of [`PURGE_BATCH`]).
pub fn purge_changes(store: &Store, now: time::OffsetDateTime) -> Result<usize, Error> {
    Ok(scim_store::purge_expired_changes(store, now, PURGE_BATCH)?)
}

/// The background purge of `scimd serve`: at startup, then every
/// `interval`, on the blocking pool. Several replicas may run it at once:
/// their batches skip each other's (`scim_store::purge_deleted_users`), so
/// each user is purged, and counted, once. The change log's retention
/// purge follows in the same round (its batches delete the oldest rows;
/// a row two replicas both select is deleted once). Every round logs how
/// many each purged (two lines per interval); a failure is logged and
/// ends the round, retried at the next interval.
fn spawn_purge(store: Store, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(interval);
        loop {
            ticks.tick().await;
            let store = store.clone();
            let users = store.clone();
            match web::block(move || purge(&users)).await {
                Ok(Ok(purged)) => tracing::info!(purged, "purged soft-deleted users"),
                Ok(Err(e)) => {
                    // The database is likely unreachable: wait for the
                    // next round rather than queue for a connection.
                    tracing::warn!(error = %e, "purging soft-deleted users failed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging soft-deleted users failed");
                    continue;
                }
            }
            let now = time::OffsetDateTime::now_utc();
            match web::block(move || purge_changes(&store, now)).await {
                Ok(Ok(purged)) => tracing::info!(purged, "purged expired change log entries"),
                Ok(Err(e)) => tracing::warn!(error = %e, "purging the change log failed"),
                Err(e) => tracing::warn!(error = %e, "purging the change log failed"),
            }
        }
    });
}

/// The push deliverer of `scimd serve` (`scim_server::events::push`): runs
/// on the server's runtime until the process stops. Stopping mid-push is
/// safe: the cursor moves only after a receiver's 202, so the SET is
/// pushed again after a restart (at least once).
fn spawn_deliverer(events: scim_server::events::Events) -> Result<(), Error> {
    let deliverer = scim_server::events::push::Deliverer::new(events)
        .map_err(|e| Error::Usage(format!("events: cannot build the push client: {e}")))?;
    actix_web::rt::spawn(deliverer.run());
    Ok(())
}

/// Wakes the deliverer and the long-polls after every successful write
/// request (a change may have been recorded): they then read the change
/// log at once instead of at their next interval.
async fn wake_on_writes(
    events: scim_server::events::Events,
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let write = !matches!(
        *req.method(),
        actix_web::http::Method::GET
            | actix_web::http::Method::HEAD
            | actix_web::http::Method::OPTIONS
    );
    let res = next.call(req).await?;
    if write && res.status().is_success() {
        events.changed();
    }
    Ok(res)
}

fn print_sync_status(
    out: &mut impl Write,
    status: &scim_admin::model::SyncStatus,
) -> Result<(), Error> {
    if status.enabled {
        outln!(
            out,
            "User synchronization is ENABLED (since {} by {}).",
            status.enabled_at.as_deref().unwrap_or("?"),
            status.enabled_by.as_deref().unwrap_or("?")
        )?;
    } else {
        outln!(
            out,
            "User synchronization is DISABLED: the identity provider's SCIM requests get 403."
        )?;
    }
    outln!(out, "\nPrerequisites:")?;
    for p in &status.prerequisites {
        let mark = if p.satisfied { "ok" } else { "MISSING" };
        outln!(out, "  [{mark}] {}: {}", p.id, p.description)?;
    }
    outln!(
        out,
        "\nCautions (accepted with `scimd sync enable --accept-cautions`):"
    )?;
    for c in &status.cautions {
        outln!(out, "  - {}: {}", c.id, c.text)?;
    }
    Ok(())
}

fn sync_command(
    out: &mut impl Write,
    settings: &Settings,
    org: &str,
    cmd: SyncCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    let org = organizations::org_id(&store, org)?;
    let actor = cli_actor().in_org(org);
    match cmd {
        SyncCommand::Status { json } => {
            let status = scim_admin::service::sync_status(&store, org)?;
            if json {
                outln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&status)
                        .map_err(|e| Error::Usage(e.to_string()))?
                )?;
            } else {
                print_sync_status(out, &status)?;
            }
            Ok(())
        }
        SyncCommand::Enable { accept_cautions } => {
            let status = scim_admin::service::sync_status(&store, org)?;
            if !accept_cautions {
                print_sync_status(out, &status)?;
                return Err(Error::Usage(
                    "read the cautions above, then run `scimd sync enable --accept-cautions` to accept them all and enable synchronization".into(),
                ));
            }
            let ids = scim_admin::cautions::caution_ids();
            let status = scim_admin::service::enable_sync(&store, &actor, &ids)?;
            outln!(out, "Accepted cautions:")?;
            for c in &status.cautions {
                outln!(out, "  - {}: {}", c.id, c.text)?;
            }
            outln!(out, "User synchronization is enabled: the identity provider's SCIM requests are accepted from now on.")?;
            Ok(())
        }
        SyncCommand::Disable => {
            scim_admin::service::disable_sync(&store, &actor)?;
            outln!(out, "User synchronization is disabled: the identity provider's SCIM requests get 403 from now on.")?;
            Ok(())
        }
    }
}

pub(crate) fn read_file(path: &std::path::Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{what}: cannot read {}: {e}", path.display())))
}

fn saml_command(
    out: &mut impl Write,
    settings: &Settings,
    org: &str,
    cmd: SamlCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    let org = organizations::org_id(&store, org)?;
    let actor = cli_actor().in_org(org);
    let view = match cmd {
        SamlCommand::Show => scim_admin::service::get_saml(&store, org)?,
        SamlCommand::Set {
            metadata,
            entity_id,
            sso_url,
            certificate,
        } => {
            let update =
                match (metadata, certificate) {
                    (Some(path), _) => scim_admin::model::SamlUpdate {
                        metadata_xml: Some(read_file(&path, "--metadata")?),
                        ..Default::default()
                    },
                    (None, Some(path)) => scim_admin::model::SamlUpdate {
                        entity_id,
                        sso_url,
                        certificate_pem: Some(read_file(&path, "--certificate")?),
                        ..Default::default()
                    },
                    (None, None) => return Err(Error::Usage(
                        "give --metadata FILE, or --entity-id, --sso-url and --certificate FILE"
                            .into(),
                    )),
                };
            let view = scim_admin::service::set_saml(&store, &actor, &update)?;
            outln!(out, "SAML settings saved.")?;
            view
        }
    };
    if !view.configured {
        outln!(out, "SAML sign-in is not configured.")?;
        return Ok(());
    }
    outln!(out, "Entity ID:   {}", view.entity_id.unwrap_or_default())?;
    outln!(out, "SSO URL:     {}", view.sso_url.unwrap_or_default())?;
    if let Some(c) = view.certificate {
        outln!(out, "Certificate: {}", c.subject)?;
        outln!(out, "  SHA-256:   {}", c.sha256_fingerprint)?;
        outln!(out, "  valid:     {} to {}", c.not_before, c.not_after)?;
    }
    Ok(())
}

fn token_command(
    out: &mut impl Write,
    settings: &Settings,
    org: &str,
    cmd: TokenCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    let org = organizations::org_id(&store, org)?;
    let actor = cli_actor().in_org(org);
    match cmd {
        TokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let expires_at = expires_in_days.map(|days| {
                scim_core::datetime::format(
                    time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days)),
                )
            });
            let created = scim_admin::service::create_scim_token(
                &store,
                &actor,
                &scim_admin::model::CreateTokenRequest { name, expires_at },
            )?;
            outln!(
                out,
                "Created token {} ({}).",
                created.token.id,
                created.token.name
            )?;
            outln!(
                out,
                "Secret (shown once; store it in your identity provider now):"
            )?;
            outln!(out, "{}", created.secret)?;
            Ok(())
        }
        TokenCommand::List { json } => {
            let tokens = scim_admin::service::list_scim_tokens(&store, org)?;
            if json {
                outln!(
                    out,
                    "{}",
                    serde_json::to_string(&tokens).map_err(|e| Error::Usage(e.to_string()))?
                )?;
                return Ok(());
            }
            outln!(
                out,
                "{:<36}  {:<14}  {:<8}  {:<27}  {:<27}  NAME",
                "ID",
                "PREFIX",
                "STATE",
                "CREATED",
                "LAST USED"
            )?;
            for t in tokens {
                outln!(
                    out,
                    "{:<36}  {:<14}  {:<8}  {:<27}  {:<27}  {}",
                    t.id,
                    t.prefix,
                    t.state,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never"),
                    t.name
                )?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            scim_admin::service::revoke_scim_token(&store, &actor, &id)?;
            outln!(out, "Revoked token {id}.")?;
            Ok(())
        }
    }
}

/// How long `/readyz` waits for a database connection before it answers
/// 503: well under a second, whatever `database.connect_timeout_secs` is,
/// so that a load balancer learns of an outage at once.
pub const READY_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(500);

/// What every worker's app shares: built once per process
/// ([`Settings::shared`]) and passed to each worker's [`configure_app`], so
/// that its bounds hold for the process, not for each worker.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The one Argon2id gate of the SCIM API and the admin side.
    pub password_hasher: scim_store::PasswordHasher,
    /// The SCIM API's per-credential request budget (`None`: unlimited).
    pub scim_rate_limiter: Option<scim_server::rate_limit::RateLimiter>,
    /// Times sessions, OAuth codes and tokens and the token cache
    /// (`scim_core::Clock::system()`, except in tests that move time
    /// forward).
    pub clock: scim_core::Clock,
    /// Event delivery of the process (its long-polls and its deliverer
    /// are woken by SCIM writes of any worker); `None`: each app builds
    /// its own ([`configure_app`]).
    pub events: Option<scim_server::events::Events>,
    /// The process's record of each credential's SCIM traffic (saved and
    /// assessed by [`provisioning::spawn`]).
    pub health: scim_server::health::Health,
}

/// Adds every route of the process: health, readiness, the admin API with
/// its OpenAPI documents and Swagger UI, the SCIM API and a SCIM-shaped 404
/// for anything else.
pub fn configure_app(
    cfg: &mut web::ServiceConfig,
    store: &Store,
    shared: &Shared,
    settings: &Settings,
) {
    let mut scim_config = settings.scim_config();
    scim_config.password_hasher = shared.password_hasher.clone();
    scim_config.rate_limiter = shared.scim_rate_limiter.clone();
    scim_config.clock = shared.clock.clone();
    scim_config.health = shared.health.clone();
    let mut admin_config = settings.admin_config();
    admin_config.password_hasher = shared.password_hasher.clone();
    admin_config.clock = shared.clock.clone();
    let scim = scim_server::ScimApi::new(store.clone(), scim_config);
    let admin = scim_admin::AdminApi::new(store.clone(), admin_config);
    let events = shared.events.clone().unwrap_or_else(|| {
        scim_server::events::Events::new(
            store.clone(),
            settings.events_config(),
            shared.clock.clone(),
        )
    });
    let ready_store = store.clone();
    // actix's own body extractors (`Bytes`, used by the console and OAuth
    // forms) get the same size limit as the SCIM and admin JSON readers.
    cfg.app_data(web::PayloadConfig::new(settings.server.max_body_bytes));
    cfg.route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
    )
    .route(
        "/readyz",
        web::get().to(move || {
            let store = ready_store.clone();
            async move {
                match web::block(move || store.ping_within(READY_CHECKOUT_TIMEOUT)).await {
                    Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
                    _ => HttpResponse::ServiceUnavailable()
                        .json(serde_json::json!({"status": "database unreachable"})),
                }
            }
        }),
    );
    if settings.metrics.enabled {
        metrics::configure(cfg, store, settings.metrics.token());
    }
    // Before the SCIM scope: `<scim base>/openapi.json` is served by the
    // admin side, without a SCIM token.
    admin.configure(cfg);
    events.configure(cfg);
    scim.configure(cfg);
    root::Root {
        scim_base_path: settings.scim.base_path.clone(),
        public_url: settings.scim_config().public_url,
    }
    .configure(cfg);
    cfg.default_service(web::to(scim_server::not_found));
}

/// How long a new connection may take to send its first request head
/// before it is closed: with the body deadline and the per-address cap,
/// what bounds a slow client.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a closing connection is given to take the last response.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client has for the TLS handshake (built-in TLS), before the
/// per-address cap counts the connection and the head timeout starts.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

fn log_certificate(summary: &tls::CertSummary, message: &str) {
    if summary.expired {
        tracing::warn!(subject = %summary.subject, not_after = %summary.not_after,
            "{message}, but it has EXPIRED: clients will refuse it; renew it and send SIGHUP");
    } else {
        tracing::info!(subject = %summary.subject, not_after = %summary.not_after, "{message}");
    }
}

/// SIGHUP re-reads the TLS certificate and key (`tls::ReloadableCert`);
/// without TLS it is logged and ignored, so a `systemctl reload` never
/// stops the process.
fn spawn_reload_on_hangup(tls: Option<Arc<tls::ReloadableCert>>) -> Result<(), Error> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            match &tls {
                Some(cert) => match cert.reload() {
                    Ok(summary) => log_certificate(&summary, "TLS certificate reloaded"),
                    Err(e) => tracing::error!(
                        error = %e,
                        "TLS certificate not reloaded; the previous certificate stays in use"
                    ),
                },
                None => tracing::info!("SIGHUP: no TLS certificate configured, nothing to reload"),
            }
        }
    });
    Ok(())
}

/// A listening socket on `addr`, set up as actix's own `bind` does it
/// (`SO_REUSEADDR`, a backlog of 1024).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Connects, migrates and serves until SIGTERM/SIGINT, letting in-flight
/// requests finish.
pub fn serve(settings: Settings) -> Result<(), Error> {
    // Bound first: an address in use stops startup before anything is
    // logged or written (no migration, no setup code).
    let addr = settings
        .bind_addr()
        .ok_or_else(|| Error::Usage("server.bind is not an address".into()))?;
    let listener = listen(addr).map_err(|source| Error::Listen { addr, source })?;
    let tls = match settings.tls_files() {
        Some((cert, key)) => {
            let (cert, summary) = tls::ReloadableCert::load(&cert, &key)?;
            log_certificate(&summary, "TLS certificate loaded");
            Some(Arc::new(cert))
        }
        None => None,
    };
    // Before the store starts: its pools and queues register their
    // metrics when they are built.
    let metrics_enabled = settings.metrics.enabled;
    if metrics_enabled {
        metrics::install();
    }
    let store = Store::connect(&settings.store_config())?;
    for name in store.migrate()? {
        tracing::info!(migration = %name, "applied migration");
    }
    // First run: with no administrator, a one-time code (logged once, here)
    // lets whoever reads the log create the first one.
    match scim_admin::service::issue_setup_code(&store, settings.setup_code_ttl()) {
        // The code stands alone between spaces, so a double-click copies it.
        Ok(Some(code)) => tracing::warn!(
            "no administrator exists: open the console at /admin/setup and create the first one with the one-time setup code {code} (or POST /admin/api/v1/setup, or run scimd admin create --username NAME)"
        ),
        Ok(None) => {}
        Err(e) => return Err(Error::Admin(e)),
    }
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        backend = ?store.backend(),
        base_path = %settings.scim.base_path,
        "scimd listening"
    );
    let workers = if settings.server.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        settings.server.workers
    };
    let shutdown = Duration::from_secs(settings.server.shutdown_timeout_secs);
    let purge_interval = settings.purge_interval();
    let connection_limit =
        connections::ConnectionLimit::new(settings.server.max_connections_per_address);
    if settings.admin.trust_forwarded_for && settings.server.max_connections_per_address != 0 {
        tracing::warn!(
            max_connections_per_address = settings.server.max_connections_per_address,
            "admin.trust_forwarded_for is on, so scimd is behind a proxy: server.max_connections_per_address counts the proxy's connections; set it to 0 or above the proxy's connection pool"
        );
    }
    actix_web::rt::System::new().block_on(async move {
        if let Some(interval) = purge_interval {
            spawn_purge(store.clone(), interval);
        }
        spawn_reload_on_hangup(tls.clone())?;
        let app_settings = settings.clone();
        let mut shared = settings.shared();
        let events = scim_server::events::Events::new(
            store.clone(),
            settings.events_config(),
            shared.clock.clone(),
        );
        shared.events = Some(events.clone());
        if settings.events.deliver {
            spawn_deliverer(events.clone())?;
        }
        provisioning::spawn(store.clone(), shared.health.clone(), shared.clock.clone());
        let server = actix_web::HttpServer::new(move || {
            let store = store.clone();
            let settings = app_settings.clone();
            let deadline =
                body_deadline::BodyDeadline::new(settings.body_timeout(), &settings.scim.base_path);
            let shared = shared.clone();
            let events = events.clone();
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(
                    move |req, next: actix_web::middleware::Next<actix_web::body::BoxBody>| {
                        wake_on_writes(events.clone(), req, next)
                    },
                ))
                .wrap(actix_web::middleware::from_fn(
                    move |req, next: actix_web::middleware::Next<actix_web::body::BoxBody>| {
                        deadline.clone().enforce(req, next)
                    },
                ))
                .wrap(actix_web::middleware::from_fn(logging::request_log))
                .wrap(actix_web::middleware::Condition::new(
                    metrics_enabled,
                    actix_web::middleware::from_fn(metrics::observe_http),
                ))
                .configure(move |cfg| configure_app(cfg, &store, &shared, &settings))
        })
        .on_connect(move |connection, data| connection_limit.on_connect(connection, data))
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .tls_handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
        .workers(workers)
        .shutdown_timeout(shutdown.as_secs());
        match tls {
            Some(cert) => server.listen_rustls_0_23(listener, tls::server_config(cert)?)?,
            None => server.listen(listener)?,
        }
        .run()
        .await
        .map_err(Error::from)
    })?;
    tracing::info!("scimd stopped");
    Ok(())
}
