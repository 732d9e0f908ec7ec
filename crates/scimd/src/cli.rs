//! The command line (`clap`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// scimd: a self-hosted SCIM 2.0 provisioning service.
#[derive(Debug, Parser)]
#[command(name = "scimd", version, about)]
pub struct Cli {
    /// A TOML file whose values override config/default.toml (environment
    /// variables SCIMD__SECTION__KEY override both).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the SCIM API (the default
    /// way to run scimd).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the bearer tokens identity providers use on the SCIM API.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `scimd token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token; its secret is printed once and never stored.
    Create {
        /// A name to recognise the token by (e.g. "Entra ID production").
        #[arg(long)]
        name: String,
        /// Days until the token expires (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; it stops working at once on this replica and
    /// within `auth.token_cache_ttl_secs` on others.
    Revoke {
        /// The token's id, as shown by `scimd token list`.
        id: String,
    },
}
