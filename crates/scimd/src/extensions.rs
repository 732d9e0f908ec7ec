//! `scimd schema …`: the custom schema extensions of the User from the
//! server's shell, through the same functions as the admin API and the
//! console (`scim_admin::extensions`).

use std::io::Write;

use crate::cli::SchemaCommand;
use crate::settings::Settings;
use crate::{cli_actor, connect, read_file, Error};

/// Runs `scimd schema …`.
pub(crate) fn schema_command(
    out: &mut impl Write,
    settings: &Settings,
    cmd: SchemaCommand,
) -> Result<(), Error> {
    let store = connect(settings)?;
    match cmd {
        SchemaCommand::List => {
            let list = scim_admin::extensions::list(&store)?;
            let text =
                serde_json::to_string_pretty(&list).map_err(|e| Error::Usage(e.to_string()))?;
            outln!(out, "{text}")?;
        }
        SchemaCommand::Add { file } => {
            let text = read_file(&file, "FILE")?;
            let definition: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{}: not JSON: {e}", file.display())))?;
            let created = scim_admin::extensions::create(&store, &cli_actor(), &definition)?;
            outln!(
                out,
                "defined {} ({} attributes); SCIM clients see it at /Schemas",
                created.id,
                created.attributes.len()
            )?;
        }
        SchemaCommand::Update { file } => {
            let text = read_file(&file, "FILE")?;
            let definition: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{}: not JSON: {e}", file.display())))?;
            let urn = definition
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let updated = scim_admin::extensions::update(&store, &cli_actor(), &urn, &definition)?;
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            };
            outln!(
                out,
                "changed {}: attributes added: {}; changed: {}; the values users hold are kept",
                updated.extension.id,
                list(&updated.added),
                list(&updated.changed)
            )?;
        }
        SchemaCommand::Remove { urn, confirm } => {
            let removed =
                scim_admin::extensions::remove(&store, &cli_actor(), &urn, confirm.as_deref())?;
            outln!(
                out,
                "removed {} and its values from {} users",
                removed.removed,
                removed.users
            )?;
        }
        SchemaCommand::RemoveAttribute { urn, name, confirm } => {
            let removed = scim_admin::extensions::remove_attribute(
                &store,
                &cli_actor(),
                &urn,
                &name,
                confirm.as_deref(),
            )?;
            outln!(
                out,
                "removed {} and its values from {} users",
                removed.removed,
                removed.users
            )?;
        }
    }
    Ok(())
}
