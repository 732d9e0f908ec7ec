//! The admin side's part of the change log (issue 14): the admin events it
//! records, and the operator's view of the log, the Activity API and the
//! console's Activity page and timelines.
//!
//! Every admin write records its event with [`record_event`] as the last
//! statement of its transaction (`scim_store::changes`: on PostgreSQL the
//! change log's lock is taken last and held only to the commit). A row
//! never holds a secret, a token value, a password or a hash: the detail
//! names what changed (a token's name, a setting's old and new value).

use scim_store::changes::{self, Actor, Event, NewChange};
use scim_store::{DbConnection, StoreError};

/// Records `event` of the admin resource `resource_type`/`id`, made by
/// `actor` now, with `detail` (a JSON object). Call it last in the
/// transaction of the change.
pub fn record_event(
    conn: &mut DbConnection,
    actor: &Actor,
    event: Event,
    resource_type: &str,
    id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    changes::record(
        conn,
        actor,
        &scim_core::datetime::now(),
        &[NewChange::new(event, resource_type, id).detail(detail)],
    )
}
