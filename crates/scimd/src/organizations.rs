//! `scimd org …`: the organizations (docs/ORGANIZATIONS.md) from the
//! server's shell, and the `--org SLUG` every organization-scoped command
//! takes.

use std::io::Write;

use scim_store::organizations::{self, Organization};
use scim_store::{OrgId, Store};

use crate::cli::OrgCommand;
use crate::settings::Settings;
use crate::{cli_actor, connect, Error};

/// The id of the organization `slug`, or a usage error naming the
/// command that lists them.
pub(crate) fn org_id(store: &Store, slug: &str) -> Result<OrgId, Error> {
    Ok(find(store, slug)?.id)
}

fn find(store: &Store, slug: &str) -> Result<Organization, Error> {
    store
        .read(|c| organizations::find_organization(c, slug))?
        .ok_or_else(|| {
            Error::Usage(format!(
                "there is no organization \"{slug}\"; `scimd org list` lists them"
            ))
        })
}

fn print(out: &mut impl Write, org: &Organization) -> Result<(), Error> {
    outln!(
        out,
        "{}\t{}\t{}\t{}",
        org.slug,
        if org.suspended() {
            "suspended"
        } else {
            "active"
        },
        org.host.as_deref().unwrap_or("-"),
        org.name
    )?;
    Ok(())
}

fn json(org: &Organization) -> serde_json::Value {
    serde_json::json!({
        "id": org.id.0,
        "slug": org.slug,
        "name": org.name,
        "host": org.host,
        "suspended_at": org.suspended_at,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
        "scim_path": if org.id == OrgId::DEFAULT {
            "/scim/v2".to_owned()
        } else {
            format!("/scim/v2/o/{}", org.slug)
        },
    })
}

/// Runs `scimd org …`.
pub(crate) fn org_command(
    out: &mut impl Write,
    settings: &Settings,
    cmd: OrgCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    let actor = cli_actor();
    match cmd {
        OrgCommand::List { json: as_json } => {
            let list = store.read(organizations::list_organizations)?;
            if as_json {
                let list: Vec<serde_json::Value> = list.iter().map(json).collect();
                let text =
                    serde_json::to_string_pretty(&list).map_err(|e| Error::Usage(e.to_string()))?;
                outln!(out, "{text}")?;
            } else {
                outln!(out, "SLUG\tSTATE\tHOST\tNAME")?;
                for org in &list {
                    print(out, org)?;
                }
            }
        }
        OrgCommand::Create { slug, name, host } => {
            let org = store.write(|c| {
                organizations::create_organization(c, &slug, &name, host.as_deref(), &actor)
            })?;
            store.invalidate_organizations();
            outln!(
                out,
                "created organization {} ({}); its SCIM API is at /scim/v2/o/{}, with User \
                 Synchronization off: create a token with `scimd --org {} token create`",
                org.slug,
                org.name,
                org.slug,
                org.slug
            )?;
        }
        OrgCommand::Update {
            slug,
            name,
            host,
            no_host,
        } => {
            let current = find(&store, &slug)?;
            let name = name.unwrap_or(current.name);
            let host = if no_host { None } else { host.or(current.host) };
            let org = store.write(|c| {
                organizations::update_organization(c, current.id, &name, host.as_deref(), &actor)
            })?;
            store.invalidate_organizations();
            print(out, &org)?;
        }
        OrgCommand::Suspend { slug } => suspend(out, &store, &actor, &slug, true)?,
        OrgCommand::Resume { slug } => suspend(out, &store, &actor, &slug, false)?,
        OrgCommand::Delete { slug, confirm } => {
            let id = org_id(&store, &slug)?;
            store.write(|c| organizations::delete_organization(c, id, &confirm, &actor))?;
            store.invalidate_organizations();
            outln!(out, "deleted organization {slug} and all its data")?;
        }
    }
    Ok(())
}

fn suspend(
    out: &mut impl Write,
    store: &Store,
    actor: &scim_store::changes::Actor,
    slug: &str,
    suspended: bool,
) -> Result<(), Error> {
    let id = org_id(store, slug)?;
    let org =
        store.write(|c| organizations::set_organization_suspended(c, id, suspended, actor))?;
    store.invalidate_organizations();
    if suspended {
        outln!(
            out,
            "suspended organization {}: its SCIM requests get 403 (on other replicas within a second)",
            org.slug
        )?;
    } else {
        outln!(out, "resumed organization {}", org.slug)?;
    }
    Ok(())
}
