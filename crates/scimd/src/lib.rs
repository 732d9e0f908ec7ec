//! The `scimd` binary's library: configuration, logging, the CLI and the
//! wiring of the SCIM API (and, later, the admin API) into one actix app.
//!
//! `main.rs` only parses arguments and calls [`run`]; tests build the very
//! same app through [`configure_app`].

pub mod cli;
pub mod logging;
pub mod settings;

use std::time::Duration;

use actix_web::{web, HttpResponse};
use scim_store::Store;

use crate::cli::{Cli, Command, TokenCommand};
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
    /// A command was given a bad argument.
    #[error("{0}")]
    Usage(String),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let settings = Settings::load(cli.config.as_deref())?;
    logging::init(&settings.log);
    match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let store = Store::connect(&settings.store_config())?;
            let applied = store.migrate()?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Token(cmd) => token_command(&settings, cmd),
    }
}

fn token_command(settings: &Settings, cmd: TokenCommand) -> Result<(), Error> {
    let store = Store::connect(&settings.store_config())?;
    store.migrate()?;
    match cmd {
        TokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 200 {
                return Err(Error::Usage(
                    "--name must be 1 to 200 characters".to_string(),
                ));
            }
            let expires_at = expires_in_days.map(|days| {
                scim_core::datetime::format(
                    time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days)),
                )
            });
            let (info, secret) =
                store.write(|conn| scim_store::create_token(conn, &name, expires_at.clone()))?;
            println!("Created token {} ({}).", info.id, info.name);
            println!("Secret (shown once; store it in your identity provider now):");
            println!("{secret}");
            Ok(())
        }
        TokenCommand::List { json } => {
            let tokens = store.read(scim_store::list_tokens)?;
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "name": t.name, "prefix": t.prefix,
                            "created_at": t.created_at, "last_used_at": t.last_used_at,
                            "expires_at": t.expires_at, "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            println!(
                "{:<36}  {:<14}  {:<8}  {:<27}  {:<27}  NAME",
                "ID", "PREFIX", "STATE", "CREATED", "LAST USED"
            );
            let now = scim_core::datetime::now();
            for t in tokens {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<14}  {:<8}  {:<27}  {:<27}  {}",
                    t.id,
                    t.prefix,
                    state,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never"),
                    t.name
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            store.write(|conn| scim_store::revoke_token(conn, &id))?;
            println!("Revoked token {id}.");
            Ok(())
        }
    }
}

/// Adds every route of the process: health, readiness, the SCIM API and a
/// SCIM-shaped 404 for anything else.
pub fn configure_app(cfg: &mut web::ServiceConfig, store: &Store, settings: &Settings) {
    let scim = scim_server::ScimApi::new(store.clone(), settings.scim_config());
    let ready_store = store.clone();
    cfg.route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
    )
    .route(
        "/readyz",
        web::get().to(move || {
            let store = ready_store.clone();
            async move {
                match web::block(move || store.ping()).await {
                    Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
                    _ => HttpResponse::ServiceUnavailable()
                        .json(serde_json::json!({"status": "database unreachable"})),
                }
            }
        }),
    );
    scim.configure(cfg);
    cfg.default_service(web::to(scim_server::not_found));
}

/// Connects, migrates and serves until SIGTERM/SIGINT, letting in-flight
/// requests finish.
pub fn serve(settings: Settings) -> Result<(), Error> {
    let store = Store::connect(&settings.store_config())?;
    for name in store.migrate()? {
        tracing::info!(migration = %name, "applied migration");
    }
    let addr = settings
        .bind_addr()
        .ok_or_else(|| Error::Usage("server.bind is not an address".into()))?;
    tracing::info!(
        %addr,
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
    actix_web::rt::System::new().block_on(async move {
        let app_settings = settings.clone();
        actix_web::HttpServer::new(move || {
            let store = store.clone();
            let settings = app_settings.clone();
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(logging::request_log))
                .configure(move |cfg| configure_app(cfg, &store, &settings))
        })
        .workers(workers)
        .shutdown_timeout(shutdown.as_secs())
        .bind(addr)?
        .run()
        .await
    })?;
    tracing::info!("scimd stopped");
    Ok(())
}
