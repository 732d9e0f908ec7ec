//! `scimd admin …`: administrators from the server's shell, through the
//! same functions as the admin API and the console
//! (`scim_admin::admins::service`). The CLI is the way back in when no
//! administrator can sign in: it unlocks, enables, and resets passwords.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use scim_admin::admins::service::{self, LockView};
use scim_store::Store;

use crate::cli::AdminCommand;
use crate::settings::Settings;
use crate::{cli_actor, connect, read_file, Error};

/// A new password: the first line of `password_file`; else, on a
/// terminal, typed twice without echo; else the first line of standard
/// input (scripts, tests). Only the line break is dropped: spaces may be
/// part of a passphrase.
fn read_new_password(password_file: Option<&Path>, username: &str) -> Result<String, Error> {
    if let Some(path) = password_file {
        let raw = read_file(path, "--password-file")?;
        return Ok(raw.lines().next().unwrap_or_default().to_owned());
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {username}: "))?;
        let again = rpassword::prompt_password("The same password again: ")?;
        if first != again {
            return Err(Error::Usage(
                "the two passwords differ; run the command again and type the same password twice"
                    .into(),
            ));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.lines().next().unwrap_or_default().to_owned())
}

/// One Argon2id hash in a one-shot process: the server's gate is not
/// involved, but the same code path is.
fn hasher() -> scim_store::PasswordHasher {
    scim_store::PasswordHasher::new(1, Duration::from_secs(60))
}

fn lock_view(settings: &Settings) -> LockView {
    LockView {
        limits: settings.admin_config().login_limits,
        now: time::OffsetDateTime::now_utc(),
    }
}

/// The organizations `--role` with `--org` gives: --org's for an
/// organization administrator, none for an instance administrator.
fn organizations_of(role: &str, org: &str) -> Vec<String> {
    if role.trim() == "organization" {
        vec![org.to_owned()]
    } else {
        Vec::new()
    }
}

/// "an instance administrator", "an organization administrator of acme,
/// globex".
fn describe_role(a: &scim_admin::admins::model::AdminDetails) -> String {
    if a.role == "organization" {
        format!(
            "an organization administrator of {}",
            a.organizations.join(", ")
        )
    } else {
        "an instance administrator".to_owned()
    }
}

fn id_of(store: &Store, name: &str) -> Result<String, Error> {
    Ok(service::admin_id_by_name(store, name)?)
}

/// Runs `scimd admin …`.
pub(crate) fn admin_command(
    out: &mut impl Write,
    settings: &Settings,
    org: &str,
    cmd: AdminCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    let view = lock_view(settings);
    let actor = cli_actor();
    match cmd {
        AdminCommand::Create {
            username,
            password_file,
            role,
        } => {
            let password = read_new_password(password_file.as_deref(), &username)?;
            let request = scim_admin::admins::model::CreateAdminRequest {
                username,
                password,
                organizations: organizations_of(&role, org),
                role: Some(role),
            };
            let admin = actix_web::rt::System::new().block_on(service::create_admin(
                &store,
                &hasher(),
                &actor,
                &request,
                &view,
            ))?;
            outln!(
                out,
                "Created administrator {} ({}), {}.",
                admin.username,
                admin.id,
                describe_role(&admin)
            )
        }
        AdminCommand::Role { name, role } => {
            let orgs = organizations_of(&role, org);
            let a = service::set_role(&store, &actor, &id_of(&store, &name)?, &role, &orgs, &view)?;
            outln!(
                out,
                "Administrator {} is now {}.",
                a.username,
                describe_role(&a)
            )
        }
        AdminCommand::Grant { name } => {
            let before = service::get_admin(&store, &id_of(&store, &name)?, &view)?;
            if before.role != "organization" {
                return Err(Error::Usage(format!(
                    "{name} is an instance administrator: it acts on every organization already (`scimd --org {org} admin role {name} organization` makes it an administrator of {org} only)"
                )));
            }
            let mut orgs = before.organizations.clone();
            orgs.push(org.to_owned());
            let a = service::set_role(&store, &actor, &before.id, "organization", &orgs, &view)?;
            outln!(
                out,
                "Administrator {} is now {}.",
                a.username,
                describe_role(&a)
            )
        }
        AdminCommand::Revoke { name } => {
            let before = service::get_admin(&store, &id_of(&store, &name)?, &view)?;
            if !before.organizations.iter().any(|o| o == org) {
                return Err(Error::Usage(format!(
                    "{name} is not an organization administrator of {org}"
                )));
            }
            let orgs: Vec<String> = before
                .organizations
                .iter()
                .filter(|o| *o != org)
                .cloned()
                .collect();
            let a = service::set_role(&store, &actor, &before.id, "organization", &orgs, &view)?;
            outln!(
                out,
                "Administrator {} is now {}.",
                a.username,
                describe_role(&a)
            )
        }
        AdminCommand::List { json } => list(out, &store, &view, json),
        AdminCommand::Disable { name } => {
            let a = service::disable_admin(&store, &actor, &id_of(&store, &name)?, &view)?;
            outln!(
                out,
                "Disabled administrator {}: its sessions ended and the admin API tokens it created are revoked.",
                a.username
            )
        }
        AdminCommand::Enable { name } => {
            let a = service::enable_admin(&store, &actor, &id_of(&store, &name)?, &view)?;
            outln!(out, "Enabled administrator {}.", a.username)
        }
        AdminCommand::Delete { name } => {
            service::delete_admin(&store, &actor, &id_of(&store, &name)?, view.now)?;
            outln!(out, "Deleted administrator {name}.")
        }
        AdminCommand::ResetPassword {
            name,
            password_file,
        } => reset_password(out, &store, &actor, &name, password_file),
        AdminCommand::Unlock { name, address } => match (name, address) {
            (_, Some(address)) => {
                let cleared = service::unlock_address(&store, &actor, &address)?;
                outln!(
                    out,
                    "Unlocked sign-in from {address} ({cleared} failed sign-in{} forgotten).",
                    if cleared == 1 { "" } else { "s" }
                )
            }
            (Some(name), None) => {
                let before = service::get_admin(&store, &id_of(&store, &name)?, &view)?;
                let a = service::unlock_admin(&store, &actor, &before.id, &view)?;
                outln!(
                    out,
                    "Unlocked administrator {} ({} failed sign-in{} forgotten).",
                    a.username,
                    before.recent_failures,
                    if before.recent_failures == 1 { "" } else { "s" }
                )
            }
            (None, None) => Err(Error::Usage(
                "name an administrator, or give --address ADDR".into(),
            )),
        },
    }
}

fn reset_password(
    out: &mut impl Write,
    store: &Store,
    actor: &scim_store::changes::Actor,
    name: &str,
    password_file: Option<PathBuf>,
) -> Result<(), Error> {
    let id = id_of(store, name)?;
    let password = read_new_password(password_file.as_deref(), name)?;
    actix_web::rt::System::new().block_on(service::reset_password(
        store,
        &hasher(),
        actor,
        None,
        &id,
        &password,
    ))?;
    outln!(
        out,
        "Set a new password for administrator {name}; its sessions ended."
    )
}

fn list(out: &mut impl Write, store: &Store, view: &LockView, json: bool) -> Result<(), Error> {
    let admins = service::list_admins(store, view)?;
    if json {
        return outln!(
            out,
            "{}",
            serde_json::to_string(&admins).map_err(|e| Error::Usage(e.to_string()))?
        );
    }
    outln!(
        out,
        "{:<24}  {:<8}  {:<24}  {:<27}  {:<27}  {:>8}  LOCKED OUT FROM",
        "USERNAME",
        "STATE",
        "ROLE",
        "CREATED",
        "LAST SIGN-IN",
        "FAILURES"
    )?;
    for a in admins {
        outln!(
            out,
            "{:<24}  {:<8}  {:<24}  {:<27}  {:<27}  {:>8}  {}",
            a.username,
            a.state,
            if a.role == "organization" {
                format!("organization: {}", a.organizations.join(","))
            } else {
                a.role.clone()
            },
            a.created_at,
            a.last_login_at.as_deref().unwrap_or("never"),
            a.recent_failures,
            a.locked_from.join(", ")
        )?;
    }
    Ok(())
}
