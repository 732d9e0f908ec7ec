//! Group membership as clients send it (RFC 7643 §4.2 `members`, RFC
//! 7644 §3.5.2): member references, and the split of a Group PATCH into
//! membership changes (which the store applies row by row, in proportion
//! to the members named, never to the group's size) and the other
//! attribute operations (applied by [`crate::patch`]). Covers every form
//! Entra ID (both dialects) and Okta send.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{parse_patch_path, Filter, PatchPath};
use crate::patch::{get_ci, is_value_path, parse_path, PatchOp, PatchOpKind};
use crate::schema::GROUP_SCHEMA;

/// The kind of resource a member is (RFC 7643 §4.2 `members.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberType {
    /// A User.
    User,
    /// A (nested) Group.
    Group,
}

impl MemberType {
    /// The canonical value of `members.type`: "User" or "Group".
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::User => "User",
            MemberType::Group => "Group",
        }
    }

    /// Parses a client's `members.type`; canonical values compare
    /// case-insensitively (the sub-attribute is not caseExact, RFC 7643
    /// §4.2). `None` for anything else.
    pub fn parse(s: &str) -> Option<MemberType> {
        if s.eq_ignore_ascii_case("User") {
            Some(MemberType::User)
        } else if s.eq_ignore_ascii_case("Group") {
            Some(MemberType::Group)
        } else {
            None
        }
    }
}

/// A member as a client names it: an id and, optionally, its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's id (`members.value`).
    pub value: String,
    /// `members.type`, if the client sent it; without it the store finds
    /// out whether the id is a User or a Group.
    pub member_type: Option<MemberType>,
}

/// Parses member references from a JSON value: an array of (or a single)
/// `{"value": "id", "type": "User"|"Group", "$ref": …, "display": …}`.
pub fn member_refs(value: &Value) -> Result<Vec<MemberRef>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        Value::Null => Vec::new(),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be an array of objects such as {\"value\": \"<id>\"}",
            ))
        }
    };
    items
        .into_iter()
        .map(|item| {
            let obj = item.as_object().ok_or_else(|| {
                ScimError::invalid_value(
                    "each member must be an object such as {\"value\": \"<id>\"}",
                )
            })?;
            let get = |name: &str| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let value = match get("value") {
                Some(Value::String(s)) if s.contains('\0') => {
                    return Err(crate::resource::nul_error("members.value"))
                }
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => {
                    return Err(ScimError::invalid_value(
                        "each member needs a \"value\": the id of a User or Group",
                    ))
                }
            };
            let member_type = match get("type") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) if t.eq_ignore_ascii_case("user") => Some(MemberType::User),
                Some(Value::String(t)) if t.eq_ignore_ascii_case("group") => {
                    Some(MemberType::Group)
                }
                Some(other) => {
                    return Err(ScimError::invalid_value(format!(
                        "member type must be \"User\" or \"Group\", got {other}"
                    )))
                }
            };
            Ok(MemberRef { value, member_type })
        })
        .collect()
}

/// One change to a group's membership, in request order.
#[derive(Debug)]
pub enum MemberChange {
    /// Add these members (RFC 7644 §3.5.2.1); existing ones are kept.
    Add(Vec<MemberRef>),
    /// Remove the members with these ids (Entra's default dialect: a
    /// `remove` with a value array).
    Remove(Vec<String>),
    /// Remove the members matching `members[filter]`.
    RemoveMatching(Filter),
    /// Remove every member (`remove` of `members` without a value).
    RemoveAll,
    /// Replace the whole membership with these members.
    Replace(Vec<MemberRef>),
}

fn is_members(path: &PatchPath) -> bool {
    path.attr.eq_ignore_ascii_case("members")
        && path
            .urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
}

/// Whether `op`, a PATCH operation as sent, changes membership: its path
/// names `members`, or it has no path and its value sets `members`.
/// [`split_ops`] takes the first kind, and the second when it sets nothing
/// else, out of the operations [`crate::patch::apply`] counts.
pub(crate) fn is_membership_op(op: &Map<String, Value>) -> bool {
    match get_ci(op, "path") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            parse_path(0, s.trim()).is_ok_and(|p| is_members(&p))
        }
        None | Some(Value::Null | Value::String(_)) => get_ci(op, "value")
            .and_then(Value::as_object)
            .is_some_and(|v| v.keys().any(|k| is_members_key(k))),
        Some(_) => false,
    }
}

/// Whether a key of a path-less value names `members`.
fn is_members_key(k: &str) -> bool {
    k.eq_ignore_ascii_case("members") || k.eq_ignore_ascii_case(&format!("{GROUP_SCHEMA}:members"))
}

/// Splits a PATCH into membership changes (applied in SQL, proportional
/// to the members named) and the remaining attribute operations (applied
/// in memory by scim-core), covering every form Entra (both dialects) and
/// Okta send.
pub fn split_ops(ops: Vec<PatchOp>) -> Result<(Vec<MemberChange>, Vec<PatchOp>), ScimError> {
    let mut changes = Vec::new();
    let mut rest = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) if is_members(path) => {
                changes.push(member_change(op.op, path, op.value.as_ref())?);
            }
            None => {
                // Path-less add/replace: pull `members` out of the object.
                let mut op = op;
                if let Some(Value::Object(obj)) = &mut op.value {
                    let key = obj.keys().find(|k| is_members_key(k)).cloned();
                    if let Some(key) = key {
                        let members = obj.remove(&key).unwrap_or(Value::Null);
                        let refs = member_refs(&members)?;
                        changes.push(match op.op {
                            PatchOpKind::Replace => MemberChange::Replace(refs),
                            _ => MemberChange::Add(refs),
                        });
                    }
                    // A key written as a value path on members
                    // (`members[value eq "id"]`) is taken exactly as an
                    // operation with that path, as crate::patch does
                    // for the other attributes.
                    let value_paths: Vec<(String, PatchPath)> = obj
                        .keys()
                        .filter(|k| is_value_path(k))
                        .filter_map(|k| Some((k.clone(), parse_patch_path(k).ok()?)))
                        .filter(|(_, p)| is_members(p))
                        .collect();
                    for (key, path) in value_paths {
                        let v = obj.remove(&key).unwrap_or(Value::Null);
                        changes.push(member_change(op.op, &path, Some(&v)).map_err(|e| {
                            ScimError::new(e.scim_type, format!("value key {key:?}: {}", e.detail))
                        })?);
                    }
                    if obj.is_empty() {
                        continue;
                    }
                }
                rest.push(op);
            }
            Some(_) => rest.push(op),
        }
    }
    Ok((changes, rest))
}

/// The membership change of one operation whose path names `members`.
fn member_change(
    op: PatchOpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<MemberChange, ScimError> {
    if path.sub_attr.is_some() {
        return Err(ScimError::mutability(
            "the sub-attributes of members cannot be modified; add or remove members instead",
        ));
    }
    Ok(match (op, &path.filter) {
        (PatchOpKind::Remove, Some(filter)) => MemberChange::RemoveMatching(filter.clone()),
        (_, Some(_)) => {
            return Err(ScimError::invalid_path(
                "a filter on members is only valid with \"remove\"; use add with a value to add members",
            ))
        }
        (PatchOpKind::Add, None) => MemberChange::Add(member_refs(value.unwrap_or(&Value::Null))?),
        (PatchOpKind::Replace, None) => {
            MemberChange::Replace(member_refs(value.unwrap_or(&Value::Null))?)
        }
        (PatchOpKind::Remove, None) => match value {
            // Entra's default dialect: remove the listed members.
            Some(v) if !v.is_null() => {
                MemberChange::Remove(member_refs(v)?.into_iter().map(|m| m.value).collect())
            }
            _ => MemberChange::RemoveAll,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::patch::parse_request;
    use serde_json::json;

    fn split(body: Value) -> Result<(Vec<MemberChange>, Vec<PatchOp>), ScimError> {
        split_ops(parse_request(&body).unwrap())
    }

    fn patch(ops: Value) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    }

    fn ids(refs: &[MemberRef]) -> Vec<&str> {
        refs.iter().map(|r| r.value.as_str()).collect()
    }

    #[test]
    fn member_references_take_every_shape_clients_send() {
        let refs = member_refs(&json!([{"value": " u1 ", "type": "user"}, {"VALUE": "g1", "Type": "Group", "display": "x"}])).unwrap();
        assert_eq!(ids(&refs), ["u1", "g1"]);
        assert_eq!(refs[0].member_type, Some(MemberType::User));
        assert_eq!(refs[1].member_type, Some(MemberType::Group));
        assert_eq!(ids(&member_refs(&json!({"value": "u2"})).unwrap()), ["u2"]);
        assert!(member_refs(&Value::Null).unwrap().is_empty());
        for bad in [
            json!("u1"),
            json!([1]),
            json!([{"value": ""}]),
            json!([{"value": "u", "type": "Robot"}]),
            json!([{"value": "u\u{0}"}]),
        ] {
            let err = member_refs(&bad).unwrap_err();
            assert_eq!(err.scim_type, crate::ScimType::InvalidValue, "{bad}");
        }
        assert_eq!(MemberType::parse("GROUP"), Some(MemberType::Group));
        assert_eq!(MemberType::parse("x"), None);
        assert_eq!(MemberType::User.as_str(), "User");
    }

    #[test]
    fn entra_okta_and_rfc_membership_forms_become_changes() {
        // Entra, default dialect: Add / Remove with a value array.
        let (c, rest) = split(patch(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u1"}]}
        ])))
        .unwrap();
        assert!(rest.is_empty());
        assert!(matches!(&c[0], MemberChange::Add(r) if ids(r) == ["u1", "u2"]));
        assert!(matches!(&c[1], MemberChange::Remove(v) if v == &["u1".to_owned()]));
        // RFC / aadOptscim062020: remove with a filter; remove all.
        let (c, _) = split(patch(json!([
            {"op": "remove", "path": "members[value eq \"u2\"]"},
            {"op": "remove", "path": "members"}
        ])))
        .unwrap();
        assert!(matches!(c[0], MemberChange::RemoveMatching(_)));
        assert!(matches!(c[1], MemberChange::RemoveAll));
        // Okta: path-less replace with members and another attribute.
        let (c, rest) = split(patch(json!([
            {"op": "replace", "value": {"displayName": "Ops", "members": [{"value": "u3"}]}}
        ])))
        .unwrap();
        assert!(matches!(&c[0], MemberChange::Replace(r) if ids(r) == ["u3"]));
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].value, Some(json!({"displayName": "Ops"})));
        // Path-less add of only members, under the URN: nothing else left.
        let (c, rest) = split(patch(json!([
            {"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "u4"}]}}
        ]))).unwrap();
        assert!(matches!(&c[0], MemberChange::Add(r) if ids(r) == ["u4"]));
        assert!(rest.is_empty());
        // Other attributes pass through untouched.
        let (c, rest) = split(patch(json!([
            {"op": "replace", "path": "displayName", "value": "X"}
        ])))
        .unwrap();
        assert!(c.is_empty());
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn invalid_membership_operations_are_refused() {
        let err = split(patch(
            json!([{"op": "replace", "path": "members.display", "value": "x"}]),
        ))
        .unwrap_err();
        assert_eq!(err.scim_type, crate::ScimType::Mutability);
        let err = split(patch(
            json!([{"op": "add", "path": "members[value eq \"u\"]", "value": [{"value": "u"}]}]),
        ))
        .unwrap_err();
        assert_eq!(err.scim_type, crate::ScimType::InvalidPath);
        let err = split(patch(
            json!([{"op": "add", "path": "members", "value": [{"type": "User"}]}]),
        ))
        .unwrap_err();
        assert_eq!(err.scim_type, crate::ScimType::InvalidValue);
    }

    #[test]
    fn pathless_value_path_keys_on_members_are_refused_as_their_paths() {
        // Path-less add/replace with a key written as a members value
        // path: the same error as that path, naming the key; never
        // applied to the stored attributes as if members were one of them.
        let cases = [
            (
                "members[value eq \"u\"]",
                json!([{"value": "u"}]),
                crate::ScimType::InvalidPath,
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq \"u\"]",
                json!({"value": "u"}),
                crate::ScimType::InvalidPath,
            ),
            (
                "members[value eq \"u\"].display",
                json!("x"),
                crate::ScimType::Mutability,
            ),
        ];
        for (key, v, ty) in cases {
            for op in ["add", "replace"] {
                let err = split(patch(json!([{"op": op, "path": key, "value": v}]))).unwrap_err();
                assert_eq!(err.scim_type, ty, "{op} path {key}");
                let err = split(patch(
                    json!([{"op": op, "value": {"displayName": "d", key: v}}]),
                ))
                .unwrap_err();
                assert_eq!(err.scim_type, ty, "{op} {key}");
                assert!(
                    err.detail.starts_with(&format!("value key {key:?}: ")),
                    "{}",
                    err.detail
                );
            }
        }
        // Other value-path keys are left to crate::patch.
        let (c, rest) = split(patch(json!([
            {"op": "replace", "value": {"displayName[value eq \"x\"]": "y"}}
        ])))
        .unwrap();
        assert!(c.is_empty());
        assert_eq!(rest.len(), 1);
    }
}
