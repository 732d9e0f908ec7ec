//! Request bodies parsed with the caps that apply to them.
//!
//! A POST or PUT body (RFC 7644 §3.3, §3.5.1) may give a multi-valued
//! attribute at most its cap of values ([`crate::schema::MAX_VALUES`]),
//! and a PATCH (RFC 7644 §3.5.2) at most
//! [`crate::patch::MAX_OPERATIONS`] operations, each giving an attribute
//! at most its cap. [`crate::resource::normalize`] and
//! [`crate::patch::apply`] check these on the parsed body; [`parse`]
//! checks them while parsing, and stops at the first array longer than
//! its cap, with the error the domain would answer. A request refused for
//! its size then costs reading its bytes, not building (and freeing) a
//! tree of every value it carries: on a two-core machine that was most of
//! a core for a client sending 45,000-value PATCHes back to back.
//!
//! The parser refuses nothing that the domain accepts: an array is
//! capped only where the domain would refuse it whole. Arrays under
//! unknown or readOnly attributes (ignored by the domain), Group `members`
//! (uncapped: identity providers send thousands) and anything else keep
//! no bound here but the body size. (One exception: a PATCH operation
//! that repeats its `path` member, which RFC 8259 §4 leaves undefined, is
//! bounded by the first where the domain reads the last.)

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use crate::filter::PatchPath;
use crate::patch::{get_ci, parse_path, MAX_OPERATIONS};
use crate::resource::{is_read_only, too_many_values};
use crate::schema::{ResolvedAttr, ResourceType, Schema, GROUP};
use crate::ScimError;

/// What a request body is, which decides the caps that apply to it.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A POST or PUT body of this resource type.
    Resource(&'static ResourceType),
    /// A PATCH body for this resource type.
    Patch(&'static ResourceType),
    /// Any other body (a SearchRequest): no caps but the body size.
    Other,
}

/// Parses a request body of `shape` into JSON.
///
/// Invalid JSON is `invalidSyntax`. An array longer than the cap of the
/// attribute it is given to is `invalidValue` naming the attribute (and,
/// in a PATCH, the operation) and the cap, as
/// [`crate::resource::normalize`] and [`crate::patch::apply`] answer;
/// more than [`MAX_OPERATIONS`] operations (not counting a Group's
/// membership operations, which [`crate::members::split_ops`] takes out)
/// is `invalidValue` too. Either way parsing stops there.
///
/// A PATCH operation's `value` is parsed once the operation's `path` is
/// known: directly when `path` came first (as identity providers send
/// it), else kept as raw text (a syntax check, without building anything)
/// until the operation ends, since JSON does not order an object's
/// members.
pub fn parse(body: &[u8], shape: Shape) -> Result<Value, ScimError> {
    let refused = Cell::new(None);
    let slot = match shape {
        Shape::Resource(rt) => Slot::Attrs {
            rt,
            ext: None,
            op: None,
        },
        Shape::Patch(rt) => Slot::Patch { rt },
        Shape::Other => Slot::Any,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Build {
        slot,
        refused: &refused,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        refused.take().unwrap_or_else(|| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })
    })
}

/// What a position in a body holds, so what its arrays may carry.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Anything, without a cap.
    Any,
    /// An object whose keys are attribute paths of `rt`: a POST or PUT
    /// body, an extension object (`ext`), or a path-less PATCH value
    /// (`op`, the operation's index, for error details).
    Attrs {
        rt: &'static ResourceType,
        ext: Option<&'static Schema>,
        op: Option<usize>,
    },
    /// The whole value of a capped multi-valued attribute.
    Values {
        attr: ResolvedAttr,
        max: usize,
        op: Option<usize>,
    },
    /// A PATCH body.
    Patch { rt: &'static ResourceType },
    /// A PATCH body's `Operations`.
    Operations { rt: &'static ResourceType },
    /// One operation, at index `index`.
    Op {
        rt: &'static ResourceType,
        index: usize,
    },
}

impl Slot {
    /// What the member `key` of an object in this slot holds.
    fn member(self, key: &str) -> Slot {
        match self {
            Slot::Attrs { rt, ext, op } => attrs_member(rt, ext, op, key),
            Slot::Patch { rt } if key.eq_ignore_ascii_case("Operations") => Slot::Operations { rt },
            _ => Slot::Any,
        }
    }
}

/// The slot of `key` in an object of attributes, resolved as
/// [`crate::resource::normalize`] and a path-less PATCH resolve it.
fn attrs_member(
    rt: &'static ResourceType,
    ext: Option<&'static Schema>,
    op: Option<usize>,
    key: &str,
) -> Slot {
    let (schema, name) = match ext {
        Some(ext) => (Some(ext), key),
        None => {
            if key.eq_ignore_ascii_case("schemas") {
                return Slot::Any;
            }
            if let Some(ext) = rt.extension(key) {
                return Slot::Attrs {
                    rt,
                    ext: Some(ext),
                    op,
                };
            }
            // A path-less PATCH value may nest the core attributes under
            // the core schema URN.
            if op.is_some() && key.eq_ignore_ascii_case(rt.schema.id) {
                return Slot::Attrs { rt, ext: None, op };
            }
            match rt.split_urn(key) {
                Some(split) => split,
                None => return Slot::Any,
            }
        }
    };
    let (attr, sub) = match name.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (name, None),
    };
    rt.resolve(schema.map(|s| s.id), attr, sub)
        .map_or(Slot::Any, |r| whole(r, op))
}

/// The slot of a value given to `r` as a whole: capped if `r` is a
/// writable multi-valued attribute with a cap.
fn whole(r: ResolvedAttr, op: Option<usize>) -> Slot {
    match r.attr.max_values {
        Some(max) if r.attr.multi_valued && r.sub.is_none() && !is_read_only(&r) => {
            Slot::Values { attr: r, max, op }
        }
        _ => Slot::Any,
    }
}

/// The slot of operation `index`'s `value`, given its `path` member, as
/// [`crate::patch::apply`] reads it.
fn op_value(rt: &'static ResourceType, index: usize, path: Option<&Value>) -> Slot {
    let pathless = Slot::Attrs {
        rt,
        ext: None,
        op: Some(index),
    };
    match path {
        None | Some(Value::Null) => pathless,
        Some(Value::String(s)) if s.trim().is_empty() => pathless,
        Some(Value::String(s)) => {
            parse_path(index, s.trim()).map_or(Slot::Any, |p| path_value(rt, index, &p))
        }
        Some(_) => Slot::Any,
    }
}

/// The slot of the value of an operation on `path`.
fn path_value(rt: &'static ResourceType, index: usize, path: &PatchPath) -> Slot {
    if path.filter.is_some() || path.sub_attr.is_some() {
        // One element, or one sub-attribute: never a whole attribute.
        return Slot::Any;
    }
    let full = match &path.urn {
        Some(u) => format!("{u}:{}", path.attr),
        None => path.attr.clone(),
    };
    if let Some(ext) = rt.extension(&full) {
        return Slot::Attrs {
            rt,
            ext: Some(ext),
            op: Some(index),
        };
    }
    if full.eq_ignore_ascii_case(rt.schema.id) {
        return Slot::Attrs {
            rt,
            ext: None,
            op: Some(index),
        };
    }
    rt.resolve(path.urn.as_deref(), &path.attr, None)
        .map_or(Slot::Any, |r| whole(r, Some(index)))
}

/// Whether operation `op` counts towards [`MAX_OPERATIONS`]: all do but
/// a Group's membership operations. A path-less operation that also sets
/// other attributes counts in [`crate::patch::apply`] but not here, so
/// the parser is never the stricter.
fn counts(rt: &ResourceType, op: &Value) -> bool {
    !(std::ptr::eq(rt, &GROUP) && op.as_object().is_some_and(crate::members::is_membership_op))
}

/// A seed that builds a [`Value`] for `slot`, refusing (into `refused`)
/// the first array over its cap.
struct Build<'a> {
    slot: Slot,
    refused: &'a Cell<Option<ScimError>>,
}

impl Build<'_> {
    fn at(&self, slot: Slot) -> Self {
        Build {
            slot,
            refused: self.refused,
        }
    }

    /// Records `e` as the answer and stops the parser.
    fn refuse<E: de::Error>(&self, e: ScimError) -> E {
        let message = e.detail.clone();
        self.refused.set(Some(e));
        E::custom(message)
    }

    /// Parses `raw` (a value kept as text) for `slot`.
    fn parse_raw<E: de::Error>(&self, raw: &RawValue, slot: Slot) -> Result<Value, E> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        // A refusal inside is already recorded in `refused`.
        self.at(slot).deserialize(&mut de).map_err(E::custom)
    }

    /// One PATCH operation: its members, with `value` parsed for the
    /// operation's `path`.
    fn op<'de, A: MapAccess<'de>>(
        &self,
        rt: &'static ResourceType,
        index: usize,
        mut access: A,
    ) -> Result<Value, A::Error> {
        let mut op = Map::new();
        // The slot `value` takes once a `path` member spelled exactly so
        // (the one `crate::patch` prefers to other spellings) has been
        // seen.
        let mut known: Option<Slot> = None;
        let mut later: Vec<(String, &'de RawValue)> = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            if key.eq_ignore_ascii_case("value") {
                match known {
                    Some(slot) => {
                        let v = access.next_value_seed(self.at(slot))?;
                        op.insert(key, v);
                    }
                    None => later.push((key, access.next_value()?)),
                }
                continue;
            }
            let v: Value = access.next_value()?;
            if key == "path" && known.is_none() {
                known = Some(op_value(rt, index, Some(&v)));
            }
            op.insert(key, v);
        }
        if !later.is_empty() {
            let slot = op_value(rt, index, get_ci(&op, "path"));
            for (key, raw) in later {
                let v = self.parse_raw(raw, slot)?;
                op.insert(key, v);
            }
        }
        Ok(Value::Object(op))
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.slot {
            Slot::Any => Value::deserialize(d),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        match self.slot {
            Slot::Values { attr, max, op } => {
                while items.len() < max {
                    match seq.next_element()? {
                        Some(v) => items.push(v),
                        None => return Ok(Value::Array(items)),
                    }
                }
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let detail = too_many_values(
                        &attr.canonical_path(),
                        &format!("at least {}", max + 1),
                        max,
                    );
                    return Err(self.refuse(in_op(op, detail)));
                }
            }
            Slot::Operations { rt } => {
                let mut counted = 0;
                while let Some(op) = seq.next_element_seed(self.at(Slot::Op {
                    rt,
                    index: items.len(),
                }))? {
                    if counts(rt, &op) {
                        counted += 1;
                        if counted > MAX_OPERATIONS {
                            return Err(self.refuse(ScimError::invalid_value(format!(
                                "a PATCH may carry at most {MAX_OPERATIONS} operations, this one carries at least {}: split it",
                                MAX_OPERATIONS + 1
                            ))));
                        }
                    }
                    items.push(op);
                }
            }
            _ => {
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        if let Slot::Op { rt, index } = self.slot {
            return self.op(rt, index, access);
        }
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let v = access.next_value_seed(self.at(self.slot.member(&key)))?;
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }
}

/// `detail` as [`crate::patch::apply`] words it for operation `op`.
fn in_op(op: Option<usize>, detail: String) -> ScimError {
    ScimError::invalid_value(match op {
        Some(i) => format!("Operations[{i}]: {detail}"),
        None => detail,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::schema::{MAX_VALUES, USER};
    use crate::ScimType;
    use serde_json::json;

    const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

    fn emails(n: usize) -> Value {
        (0..n)
            .map(|i| json!({"value": format!("e{i}@x"), "type": "work"}))
            .collect()
    }

    fn members(n: usize) -> Value {
        (0..n).map(|i| json!({"value": format!("u{i}")})).collect()
    }

    fn patch(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP], "Operations": ops})
    }

    fn parse_value(v: &Value, shape: Shape) -> Result<Value, ScimError> {
        parse(v.to_string().as_bytes(), shape)
    }

    /// Asserts that `v` parses for `shape` into what serde_json makes of it.
    fn parses_as_is(v: &Value, shape: Shape) {
        assert_eq!(&parse_value(v, shape).unwrap(), v, "{shape:?}");
    }

    /// Asserts a refusal naming `path` and the cap.
    fn refused(r: Result<Value, ScimError>, prefix: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue, "{}", e.detail);
        assert_eq!(
            e.detail,
            format!(
                "{prefix}: at least {} values, more than the {MAX_VALUES} a resource may hold (see its description in /Schemas)",
                MAX_VALUES + 1
            )
        );
    }

    #[test]
    fn bodies_within_their_caps_parse_as_serde_json_parses_them() {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "a@x", "active": true, "age": -3, "score": 1.5, "big": u64::MAX,
            "nothing": null, "name": {"givenName": "A"}, "emails": emails(MAX_VALUES),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"},
            "unknown": [[1, 2], {"x": []}]
        });
        for shape in [Shape::Resource(&USER), Shape::Patch(&USER), Shape::Other] {
            parses_as_is(&user, shape);
        }
        let ops = patch(json!([
            {"op": "Add", "path": "emails", "value": emails(MAX_VALUES)},
            {"value": emails(MAX_VALUES), "op": "replace", "path": "emails"},
            {"op": "replace", "value": {"emails": emails(MAX_VALUES), "title": "t"}},
            {"op": "remove", "path": "emails[type eq \"work\"]"}
        ]));
        parses_as_is(&ops, Shape::Patch(&USER));
        parses_as_is(&json!([1, "two", {"three": [3]}]), Shape::Patch(&USER));
        parses_as_is(&json!("a string"), Shape::Resource(&USER));
    }

    #[test]
    fn a_post_or_put_body_is_refused_at_the_first_value_over_a_cap() {
        let rt = Shape::Resource(&USER);
        parses_as_is(&json!({"userName": "u", "emails": emails(MAX_VALUES)}), rt);
        refused(
            parse_value(
                &json!({"userName": "u", "emails": emails(MAX_VALUES + 1)}),
                rt,
            ),
            "emails",
        );
        // Names match case-insensitively, URN-qualified or not, and the
        // detail names the attribute in canonical case.
        refused(
            parse_value(&json!({"PhoneNumbers": emails(45_000)}), rt),
            "phoneNumbers",
        );
        refused(
            parse_value(
                &json!({"urn:ietf:params:scim:schemas:core:2.0:User:roles": emails(MAX_VALUES + 1)}),
                rt,
            ),
            "roles",
        );
        // The domain answers the same for what the parser refuses.
        let domain = crate::resource::normalize(
            &USER,
            &json!({"userName": "u", "emails": emails(MAX_VALUES + 1)}),
        )
        .unwrap_err();
        assert_eq!(domain.scim_type, ScimType::InvalidValue);
        assert!(domain
            .detail
            .starts_with("emails: 101 values, more than the 100 a resource may hold"));
    }

    #[test]
    fn parsing_stops_at_the_value_over_the_cap() {
        // What follows the value over the cap is never read: this body is
        // not even JSON past it.
        let over = emails(MAX_VALUES + 1).to_string();
        let body = format!(
            "{{\"emails\": {}, {{\"value\": \"never read\" ]]]",
            &over[..over.len() - 1]
        );
        refused(parse(body.as_bytes(), Shape::Resource(&USER)), "emails");
        // At the cap, the same garbage is read, and is a syntax error.
        let at = emails(MAX_VALUES).to_string();
        let body = format!(
            "{{\"emails\": {}, {{\"value\": \"read\" ]]]",
            &at[..at.len() - 1]
        );
        let e = parse(body.as_bytes(), Shape::Resource(&USER)).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidSyntax, "{}", e.detail);
        // In a PATCH with the path first (as identity providers send it).
        let body = format!(
            "{{\"Operations\": [{{\"op\": \"add\", \"path\": \"emails\", \"value\": {}, {{\"value\": ]]]",
            &over[..over.len() - 1]
        );
        refused(
            parse(body.as_bytes(), Shape::Patch(&USER)),
            "Operations[0]: emails",
        );
        // Too many operations: the one over the cap is the last one read.
        let op = r#"{"op": "replace", "path": "title", "value": "t"}"#;
        let body = format!(
            "{{\"Operations\": [{}, {op}, garbage",
            vec![op; MAX_OPERATIONS].join(", ")
        );
        let e = parse(body.as_bytes(), Shape::Patch(&USER)).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue, "{}", e.detail);
        assert_eq!(
            e.detail,
            "a PATCH may carry at most 500 operations, this one carries at least 501: split it"
        );
    }

    #[test]
    fn a_patch_value_is_capped_by_its_path_in_any_member_order() {
        let user = Shape::Patch(&USER);
        let cases = [
            json!({"op": "add", "path": "emails", "value": emails(MAX_VALUES + 1)}),
            json!({"value": emails(MAX_VALUES + 1), "op": "add", "path": "emails"}),
            json!({"Value": emails(MAX_VALUES + 1), "PATH": "Emails", "op": "replace"}),
            json!({"op": "remove", "path": "emails", "value": emails(MAX_VALUES + 1)}),
            // Path-less: the value's keys are the attributes.
            json!({"op": "add", "value": {"title": "t", "emails": emails(MAX_VALUES + 1)}}),
            json!({"op": "add", "path": "", "value": {"emails": emails(MAX_VALUES + 1)}}),
            json!({"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:User": {"emails": emails(MAX_VALUES + 1)}}}),
            json!({"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {"emails": emails(MAX_VALUES + 1)}}),
        ];
        for op in cases {
            let ops = json!([{"op": "replace", "path": "title", "value": "first"}, op]);
            refused(
                parse_value(&patch(ops.clone()), user),
                "Operations[1]: emails",
            );
            // The domain refuses the same operation for the same reason.
            let e = crate::patch::apply(
                &USER,
                &mut Map::new(),
                &crate::patch::parse_request(&patch(ops.clone())).unwrap(),
            )
            .unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidValue, "{ops}");
            assert!(
                e.detail
                    .starts_with("Operations[1]: emails: 101 values, more than the 100"),
                "{ops}: {}",
                e.detail
            );
        }
        // Where the value is not the attribute's whole list, or the path
        // names nothing capped, there is no cap but the body size.
        for op in [
            json!({"op": "add", "path": "emails[type eq \"work\"]", "value": emails(MAX_VALUES + 1)}),
            json!({"value": emails(MAX_VALUES + 1), "op": "add", "path": "emails.value"}),
            json!({"op": "add", "path": "nickName", "value": emails(MAX_VALUES + 1)}),
            json!({"op": "add", "path": "groups", "value": emails(MAX_VALUES + 1)}),
            json!({"op": "add", "path": "nope", "value": emails(MAX_VALUES + 1)}),
            json!({"op": "add", "path": "emails[", "value": emails(MAX_VALUES + 1)}),
            json!({"op": "add", "path": 7, "value": emails(MAX_VALUES + 1)}),
            json!({"op": "add", "value": {"unknown": emails(MAX_VALUES + 1), "groups": emails(MAX_VALUES + 1)}}),
        ] {
            parses_as_is(&patch(json!([op])), user);
        }
        // A POST body's keys are not PATCH paths: the core URN as a key
        // holds nothing there.
        parses_as_is(
            &json!({"urn:ietf:params:scim:schemas:core:2.0:User": {"emails": emails(MAX_VALUES + 1)}}),
            Shape::Resource(&USER),
        );
    }

    #[test]
    fn group_members_are_not_capped_and_their_operations_do_not_count() {
        let group = Shape::Patch(&GROUP);
        let many = 5_000;
        parses_as_is(
            &json!({"displayName": "G", "members": members(many)}),
            Shape::Resource(&GROUP),
        );
        parses_as_is(
            &patch(json!([
                {"op": "Add", "path": "members", "value": members(many)},
                {"value": members(many), "path": "members", "op": "Remove"},
                {"op": "replace", "value": {"displayName": "G", "members": members(many)}},
                {"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": members(many)}},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": members(many)}
            ])),
            group,
        );
        // 600 membership operations and 500 others: within the cap.
        let member_op = json!({"op": "add", "path": "members", "value": [{"value": "u"}]});
        let other = json!({"op": "replace", "path": "displayName", "value": "G"});
        let mut ops = vec![member_op.clone(); 600];
        ops.extend(vec![other.clone(); MAX_OPERATIONS]);
        let body = patch(Value::Array(ops.clone()));
        parses_as_is(&body, group);
        // ... and the domain agrees.
        let (_, rest) =
            crate::members::split_ops(crate::patch::parse_request(&body).unwrap()).unwrap();
        assert_eq!(rest.len(), MAX_OPERATIONS);
        // One more of the others is refused, and a User counts them all.
        ops.push(other);
        let e = parse_value(&patch(Value::Array(ops)), group).unwrap_err();
        assert!(e.detail.contains("at most 500 operations"), "{}", e.detail);
        let e = parse_value(
            &patch(Value::Array(vec![member_op; MAX_OPERATIONS + 1])),
            Shape::Patch(&USER),
        )
        .unwrap_err();
        assert!(e.detail.contains("at most 500 operations"), "{}", e.detail);
    }

    #[test]
    fn other_bodies_have_no_caps() {
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": vec!["userName"; 1000], "emails": emails(1000), "Operations": vec![0; 1000]});
        parses_as_is(&search, Shape::Other);
    }

    #[test]
    fn malformed_json_is_invalid_syntax() {
        let deep = format!("{{\"emails\": {}{}", "[".repeat(200), "]".repeat(200));
        for (body, shape) in [
            ("", Shape::Resource(&USER)),
            ("{\"userName\": ", Shape::Resource(&USER)),
            ("{\"userName\": \"u\"} trailing", Shape::Resource(&USER)),
            ("{\"Operations\": [{\"value\": [1, }]}", Shape::Patch(&USER)),
            (
                "{\"Operations\": [{\"value\": \"\\ud800\", \"path\": 1}]} x",
                Shape::Patch(&USER),
            ),
            (deep.as_str(), Shape::Resource(&USER)),
            ("[[[[]]]] ]", Shape::Other),
        ] {
            let e = parse(body.as_bytes(), shape).unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidSyntax, "{body}: {}", e.detail);
            assert!(
                e.detail.starts_with("the request body is not valid JSON: "),
                "{}",
                e.detail
            );
        }
    }
}
