//! What a SCIM write records in the change log (`crate::changes`): the
//! rows of each kind of User and Group change, built from what the write
//! stored.
//!
//! A User's rows carry its `externalId` and the `data` of their full
//! event (RFC 9967 §2.4): on a create or a replace the User as the SCIM
//! API returns it (RFC 7643 §4.1), without `meta.location` (the base URL
//! belongs to the request) and without `groups`; on a patch the PATCH
//! operations that take the stored User from before to after
//! ([`patch_operations`]); never the password or its hash, which the
//! canonical attributes do not hold. Activate and deactivate events carry
//! no `data`. A Group's rows carry no `data`: its member list may be huge,
//! and the membership rows say what changed.

use serde_json::{json, Map, Value};

use scim_core::resource::{self, Meta};
use scim_core::schema::{PATCH_OP_SCHEMA, USER};

use crate::changes::{Event, NewChange};
use crate::error::StoreError;
use crate::scim::get_ci;
use crate::scim::users::UserRecord;

/// The `resource_type` of a User's rows.
pub const USER_TYPE: &str = "User";
/// The `resource_type` of a Group's rows.
pub const GROUP_TYPE: &str = "Group";

/// A User as the SCIM API returns it, without `meta.location` and
/// `groups`: the `data` of its created and replaced rows (JSON text).
pub fn user_data(rec: &UserRecord) -> Result<String, StoreError> {
    let meta = Meta {
        resource_type: USER.name,
        created: rec.created.clone(),
        last_modified: rec.last_modified.clone(),
        location: String::new(),
        version: format!("W/\"{}\"", rec.version),
    };
    let mut doc = resource::render(&USER, &rec.id, &rec.attrs, &meta);
    if let Some(Value::Object(meta)) = doc.get_mut("meta") {
        meta.remove("location");
    }
    serde_json::to_string(&doc).map_err(|e| StoreError::internal("serialising a user failed", &e))
}

/// A resource's `externalId`, when it has one (a string): the
/// `sub_id.externalId` of its events.
pub fn external_id(attrs: &Map<String, Value>) -> Option<String> {
    get_ci(attrs, "externalId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The rows of a User created.
pub fn user_created(rec: &UserRecord) -> Result<Vec<NewChange>, StoreError> {
    Ok(vec![NewChange::new(
        Event::UserCreated,
        USER_TYPE,
        Some(&rec.id),
    )
    .version(rec.version)
    .external_id(external_id(&rec.attrs))
    .data(user_data(rec)?)])
}

/// Whether a User with these attributes is active (as the store derives
/// the `active` column: a User without `active` is active).
fn is_active(attrs: &Map<String, Value>) -> bool {
    !matches!(get_ci(attrs, "active"), Some(Value::Bool(false)))
}

/// The rows of a User replaced (`event` [`Event::UserReplaced`]) or
/// patched ([`Event::UserPatched`]) from the attributes `before` to
/// `after`: that event, with `detail.paths` the attribute paths that
/// changed ([`changed_paths`], plus `password` when it was set), then
/// [`Event::UserActivated`] or [`Event::UserSuspended`] when `active`
/// flipped (in addition, at the same version, so that a consumer of
/// either kind sees it). A write that stored the same attributes (a PUT
/// of the resource as it is) still records its event, with no paths: its
/// version changed, and a reader of the log sees every version. (A PATCH
/// that changes nothing stores nothing, RFC 7644 §3.5.2, so records
/// nothing.)
///
/// The replaced row's `data` is the User after the change; the patched
/// row's is [`patch_operations`], none when only the password changed.
pub fn user_edited(
    event: Event,
    before: &Map<String, Value>,
    after: &UserRecord,
    password_set: bool,
) -> Result<Vec<NewChange>, StoreError> {
    let changed = changed_attributes(before, &after.attrs);
    let mut paths: Vec<String> = changed.iter().map(|c| c.path.clone()).collect();
    if password_set {
        paths.push("password".to_owned());
    }
    let external_id = external_id(&after.attrs);
    let mut row = NewChange::new(event, USER_TYPE, Some(&after.id))
        .version(after.version)
        .detail(json!({ "paths": paths }))
        .external_id(external_id.clone());
    if event == Event::UserPatched {
        if let Some(ops) = patch_operations(&changed) {
            row = row.data(ops);
        }
    } else {
        row = row.data(user_data(after)?);
    }
    let mut rows = vec![row];
    let flipped = match (is_active(before), is_active(&after.attrs)) {
        (false, true) => Some(Event::UserActivated),
        (true, false) => Some(Event::UserSuspended),
        _ => None,
    };
    if let Some(flipped) = flipped {
        rows.push(
            NewChange::new(flipped, USER_TYPE, Some(&after.id))
                .version(after.version)
                .external_id(external_id),
        );
    }
    Ok(rows)
}

/// An attribute path whose value changed, and its value after the change
/// (`None`: removed).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedAttribute {
    /// `title`, `name.givenName`, `urn:…:enterprise:2.0:User:department`.
    pub path: String,
    /// The value after the change.
    pub value: Option<Value>,
}

/// The attribute paths whose value differs between `before` and `after`,
/// sorted ([`changed_attributes`]).
pub fn changed_paths(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    changed_attributes(before, after)
        .into_iter()
        .map(|c| c.path)
        .collect()
}

/// The attributes whose value differs between `before` and `after`,
/// sorted by path, each path once: a top-level attribute (`title`,
/// `emails`: a multi-valued attribute is one path), or one level into a
/// complex attribute (`name.givenName`) or an extension
/// (`urn:…:enterprise:2.0:User:department`, RFC 7644 §3.10). Attribute
/// names compare case-insensitively (RFC 7643 §2.1).
pub fn changed_attributes(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<ChangedAttribute> {
    let mut changed = Vec::new();
    diff_level(before, after, None, &mut changed);
    changed.sort_by(|a, b| a.path.cmp(&b.path));
    changed.dedup_by(|a, b| a.path == b.path);
    changed
}

/// The PATCH request (RFC 7644 §3.5.2, JSON text) that takes a User from
/// before to after `changed`: a `replace` of each path with its new
/// value, a `remove` of each path that lost its value. It is the `data`
/// of a patch's full event (RFC 9967 §2.4.2), in one canonical form
/// whatever form the client sent (Entra's `"Replace"`, path-less values,
/// filters). `None` when nothing is left to send.
pub fn patch_operations(changed: &[ChangedAttribute]) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let ops: Vec<Value> = changed
        .iter()
        .map(|c| match &c.value {
            Some(value) => json!({"op": "replace", "path": c.path, "value": value}),
            None => json!({"op": "remove", "path": c.path}),
        })
        .collect();
    Some(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops}).to_string())
}

fn diff_level(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    parent: Option<&str>,
    changed: &mut Vec<ChangedAttribute>,
) {
    let path = |key: &str| match parent {
        None => key.to_owned(),
        // An extension's attributes follow its URN after a colon.
        Some(urn) if urn.contains(':') => format!("{urn}:{key}"),
        Some(p) => format!("{p}.{key}"),
    };
    for (key, new) in after {
        match get_ci(before, key) {
            Some(old) if old == new => {}
            Some(Value::Object(old)) if parent.is_none() => {
                if let Value::Object(new) = new {
                    diff_level(old, new, Some(key), changed);
                } else {
                    changed.push(ChangedAttribute {
                        path: path(key),
                        value: (!new.is_null()).then(|| new.clone()),
                    });
                }
            }
            Some(Value::Null) | None if new.is_null() => {}
            None if parent.is_none() && new.is_object() => {
                if let Value::Object(new) = new {
                    diff_level(&Map::new(), new, Some(key), changed);
                }
            }
            _ => changed.push(ChangedAttribute {
                path: path(key),
                value: (!new.is_null()).then(|| new.clone()),
            }),
        }
    }
    for (key, old) in before {
        if get_ci(after, key).is_none() && !old.is_null() {
            match old {
                Value::Object(old) if parent.is_none() => {
                    diff_level(old, &Map::new(), Some(key), changed);
                }
                _ => changed.push(ChangedAttribute {
                    path: path(key),
                    value: None,
                }),
            }
        }
    }
}

/// The row of a User deleted (`soft`: kept until the purge), at `version`
/// (the soft-deleted row's version; none once the row is gone), with its
/// `externalId`, and the rows of the groups it was removed from, at their
/// new versions.
pub fn user_deleted(
    id: &str,
    external_id: Option<String>,
    soft: Option<i64>,
    left_groups: &[(String, i64)],
) -> Vec<NewChange> {
    let mut rows: Vec<NewChange> = left_groups
        .iter()
        .map(|(group, version)| members_row(Event::MembersRemoved, group, *version, &[id]))
        .collect();
    rows.push(
        match soft {
            Some(version) => {
                NewChange::new(Event::UserSoftDeleted, USER_TYPE, Some(id)).version(version)
            }
            None => NewChange::new(Event::UserDeleted, USER_TYPE, Some(id)),
        }
        .external_id(external_id),
    );
    rows
}

/// The rows of Users removed by the retention purge.
pub fn users_purged(ids: &[String]) -> Vec<NewChange> {
    ids.iter()
        .map(|id| NewChange::new(Event::UserPurged, USER_TYPE, Some(id)))
        .collect()
}

/// A Group change (`GroupCreated`, `GroupReplaced`, `GroupPatched`,
/// `GroupDeleted`) at `version`; a patch names the attribute `paths` it
/// changed.
pub fn group_row(event: Event, id: &str, version: Option<i64>, paths: &[String]) -> NewChange {
    let mut row = NewChange::new(event, GROUP_TYPE, Some(id));
    if let Some(v) = version {
        row = row.version(v);
    }
    if !paths.is_empty() {
        row = row.detail(json!({ "paths": paths }));
    }
    row
}

/// A membership change of the group `group`: `event`
/// ([`Event::MembersAdded`] or [`Event::MembersRemoved`]) of `members`
/// (ids), with the group's version after it.
pub fn members_row<S: AsRef<str>>(
    event: Event,
    group: &str,
    version: i64,
    members: &[S],
) -> NewChange {
    let members: Vec<&str> = members.iter().map(AsRef::as_ref).collect();
    NewChange::new(event, GROUP_TYPE, Some(group))
        .version(version)
        .detail(json!({ "members": members }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn changed_paths_go_one_level_into_complex_attributes_and_extensions() {
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let before = obj(json!({
            "userName": "a", "title": "t",
            "name": {"givenName": "A", "familyName": "F"},
            "emails": [{"value": "a@x"}],
            ent: {"department": "D", "manager": {"value": "m1"}},
            "nickName": "n"
        }));
        let after = obj(json!({
            "userName": "a", "title": "t2",
            "name": {"givenName": "B", "familyName": "F"},
            "emails": [{"value": "b@x"}],
            ent: {"department": "E", "manager": {"value": "m2"}},
            "active": false,
            "addresses": null
        }));
        assert_eq!(
            changed_paths(&before, &after),
            vec![
                "active".to_owned(),
                "emails".to_owned(),
                "name.givenName".to_owned(),
                "nickName".to_owned(),
                "title".to_owned(),
                format!("{ent}:department"),
                format!("{ent}:manager"),
            ]
        );
        assert!(changed_paths(&before, &before).is_empty());
        // A complex attribute added or removed names its sub-attributes.
        let added = obj(json!({"name": {"givenName": "A"}}));
        assert_eq!(changed_paths(&Map::new(), &added), ["name.givenName"]);
        assert_eq!(changed_paths(&added, &Map::new()), ["name.givenName"]);
    }

    #[test]
    fn an_active_flip_is_recorded_after_the_edit_and_nothing_for_no_change() {
        let before = obj(json!({"userName": "a", "active": true, "externalId": "e"}));
        let rec = UserRecord {
            id: "u".into(),
            attrs: obj(json!({"userName": "a", "active": false, "externalId": "e"})),
            version: 3,
            created: "c".into(),
            last_modified: "m".into(),
        };
        let rows = user_edited(Event::UserPatched, &before, &rec, false).unwrap();
        let events: Vec<Event> = rows.iter().map(|r| r.event).collect();
        assert_eq!(events, [Event::UserPatched, Event::UserSuspended]);
        assert!(rows.iter().all(|r| r.resource_version == Some(3)));
        assert_eq!(rows[0].detail, json!({"paths": ["active"]}));
        let data: Value = serde_json::from_str(rows[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"schemas": [PATCH_OP_SCHEMA],
                   "Operations": [{"op": "replace", "path": "active", "value": false}]})
        );
        // Deactivate has no data (RFC 9967 §2.4.5); every row names the
        // externalId.
        assert_eq!(rows[1].data, None);
        assert!(rows.iter().all(|r| r.external_id.as_deref() == Some("e")));
        let back = UserRecord {
            attrs: before.clone(),
            ..rec.clone()
        };
        let rows = user_edited(Event::UserReplaced, &rec.attrs, &back, false).unwrap();
        assert_eq!(rows[1].event, Event::UserActivated);
        // A replace's data is the User after it.
        let data: Value = serde_json::from_str(rows[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(data["id"], "u");
        assert_eq!(data["active"], true);
        assert!(data["meta"].get("location").is_none());
        let same = user_edited(Event::UserReplaced, &before, &back, false).unwrap();
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].detail, json!({"paths": []}));
        let pw = user_edited(Event::UserPatched, &before, &back, true).unwrap();
        assert_eq!(pw[0].detail, json!({"paths": ["password"]}));
        // Nothing but the password changed: no operations to send (the
        // password never is), so the full event falls back to a notice.
        assert_eq!(pw[0].data, None);
    }

    #[test]
    fn a_patch_is_recorded_as_the_operations_that_replay_it() {
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let before = obj(json!({
            "userName": "a", "title": "t", "nickName": "n",
            "name": {"givenName": "A", "familyName": "F"},
            ent: {"department": "D"}
        }));
        let after = obj(json!({
            "userName": "a", "title": "t2", "addresses": null,
            "name": {"familyName": "F"},
            "emails": [{"value": "b@x", "type": "work"}],
            ent: {"department": "E"}
        }));
        let changed = changed_attributes(&before, &after);
        let ops: Value = serde_json::from_str(&patch_operations(&changed).unwrap()).unwrap();
        assert_eq!(
            ops,
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "replace", "path": "emails", "value": [{"value": "b@x", "type": "work"}]},
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "nickName"},
                {"op": "replace", "path": "title", "value": "t2"},
                {"op": "replace", "path": format!("{ent}:department"), "value": "E"},
            ]})
        );
        assert_eq!(
            patch_operations(&changed_attributes(&before, &before)),
            None
        );
    }
}
