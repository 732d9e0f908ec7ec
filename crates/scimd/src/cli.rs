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

    /// The organization `token`, `sync` and `saml` act on, by slug
    /// (docs/ORGANIZATIONS.md); for `admin create --role organization`,
    /// `admin role`, `admin grant` and `admin revoke`, the organization an
    /// organization administrator is given or loses.
    #[arg(long, global = true, value_name = "SLUG", default_value = "default")]
    pub org: String,

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
    /// User Synchronization: whether the SCIM API accepts the identity
    /// provider's requests (off until an administrator enables it).
    #[command(subcommand)]
    Sync(SyncCommand),
    /// SAML sign-in settings of the identity provider (required before
    /// synchronization can be enabled).
    #[command(subcommand)]
    Saml(SamlCommand),
    /// Administrator accounts of the admin API and console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Organizations: the customer directories this scimd serves, each at
    /// /scim/v2/o/{slug} with its own tokens, sync switch and data.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Custom schema extensions of the User
    /// (urn:ietf:params:scim:schemas:extension:<Name>:2.0:User).
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Hard-delete the users soft-deleted longer ago than the run-time
    /// setting soft_delete_retention_days, and delete the change log's
    /// entries older than change_log_retention_days, once, and print how
    /// many (what `scimd serve` does every maintenance.purge_interval_secs).
    Purge,
    /// Copy every row of one database into another, e.g. from SQLite to
    /// PostgreSQL (docs/DEPLOY.md, "Moving from SQLite to PostgreSQL").
    /// The source is read in one snapshot and never written; the target is
    /// migrated, then written in one transaction that commits only once
    /// every table's row count and checksum match the source's. Tokens
    /// stay valid. The database URLs come from the options, not from the
    /// configuration.
    Copy {
        /// The database to copy from: sqlite://PATH or postgres://….
        #[arg(
            long,
            value_name = "URL",
            env = "SCIMD_COPY_FROM",
            hide_env_values = true
        )]
        from: String,
        /// The database to copy into (migrated first; a SQLite file is created).
        #[arg(
            long,
            value_name = "URL",
            env = "SCIMD_COPY_TO",
            hide_env_values = true
        )]
        to: String,
        /// Replace whatever the target holds (its rows are deleted in the
        /// same transaction); without it, a target holding data is refused.
        #[arg(long)]
        force: bool,
    },
    /// Write a consistent copy of the SQLite database to FILE (a new file,
    /// mode 0600) while scimd keeps serving; no migration is applied first.
    /// On PostgreSQL, use pg_dump (docs/DEPLOY.md).
    Backup {
        /// The backup file to create (never overwritten).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `scimd sync …`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show whether synchronization is enabled, the cautions and the
    /// prerequisites.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enable synchronization. Requires SAML to be configured and every
    /// caution accepted with --accept-cautions (they are printed).
    Enable {
        /// Accept every caution listed by `scimd sync status`.
        #[arg(long)]
        accept_cautions: bool,
    },
    /// Disable synchronization: from the next request on, the identity
    /// provider's requests get 403 on every replica.
    Disable,
}

/// `scimd saml …`
#[derive(Debug, Subcommand)]
pub enum SamlCommand {
    /// Set the identity provider's SAML settings, from its metadata XML or
    /// from the entity ID, SSO URL and signing certificate.
    Set {
        /// The IdP's SAML metadata XML file.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["entity_id", "sso_url", "certificate"])]
        metadata: Option<PathBuf>,
        /// The IdP's entity ID.
        #[arg(long, requires_all = ["sso_url", "certificate"])]
        entity_id: Option<String>,
        /// The IdP's single sign-on URL (https://).
        #[arg(long, requires_all = ["entity_id", "certificate"])]
        sso_url: Option<String>,
        /// The IdP's signing certificate, a PEM file.
        #[arg(long, value_name = "FILE", requires_all = ["entity_id", "sso_url"])]
        certificate: Option<PathBuf>,
    },
    /// Show the SAML settings.
    Show,
}

/// `scimd admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator. The password is read from --password-file,
    /// else prompted for twice without echo when standard input is a
    /// terminal, else read from the first line of standard input.
    Create {
        /// The username.
        #[arg(long)]
        username: String,
        /// A file whose first line is the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// `instance` (every organization, and the organizations
        /// themselves) or `organization` (only the one --org names; more
        /// with `scimd admin grant`).
        #[arg(long, default_value = "instance", value_name = "ROLE")]
        role: String,
    },
    /// Set an administrator's role: `instance`, or `organization` of the
    /// one organization --org names (replacing its former ones). The admin
    /// API tokens it created beyond the new role are revoked. Never the
    /// last enabled instance administrator.
    Role {
        /// The administrator's username.
        name: String,
        /// `instance` or `organization`.
        role: String,
    },
    /// Let an organization administrator act on the organization --org
    /// names too.
    Grant {
        /// The administrator's username.
        name: String,
    },
    /// Take the organization --org names from an organization
    /// administrator (its admin API tokens bound to it are revoked); its
    /// last one cannot be taken (delete or disable the administrator).
    Revoke {
        /// The administrator's username.
        name: String,
    },
    /// List the administrators, their state and their failed sign-ins.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable an administrator: it cannot sign in, its sessions end, the
    /// admin API tokens it created are revoked. Never the last enabled one.
    Disable {
        /// The administrator's username.
        name: String,
    },
    /// Enable a disabled administrator again.
    Enable {
        /// The administrator's username.
        name: String,
    },
    /// Delete an administrator. Never the last enabled one.
    Delete {
        /// The administrator's username.
        name: String,
    },
    /// Set a new password for an administrator (its sessions end); read
    /// like `create` reads it.
    ResetPassword {
        /// The administrator's username.
        name: String,
        /// A file whose first line is the new password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Lift sign-in lockouts: forget an administrator's failed sign-ins
    /// (from every address), or every failure from one client address
    /// (--address, as logged with the lockout).
    Unlock {
        /// The administrator's username.
        #[arg(required_unless_present = "address", conflicts_with = "address")]
        name: Option<String>,
        /// A client address instead.
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
    },
}

/// `scimd schema …`
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print the custom extensions' definitions (JSON).
    List,
    /// Define an extension from a JSON file holding its RFC 7643 §7
    /// definition: {"id": "urn:…:<Name>:2.0:User", "attributes": […]}.
    Add {
        /// The definition's file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Change an extension's definition from a JSON file holding the whole
    /// new definition (same URN): attributes added, characteristics of
    /// existing ones changed where the values users hold still fit; every
    /// value is kept.
    Update {
        /// The definition's file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Remove an extension with every value users hold of it; --confirm
    /// must repeat the URN.
    Remove {
        /// The extension's URN.
        urn: String,
        /// The URN again.
        #[arg(long, value_name = "URN")]
        confirm: Option<String>,
    },
    /// Remove one attribute of an extension with every value users hold
    /// of it; --confirm must be <urn>:<name>.
    RemoveAttribute {
        /// The extension's URN.
        urn: String,
        /// The attribute's name.
        name: String,
        /// `<urn>:<name>`.
        #[arg(long, value_name = "URN:NAME")]
        confirm: Option<String>,
    },
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
    /// Revoke a token by id; every replica refuses it within
    /// `auth.token_cache_ttl_secs` (at once where that is 0).
    Revoke {
        /// The token's id, as shown by `scimd token list`.
        id: String,
    },
}

/// `scimd org …`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// List the organizations.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create an organization, with User Synchronization off.
    Create {
        /// Its URL name: a-z, 0-9 and '-' (its SCIM API is at /scim/v2/o/SLUG).
        slug: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// A host name whose requests reach it at the plain /scim/v2.
        #[arg(long)]
        host: Option<String>,
    },
    /// Rename an organization or change its host name.
    Update {
        /// The organization.
        slug: String,
        /// The new display name (default: unchanged).
        #[arg(long)]
        name: Option<String>,
        /// The new host name (default: unchanged).
        #[arg(long, conflicts_with = "no_host")]
        host: Option<String>,
        /// Remove its host name.
        #[arg(long)]
        no_host: bool,
    },
    /// Suspend an organization: every SCIM request of it gets 403.
    Suspend {
        /// The organization.
        slug: String,
    },
    /// Lift an organization's suspension.
    Resume {
        /// The organization.
        slug: String,
    },
    /// Delete an organization with all its users, groups, tokens and
    /// history (the default organization cannot be deleted).
    Delete {
        /// The organization.
        slug: String,
        /// The slug again, to confirm.
        #[arg(long, value_name = "SLUG")]
        confirm: String,
    },
}
