//! PATCH (RFC 7644 §3.5.2) on the canonical resource form of
//! [`crate::resource`].
//!
//! Beyond the RFC, this accepts what Microsoft Entra ID and Okta send
//! (see Microsoft's "Known issues and resolutions with SCIM 2.0 protocol
//! compliance"): capitalised op names, boolean strings (`"False"`),
//! path-less values whose keys are attribute paths (`"name.givenName"`,
//! `"urn:…:enterprise:2.0:User:department"`) or value paths
//! (`"emails[type eq \"work\"].value"`), the enterprise `manager` as a
//! bare id, `remove` on `members` with a `value` array, and
//! `replace emails[type eq "work"].value` creating the work email when
//! there is none.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

use crate::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::resource::{
    check_count, check_counts, check_primary, coerce_attr, coerce_one, coerce_scalar, given_count,
    hash_value, in_container, is_bare_value_complex, is_password, is_primary, is_read_only, kind,
    missing_required, normalize_uncounted, with_object,
};
use crate::schema::{AttrType, AttributeDef, Mutability, ResolvedAttr, ResourceType, Schema};
use crate::ScimError;

/// The most operations [`apply`] takes in one PATCH. Each operation may
/// look at every value of the attribute it names (a value filter), so a
/// PATCH's work is its operations times [`crate::schema::MAX_VALUES`];
/// identity providers send a few dozen at most. Group `members`
/// operations are split off before [`apply`] (`crate::members`) and do
/// not count.
pub const MAX_OPERATIONS: usize = 500;

/// The `op` of a PATCH operation (RFC 7644 §3.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add` (RFC 7644 §3.5.2.1).
    Add,
    /// `replace` (RFC 7644 §3.5.2.3).
    Replace,
    /// `remove` (RFC 7644 §3.5.2.2).
    Remove,
}

impl PatchOpKind {
    /// The op name as the RFC spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// What to do.
    pub op: PatchOpKind,
    /// Where. A path naming a whole schema (`urn:…:enterprise:2.0:User`) is
    /// kept as `{ urn: None, attr: "<the schema URN>" }`.
    pub path: Option<PatchPath>,
    /// The value (`null` is kept: it unassigns the target on `replace`).
    pub value: Option<Value>,
}

/// What a PATCH did besides changing attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// A new password set by the request, for the store to hash; it is
    /// never kept in the attributes (RFC 7643 §4.1.1: writeOnly).
    pub password: Option<String>,
    /// Whether the attributes differ from before, so that the caller can
    /// skip the write and the version bump when nothing changed.
    pub changed: bool,
}

/// Case-insensitive member lookup (Entra sends `Operations`, some clients
/// `operations`).
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Parses a PATCH request body (RFC 7644 §3.5.2).
///
/// The body must be an object whose `Operations` (any case) is a non-empty
/// array; `schemas`, if present, must list the PatchOp URN. Op names are
/// case-insensitive; members of an operation other than `op`, `path` and
/// `value` are ignored. Structural problems are `invalidSyntax`, a bad
/// path `invalidPath`, an add or replace without a value `invalidValue`,
/// and a remove without a path `noTarget` (RFC 7644 §3.5.2.2).
pub fn parse_request(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
    if let Some(schemas) = get_ci(obj, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(crate::schema::PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must be an array containing \"{}\"",
                crate::schema::PATCH_OP_SCHEMA
            )));
        }
    }
    let ops = match get_ci(obj, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(ScimError::invalid_syntax(
                "Operations must contain at least one operation",
            ))
        }
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations must be an array, got {}",
                kind(other)
            )))
        }
        None => {
            return Err(ScimError::invalid_syntax(
                "the PATCH body needs an Operations array",
            ))
        }
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(i, op))
        .collect()
}

fn parse_op(i: usize, op: &Value) -> Result<PatchOp, ScimError> {
    let obj = op.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "Operations[{i}] must be an object, got {}",
            kind(op)
        ))
    })?;
    let name = get_ci(obj, "op").and_then(Value::as_str).ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "Operations[{i}] needs an \"op\" of add, replace or remove"
        ))
    })?;
    let kind_ = match name.trim().to_ascii_lowercase().as_str() {
        "add" => PatchOpKind::Add,
        "replace" => PatchOpKind::Replace,
        "remove" => PatchOpKind::Remove,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op {name:?} is not add, replace or remove"
            )))
        }
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(i, s.trim())?),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string, got {}",
                kind(other)
            )))
        }
    };
    let value = get_ci(obj, "value").cloned();
    match kind_ {
        PatchOpKind::Remove if path.is_none() => {
            return Err(ScimError::no_target(format!(
                "Operations[{i}]: remove needs a path (RFC 7644 §3.5.2.2)"
            )))
        }
        PatchOpKind::Add | PatchOpKind::Replace if value.is_none() => {
            return Err(ScimError::invalid_value(format!(
                "Operations[{i}]: {} needs a value",
                kind_.as_str()
            )))
        }
        _ => {}
    }
    Ok(PatchOp {
        op: kind_,
        path,
        value,
    })
}

pub(crate) fn parse_path(i: usize, raw: &str) -> Result<PatchPath, ScimError> {
    // A whole schema as the path: the grammar would read the URN's last
    // segment (`User`) as an attribute name.
    if let Some(schema) = crate::schema::find_schema(raw) {
        return Ok(PatchPath {
            urn: None,
            attr: schema.id.to_string(),
            filter: None,
            sub_attr: None,
        });
    }
    crate::filter::parse_patch_path(raw)
        .map_err(|e| ScimError::invalid_path(format!("Operations[{i}].path {raw:?}: {}", e.detail)))
}

/// Applies `ops` to `attrs` (the canonical form of a resource of type
/// `rt`), atomically: on error `attrs` is left as it was.
///
/// The semantics are RFC 7644 §3.5.2.1–3, with these choices:
/// - `add` on a single-valued attribute sets it (as Entra expects), on a
///   multi-valued one appends the values not already present (Group
///   `members` are compared on `value`, other elements as a whole).
/// - `add`/`replace` on a complex single-valued attribute merges the given
///   sub-attributes (RFC 7644 §3.5.2.3); the enterprise `manager` given as
///   a bare id string replaces it with `{"value": id}`.
/// - `replace` on a multi-valued attribute without a filter replaces the
///   array; with a filter it merges into the matching elements, and
///   matching nothing is `noTarget` (RFC 7644 §3.5.2.3).
/// - `add`/`replace` on `attr[filter].sub`, and `add` on `attr[filter]`,
///   that match nothing create an element when the filter is an `and` of
///   `eq` comparisons: `emails[type eq "work"].value` creates
///   `{"type": "work", "value": …}` as Microsoft's documentation and
///   clients expect. Otherwise it is `noTarget`.
/// - `remove` on `attr[filter]` matching nothing changes nothing; with a
///   `value` on a multi-valued attribute it removes the elements whose
///   `value` equals one given (Entra's member removal).
/// - `replace` with `null` unassigns the target (RFC 7644 §3.5.2: null and
///   unassigned are equivalent); `add` with `null` adds nothing.
/// - A path-less `add`/`replace` takes an object whose keys are attribute
///   paths (`displayName`, `name.givenName`, `urn:…:User:department`);
///   unknown and readOnly ones are ignored, as in PUT (RFC 7644 §3.5.1,
///   §3.3: Microsoft's and Okta's clients send `id`, `meta`, `groups` and
///   attributes of extensions scimd does not define). A key written as a
///   value path (`emails[type eq "work"].value`, as Entra sends) is applied
///   exactly as an operation with that `path`, with the same errors
///   (named by the key). An explicit path naming an unknown attribute is
///   `invalidPath`, one naming a readOnly attribute `mutability`.
/// - Changing an immutable value that is already set is `mutability`
///   (RFC 7644 §3.5.2); so is removing or unassigning a required
///   attribute (RFC 7644 §3.5.2.2).
/// - A value set to `primary: true` clears `primary` on the other values
///   (RFC 7643 §2.4).
/// - `password` goes to [`PatchOutcome::password`], never into `attrs`.
///
/// More than [`MAX_OPERATIONS`] operations are refused (`invalidValue`)
/// before any is applied.
///
/// No operation may give a capped attribute more values than its cap,
/// whatever its op (`remove` with a value list included). The result is
/// validated like a PUT body ([`crate::resource::normalize`]), except that
/// an attribute that already held more values than its cap may keep them
/// (it may not grow). Each
/// operation's work is linear in the values it touches, and no operation
/// may take an attribute above its cap, so a PATCH's work is bounded by
/// its size and the cap, never by the square of either.
pub fn apply(
    rt: &ResourceType,
    attrs: &mut Map<String, Value>,
    ops: &[PatchOp],
) -> Result<PatchOutcome, ScimError> {
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "a PATCH may carry at most {MAX_OPERATIONS} operations, this one carries {}: split it",
            ops.len()
        )));
    }
    let mut work = attrs.clone();
    let mut password = None;
    for (i, op) in ops.iter().enumerate() {
        let mut cx = Cx {
            rt,
            work: &mut work,
            password: &mut password,
        };
        cx.apply_op(op)
            .map_err(|e| ScimError::new(e.scim_type, format!("Operations[{i}]: {}", e.detail)))?;
    }
    if let Some(name) = missing_required(rt, &work) {
        return Err(ScimError::mutability(format!(
            "{name} is required and cannot be removed (RFC 7644 §3.5.2.2)"
        )));
    }
    let normalized = normalize_uncounted(rt, &Value::Object(work))?;
    check_counts(rt, &normalized.attrs, Some(attrs))?;
    let changed = normalized.attrs != *attrs;
    *attrs = normalized.attrs;
    Ok(PatchOutcome { password, changed })
}

/// The state one operation works on.
struct Cx<'a> {
    rt: &'a ResourceType,
    work: &'a mut Map<String, Value>,
    password: &'a mut Option<String>,
}

impl Cx<'_> {
    fn apply_op(&mut self, op: &PatchOp) -> Result<(), ScimError> {
        match &op.path {
            None if op.op == PatchOpKind::Remove => Err(ScimError::no_target(
                "remove needs a path (RFC 7644 §3.5.2.2)",
            )),
            None => {
                let value = op.value.as_ref().ok_or_else(|| {
                    ScimError::invalid_value(format!("{} needs a value", op.op.as_str()))
                })?;
                self.apply_pathless(op.op, value)
            }
            Some(path) => self.apply_path(op.op, path, op.value.as_ref()),
        }
    }

    /// A path-less add or replace: each key of the value object is an
    /// attribute path (RFC 7644 §3.5.2.1, §3.5.2.3).
    fn apply_pathless(&mut self, op: PatchOpKind, value: &Value) -> Result<(), ScimError> {
        let Value::Object(obj) = value else {
            return Err(ScimError::invalid_value(format!(
                "a {} without a path needs an object value whose keys are attributes, got {}",
                op.as_str(),
                kind(value)
            )));
        };
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if is_value_path(key) {
                self.apply_value_path_key(op, key, v)?;
                continue;
            }
            if let Some(ext) = self.rt.extension(key) {
                self.apply_extension(op, ext, v)?;
                continue;
            }
            if key.eq_ignore_ascii_case(self.rt.schema.id) {
                if v.is_object() {
                    self.apply_pathless(op, v)?;
                }
                continue;
            }
            let Some((schema, rest)) = self.rt.split_urn(key) else {
                continue;
            };
            self.apply_key(op, schema, rest, v)?;
        }
        Ok(())
    }

    /// An add or replace of a whole extension object: merge its members.
    fn apply_extension(
        &mut self,
        op: PatchOpKind,
        ext: &'static Schema,
        v: &Value,
    ) -> Result<(), ScimError> {
        match v {
            Value::Null => {
                if op == PatchOpKind::Replace {
                    self.work.remove(ext.id);
                }
                Ok(())
            }
            Value::Object(inner) => {
                for (k, iv) in inner {
                    if is_value_path(k) {
                        self.apply_value_path_key(op, &format!("{}:{k}", ext.id), iv)?;
                    } else {
                        self.apply_key(op, Some(ext), k, iv)?;
                    }
                }
                Ok(())
            }
            other => Err(ScimError::invalid_value(format!(
                "{} must be an object of extension attributes, got {}",
                ext.id,
                kind(other)
            ))),
        }
    }

    /// A key of a path-less value written as a value path
    /// (`emails[type eq "work"].value`, RFC 7644 §3.5.2 `valuePath`):
    /// applied exactly as an operation with that `path` and the key's value
    /// would be, errors included. Such a key can only be a PATCH path,
    /// never a member of a resource representation, so the leniency of
    /// [`Cx::apply_key`] does not apply: a malformed path or an unknown
    /// attribute is `invalidPath`, a readOnly one `mutability`, and a
    /// `replace` whose filter matches nothing and cannot create the value
    /// `noTarget`. Errors name the key.
    fn apply_value_path_key(
        &mut self,
        op: PatchOpKind,
        key: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        crate::filter::parse_patch_path(key)
            .and_then(|path| self.apply_path(op, &path, Some(v)))
            .map_err(|e| ScimError::new(e.scim_type, format!("value key {key:?}: {}", e.detail)))
    }

    /// One key of a path-less value (`attr` or `attr.sub`); unknown and
    /// readOnly keys are ignored.
    fn apply_key(
        &mut self,
        op: PatchOpKind,
        schema: Option<&'static Schema>,
        name: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        let (attr, sub) = match name.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (name, None),
        };
        let Some(r) = self.rt.resolve(schema.map(|s| s.id), attr, sub) else {
            return Ok(());
        };
        if is_read_only(&r) {
            return Ok(());
        }
        self.apply_target(op, &r, None, Some(v))
    }

    fn apply_path(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if path.filter.is_none() && path.sub_attr.is_none() {
            let full = match &path.urn {
                Some(u) => format!("{u}:{}", path.attr),
                None => path.attr.clone(),
            };
            if let Some(ext) = self.rt.extension(&full) {
                return match op {
                    PatchOpKind::Remove => {
                        self.work.remove(ext.id);
                        Ok(())
                    }
                    _ => self.apply_extension(op, ext, value.unwrap_or(&Value::Null)),
                };
            }
            if full.eq_ignore_ascii_case(self.rt.schema.id) {
                return match (op, value) {
                    (PatchOpKind::Remove, _) => Err(ScimError::invalid_path(
                        "remove cannot target the whole resource",
                    )),
                    (_, Some(v)) => self.apply_pathless(op, v),
                    (_, None) => Err(ScimError::invalid_value("a value is required")),
                };
            }
        }
        let written = describe(path);
        let r = self
            .rt
            .resolve(path.urn.as_deref(), &path.attr, None)
            .ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "{written}: no attribute {:?} in the {} schemas",
                    path.attr, self.rt.name
                ))
            })?;
        let sub = match &path.sub_attr {
            None => None,
            Some(s) => Some(r.attr.sub(s).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "{written}: {} has no sub-attribute {s:?}",
                    r.canonical_path()
                ))
            })?),
        };
        let r = ResolvedAttr { sub, ..r };
        if path.filter.is_some() && !r.attr.multi_valued {
            return Err(ScimError::invalid_path(format!(
                "{written}: a value filter needs a multi-valued attribute, and {} is not one",
                r.canonical_path()
            )));
        }
        if is_read_only(&r) {
            return Err(ScimError::mutability(format!(
                "{} is readOnly",
                r.canonical_path()
            )));
        }
        self.apply_target(op, &r, path.filter.as_ref(), value)
    }

    /// Applies one operation to a resolved attribute (or sub-attribute),
    /// optionally narrowed by a value filter.
    fn apply_target(
        &mut self,
        op: PatchOpKind,
        r: &ResolvedAttr,
        filter: Option<&Filter>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let path = r.canonical_path();
        if is_password(r) {
            return match (op, value) {
                (PatchOpKind::Remove, _) => Err(ScimError::invalid_value(
                    "password cannot be removed; set a new one with add or replace",
                )),
                (_, Some(v)) => match coerce_scalar(r.attr, &path, v)? {
                    Some(Value::String(s)) => {
                        *self.password = Some(s);
                        Ok(())
                    }
                    _ => Err(ScimError::invalid_value("password must be a string")),
                },
                (_, None) => Err(ScimError::invalid_value("password needs a value")),
            };
        }
        let value = match (op, value) {
            (PatchOpKind::Remove, v) => v,
            (_, Some(v)) => Some(v),
            (_, None) => {
                return Err(ScimError::invalid_value(format!(
                    "{} of {path} needs a value",
                    op.as_str()
                )))
            }
        };
        let attr = r.attr;
        in_container(self.work, r, |m| {
            if attr.multi_valued && (filter.is_some() || r.sub.is_some()) {
                return with_array(m, attr.name, |items| {
                    elements(op, attr, r.sub, filter, value, &path, items)
                });
            }
            match r.sub {
                Some(sub) => sub_of_single(op, attr, sub, value, &path, m),
                None if attr.multi_valued => multi(op, attr, value, &path, m),
                None => single(op, attr, value, &path, m),
            }
        })
    }
}

/// Whether a key of a path-less value is written as a value path
/// (`attr[filter]` or `attr[filter].sub`) rather than an attribute name:
/// attribute names (RFC 7643 §2.1 `ATTRNAME`) and schema URNs hold no
/// brackets.
pub(crate) fn is_value_path(key: &str) -> bool {
    key.contains(['[', ']'])
}

/// How a path was written, for error details.
fn describe(p: &PatchPath) -> String {
    let base = AttrPath {
        urn: p.urn.clone(),
        attr: p.attr.clone(),
        sub_attr: None,
    };
    let mut s = base.to_string();
    if p.filter.is_some() {
        s.push_str("[…]");
    }
    if let Some(sub) = &p.sub_attr {
        s.push('.');
        s.push_str(sub);
    }
    s
}

/// Refuses to change an immutable value that is already set
/// (RFC 7644 §3.5.2: a client MAY add a value to an immutable attribute
/// only if it had none).
fn check_immutable(
    def: &AttributeDef,
    path: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    if def.mutability != Mutability::Immutable {
        return Ok(());
    }
    match old {
        Some(old) if !old.is_null() && Some(old) != new => Err(ScimError::mutability(format!(
            "{path} is immutable and already set"
        ))),
        _ => Ok(()),
    }
}

/// A simple single-valued attribute (`displayName`, `active`).
fn single(
    op: PatchOpKind,
    attr: &'static AttributeDef,
    value: Option<&Value>,
    path: &str,
    m: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    if attr.ty == AttrType::Complex {
        return complex(op, attr, value, path, m);
    }
    let new = match op {
        PatchOpKind::Remove => None,
        _ => match coerce_attr(attr, path, value.unwrap_or(&Value::Null))? {
            // `add` of null adds nothing.
            None if op == PatchOpKind::Add => return Ok(()),
            v => v,
        },
    };
    check_immutable(attr, path, m.get(attr.name), new.as_ref())?;
    match new {
        Some(v) => m.insert(attr.name.to_string(), v),
        None => m.remove(attr.name),
    };
    Ok(())
}

/// A complex single-valued attribute (`name`, `manager`): add and replace
/// merge sub-attributes (RFC 7644 §3.5.2.1, §3.5.2.3).
fn complex(
    op: PatchOpKind,
    attr: &'static AttributeDef,
    value: Option<&Value>,
    path: &str,
    m: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    match (op, value) {
        (PatchOpKind::Remove, _) | (PatchOpKind::Replace, None | Some(Value::Null)) => {
            m.remove(attr.name);
            Ok(())
        }
        (_, None | Some(Value::Null)) => Ok(()),
        // `manager` as a bare id replaces the whole value.
        (_, Some(v @ Value::String(_))) if is_bare_value_complex(attr) => {
            match coerce_one(attr, path, v)? {
                Some(new) => m.insert(attr.name.to_string(), new),
                None => m.remove(attr.name),
            };
            Ok(())
        }
        (_, Some(Value::Object(given))) => {
            with_object(m, attr.name, |o| merge(attr, path, o, given))
        }
        (_, Some(other)) => Err(ScimError::invalid_value(format!(
            "{path} must be an object, got {}",
            kind(other)
        ))),
    }
}

/// Merges the given sub-attributes into `o`: `null` unassigns, readOnly
/// and unknown ones are ignored.
fn merge(
    attr: &AttributeDef,
    path: &str,
    o: &mut Map<String, Value>,
    given: &Map<String, Value>,
) -> Result<(), ScimError> {
    for (k, v) in given {
        let Some(sub) = attr.sub(k) else { continue };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let sub_path = format!("{path}.{}", sub.name);
        let new = coerce_scalar(sub, &sub_path, v)?;
        check_immutable(sub, &sub_path, o.get(sub.name), new.as_ref())?;
        match new {
            Some(x) => o.insert(sub.name.to_string(), x),
            None => o.remove(sub.name),
        };
    }
    Ok(())
}

/// `attr.sub` on a complex single-valued attribute (`name.givenName`).
fn sub_of_single(
    op: PatchOpKind,
    attr: &'static AttributeDef,
    sub: &'static AttributeDef,
    value: Option<&Value>,
    path: &str,
    m: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    let new = match op {
        PatchOpKind::Remove => None,
        _ => match coerce_scalar(sub, path, value.unwrap_or(&Value::Null))? {
            None if op == PatchOpKind::Add => return Ok(()),
            v => v,
        },
    };
    with_object(m, attr.name, |o| {
        check_immutable(sub, path, o.get(sub.name), new.as_ref())?;
        match new {
            Some(v) => o.insert(sub.name.to_string(), v),
            None => o.remove(sub.name),
        };
        Ok(())
    })
}

/// Runs `f` on the array under `key`, putting it back only if not empty.
fn with_array<R>(m: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Vec<Value>) -> R) -> R {
    let mut items = match m.remove(key) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    };
    let r = f(&mut items);
    if !items.is_empty() {
        m.insert(key.to_string(), Value::Array(items));
    }
    r
}

/// Elements of a multi-valued attribute are the same value: Group
/// `members` (whose `value` is immutable) by `value`, others (and members
/// without one) as a whole.
fn same_element(by_value: bool, a: &Value, b: &Value) -> bool {
    if by_value {
        if let (Some(x), Some(y)) = (a.get("value"), b.get("value")) {
            return x == y;
        }
    }
    a == b
}

/// A hash of an element that agrees with [`same_element`]: the same
/// elements hash alike.
fn element_hash(by_value: bool, e: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    match e.get("value") {
        Some(v) if by_value => hash_value(v, false, &mut h),
        _ => hash_value(e, false, &mut h),
    }
    h.finish()
}

/// Whether elements of `attr` compare by their `value` ([`same_element`]).
fn compares_by_value(attr: &AttributeDef) -> bool {
    attr.sub("value")
        .is_some_and(|v| v.mutability == Mutability::Immutable)
}

/// The number of values under `name` in `m`.
fn count_values(m: &Map<String, Value>, name: &str) -> usize {
    match m.get(name) {
        Some(Value::Array(a)) => a.len(),
        None | Some(Value::Null) => 0,
        Some(_) => 1,
    }
}

/// Clears `primary` on every element but `keep` (RFC 7643 §2.4).
fn demote_others(items: &mut [Value], keep: usize) {
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep && is_primary(item) {
            if let Some(o) = item.as_object_mut() {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// A whole multi-valued attribute, without a filter.
fn multi(
    op: PatchOpKind,
    attr: &'static AttributeDef,
    value: Option<&Value>,
    path: &str,
    m: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    match op {
        PatchOpKind::Remove => {
            match value {
                // Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}.
                Some(v) if !v.is_null() => {
                    check_count(attr, path, 0, given_count(v))?;
                    with_array(m, attr.name, |items| {
                        remove_listed(attr, items, v);
                    })
                }
                _ => {
                    m.remove(attr.name);
                }
            }
            Ok(())
        }
        PatchOpKind::Replace => {
            let before = count_values(m, attr.name);
            let value = value.unwrap_or(&Value::Null);
            // Refused before any value is looked at.
            check_count(attr, path, 0, given_count(value))?;
            match coerce_attr(attr, path, value)? {
                Some(v) => {
                    check_count(attr, path, before, v.as_array().map_or(1, Vec::len))?;
                    m.insert(attr.name.to_string(), v)
                }
                None => m.remove(attr.name),
            };
            Ok(())
        }
        PatchOpKind::Add => {
            let value = value.unwrap_or(&Value::Null);
            check_count(attr, path, 0, given_count(value))?;
            let Some(Value::Array(new)) = coerce_attr(attr, path, value)? else {
                return Ok(());
            };
            with_array(m, attr.name, |items| {
                let before = items.len();
                let by_value = compares_by_value(attr);
                add_unique(
                    items,
                    new,
                    |a, b| same_element(by_value, a, b),
                    |e| element_hash(by_value, e),
                );
                check_count(attr, path, before, items.len())
            })
        }
    }
}

/// Up to this many new values, [`add_unique`] compares each with the
/// elements directly: cheaper than hashing every element when a PATCH
/// adds one or two values, and still linear in the elements.
const COMPARE_DIRECTLY: usize = 4;

/// Appends the elements of `new` that are not the `same` as one already
/// there, in order; the last primary one added stays primary and the
/// others are demoted (RFC 7643 §2.4), as if each demoted the others in
/// turn. Linear in `items` and `new`: each element is hashed once (`hash`
/// must agree with `same`) and compared only with an element of the same
/// hash, or, for at most [`COMPARE_DIRECTLY`] new values, compared with
/// each element.
fn add_unique(
    items: &mut Vec<Value>,
    new: Vec<Value>,
    mut same: impl FnMut(&Value, &Value) -> bool,
    mut hash: impl FnMut(&Value) -> u64,
) {
    let direct = new.len() <= COMPARE_DIRECTLY;
    // Each hash's first element; a second element with a hash already
    // taken (a collision, or a duplicate) is compared with all of them.
    let mut seen: HashMap<u64, usize> = HashMap::new();
    if !direct {
        for (i, e) in items.iter().enumerate() {
            seen.entry(hash(e)).or_insert(i);
        }
    }
    let mut primary = None;
    for n in new {
        let known = if direct {
            items.iter().any(|e| same(e, &n))
        } else {
            let h = hash(&n);
            match seen.get(&h).and_then(|&i| items.get(i)) {
                Some(first) if same(first, &n) => true,
                Some(_) => items.iter().any(|e| same(e, &n)),
                None => {
                    seen.insert(h, items.len());
                    false
                }
            }
        };
        if known {
            continue;
        }
        if is_primary(&n) {
            primary = Some(items.len());
        }
        items.push(n);
    }
    if let Some(keep) = primary {
        demote_others(items, keep);
    }
}

/// Removes the elements whose `value` equals one of `listed` (objects with
/// a `value`, or bare values; strings compare case-insensitively unless
/// `value` is caseExact); elements without `value` must be equal to one
/// listed as a whole. Linear: both sides are hashed.
fn remove_listed(attr: &AttributeDef, items: &mut Vec<Value>, listed: &Value) {
    let listed: Vec<&Value> = match listed {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let case_exact = attr.sub("value").is_none_or(|s| s.case_exact);
    let eq = |a: &Value, b: &Value| match (a, b) {
        (Value::String(x), Value::String(y)) if !case_exact => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    };
    let hash = |v: &Value, fold: bool| {
        let mut h = DefaultHasher::new();
        hash_value(v, fold, &mut h);
        h.finish()
    };
    // The listed values and the listed elements, by hash (folded like
    // `eq` compares): each element of `items` is hashed once and compared
    // only with those of its hash.
    let mut values: HashMap<u64, Vec<&Value>> = HashMap::new();
    let mut wholes: HashMap<u64, Vec<&Value>> = HashMap::new();
    for t in listed {
        let wanted = match t {
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .map(|(_, v)| v),
            other => Some(other),
        };
        // A listed object without `value` can only equal an element
        // without one.
        if let Some(w) = wanted {
            values.entry(hash(w, !case_exact)).or_default().push(w);
        }
        wholes.entry(hash(t, false)).or_default().push(t);
    }
    items.retain(|e| {
        let listed = match e.get("value") {
            Some(have) => values
                .get(&hash(have, !case_exact))
                .is_some_and(|ws| ws.iter().any(|w| eq(have, w))),
            None => wholes
                .get(&hash(e, false))
                .is_some_and(|ts| ts.contains(&e)),
        };
        !listed
    });
}

/// The `eq` clauses of a filter that is an `and` of `eq` comparisons on
/// sub-attributes, as `(sub-attribute, value)`; `None` for anything else.
fn eq_clauses(attr: &AttributeDef, f: &Filter) -> Option<Map<String, Value>> {
    fn walk(attr: &AttributeDef, f: &Filter, out: &mut Map<String, Value>) -> Option<()> {
        match f {
            Filter::And(a, b) => {
                walk(attr, a, out)?;
                walk(attr, b, out)
            }
            Filter::Compare(p, CompareOp::Eq, v) if p.urn.is_none() && p.sub_attr.is_none() => {
                let sub = attr.sub(&p.attr)?;
                let v = match v {
                    CompValue::Null => return None,
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::String(s) => Value::String(s.clone()),
                };
                out.insert(sub.name.to_string(), v);
                Some(())
            }
            _ => None,
        }
    }
    let mut out = Map::new();
    walk(attr, f, &mut out)?;
    Some(out)
}

/// Elements of a multi-valued attribute selected by `filter` (all of them
/// without one), or their sub-attribute `sub`.
fn elements(
    op: PatchOpKind,
    attr: &'static AttributeDef,
    sub: Option<&'static AttributeDef>,
    filter: Option<&Filter>,
    value: Option<&Value>,
    path: &str,
    items: &mut Vec<Value>,
) -> Result<(), ScimError> {
    let case_exact = |p: &AttrPath| attr.sub(&p.attr).is_some_and(|s| s.case_exact);
    let selected: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, e)| filter.is_none_or(|f| crate::filter::matches(f, e, &case_exact)))
        .map(|(i, _)| i)
        .collect();

    if op == PatchOpKind::Remove {
        match sub {
            None => {
                let mut drop = vec![false; items.len()];
                for &i in &selected {
                    if let Some(d) = drop.get_mut(i) {
                        *d = true;
                    }
                }
                let mut drop = drop.into_iter();
                items.retain(|_| !drop.next().unwrap_or(false));
            }
            Some(sub) => {
                for &i in &selected {
                    if let Some(o) = items[i].as_object_mut() {
                        check_immutable(sub, path, o.get(sub.name), None)?;
                        o.remove(sub.name);
                    }
                }
                items.retain(|e| !e.as_object().is_some_and(Map::is_empty));
            }
        }
        return Ok(());
    }

    let given = value.unwrap_or(&Value::Null);
    // The new sub-attribute value, or the element to merge in.
    let new: Option<Value> = match sub {
        Some(sub) => coerce_scalar(sub, path, given)?,
        None => coerce_one(attr, path, given)?,
    };
    if new.is_none() {
        // add null adds nothing; replace null unassigns the selection.
        if op == PatchOpKind::Replace {
            return elements(PatchOpKind::Remove, attr, sub, filter, None, path, items);
        }
        return Ok(());
    }

    if selected.is_empty() {
        let created = match (filter, sub, op) {
            (Some(f), Some(sub), _) => eq_clauses(attr, f).map(|mut el| {
                if let Some(v) = &new {
                    el.insert(sub.name.to_string(), v.clone());
                }
                el
            }),
            (Some(f), None, PatchOpKind::Add) => eq_clauses(attr, f).map(|mut el| {
                if let Some(Value::Object(given)) = &new {
                    el.extend(given.clone());
                }
                el
            }),
            _ => None,
        };
        let Some(el) = created else {
            return Err(ScimError::no_target(format!(
                "no value of {path} matches the filter"
            )));
        };
        if let Some(el) = coerce_one(attr, path, &Value::Object(el))? {
            let primary = is_primary(&el);
            items.push(el);
            if primary {
                let last = items.len() - 1;
                demote_others(items, last);
            }
            // The count is the attribute's, not the sub-attribute's.
            let attr_path = match sub {
                Some(_) => path.rsplit_once('.').map_or(path, |(a, _)| a),
                None => path,
            };
            check_count(attr, attr_path, items.len() - 1, items.len())?;
        }
        return Ok(());
    }

    for &i in &selected {
        match (sub, &new, &mut items[i]) {
            (Some(sub), Some(v), Value::Object(o)) => {
                check_immutable(sub, path, o.get(sub.name), Some(v))?;
                o.insert(sub.name.to_string(), v.clone());
            }
            (None, Some(Value::Object(given)), Value::Object(o)) => merge(attr, path, o, given)?,
            (_, Some(v), item) => *item = v.clone(),
            (_, None, _) => {}
        }
    }
    if let Some(&first) = selected.iter().find(|&&i| is_primary(&items[i])) {
        demote_others(items, first);
    }
    check_primary(path, items)
}

/// The password a PATCH sets, if any: the last `{"path": "password"}`
/// value or path-less value object's `password` key — the same one
/// [`apply`] reports in [`PatchOutcome::password`]. Known before the
/// operations are applied, so a caller can hash it outside its write
/// transaction and keep the whole PATCH one atomic write.
pub fn password_in(ops: &[PatchOp]) -> Option<&str> {
    let mut found = None;
    for op in ops {
        match (&op.path, &op.value) {
            (Some(path), Some(Value::String(pw)))
                if path.urn.is_none()
                    && path.attr.eq_ignore_ascii_case("password")
                    && path.sub_attr.is_none()
                    && path.filter.is_none() =>
            {
                found = Some(pw.as_str());
            }
            (None, Some(Value::Object(obj))) => {
                if let Some(Value::String(pw)) = obj
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("password"))
                    .map(|(_, v)| v)
                {
                    found = Some(pw.as_str());
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP, PATCH_OP_SCHEMA, USER};
    use crate::ScimType;
    use serde_json::json;

    const EXT: &str = ENTERPRISE_USER_SCHEMA;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn run(
        rt: &ResourceType,
        start: Value,
        ops: Value,
    ) -> Result<(Value, PatchOutcome), ScimError> {
        let mut attrs = crate::resource::normalize(rt, &start).unwrap().attrs;
        let ops = parse_request(&body(ops))?;
        let out = apply(rt, &mut attrs, &ops)?;
        Ok((Value::Object(attrs), out))
    }

    fn user() -> Value {
        json!({
            "userName": "bjensen",
            "displayName": "Babs",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}],
        })
    }

    fn group() -> Value {
        json!({"displayName": "Tour Guides", "members": [
            {"value": "2819c223", "type": "User"},
            {"value": "902c246b", "type": "User"},
        ]})
    }

    /// `(name, start, operations, expected attributes)`.
    type Case = (&'static str, Value, Value, Value);

    fn check(rt: &ResourceType, cases: Vec<Case>) {
        for (name, start, ops, want) in cases {
            let (got, _) = run(rt, start, ops).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn rfc_7644_group_examples() {
        check(
            &GROUP,
            vec![
                (
                    "§3.5.2.1 add a member",
                    group(),
                    json!([{"op": "add", "path": "members",
                            "value": [{"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223", "value": "2819c224"}]}]),
                    json!({"displayName": "Tour Guides", "members": [
                        {"value": "2819c223", "type": "User"}, {"value": "902c246b", "type": "User"},
                        {"value": "2819c224", "$ref": "https://example.com/v2/Users/2819c223"}]}),
                ),
                (
                    "add an existing member is a no-op (dedupe on value)",
                    group(),
                    json!([{"op": "add", "path": "members", "value": [{"value": "2819c223"}, {"value": "new"}, {"value": "new"}]}]),
                    json!({"displayName": "Tour Guides", "members": [
                        {"value": "2819c223", "type": "User"}, {"value": "902c246b", "type": "User"}, {"value": "new"}]}),
                ),
                (
                    "§3.5.2.2 remove a member by filter",
                    group(),
                    json!([{"op": "remove", "path": "members[value eq \"2819c223\"]"}]),
                    json!({"displayName": "Tour Guides", "members": [{"value": "902c246b", "type": "User"}]}),
                ),
                (
                    "remove by filter matching nothing changes nothing",
                    group(),
                    json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]),
                    group(),
                ),
                (
                    "§3.5.2.2 remove all members",
                    group(),
                    json!([{"op": "remove", "path": "members"}]),
                    json!({"displayName": "Tour Guides"}),
                ),
                (
                    "§3.5.2.2 remove all members then add one (replace in two ops)",
                    group(),
                    json!([{"op": "remove", "path": "members"},
                           {"op": "add", "path": "members", "value": [{"value": "2819c223", "display": "Babs"}]}]),
                    json!({"displayName": "Tour Guides", "members": [{"value": "2819c223"}]}),
                ),
                (
                    "§3.5.2.3 replace members",
                    group(),
                    json!([{"op": "replace", "path": "members", "value": [{"value": "2819c223"}, {"value": "9"}]}]),
                    json!({"displayName": "Tour Guides", "members": [{"value": "2819c223"}, {"value": "9"}]}),
                ),
                (
                    "Entra: Remove members with a value array",
                    group(),
                    json!([{"op": "Remove", "path": "members", "value": [{"value": "902c246b"}]}]),
                    json!({"displayName": "Tour Guides", "members": [{"value": "2819c223", "type": "User"}]}),
                ),
                (
                    "Entra: Add members, Replace displayName",
                    group(),
                    json!([{"op": "Add", "path": "members", "value": [{"value": "x1"}]},
                           {"op": "Replace", "path": "displayName", "value": "Guides"}]),
                    json!({"displayName": "Guides", "members": [
                        {"value": "2819c223", "type": "User"}, {"value": "902c246b", "type": "User"}, {"value": "x1"}]}),
                ),
                (
                    "Okta: path-less replace of displayName",
                    group(),
                    json!([{"op": "replace", "value": {"id": "ignored", "displayName": "Okta"}}]),
                    json!({"displayName": "Okta", "members": [
                        {"value": "2819c223", "type": "User"}, {"value": "902c246b", "type": "User"}]}),
                ),
            ],
        );
    }

    #[test]
    fn rfc_7644_user_examples() {
        let mut with_work = user();
        with_work["emails"] = json!([{"value": "b@example.com", "type": "work", "primary": true},
                                     {"value": "babs@jensen.org", "type": "home"}]);
        check(
            &USER,
            vec![
                (
                    "§3.5.2.1 path-less add of emails and nickName",
                    user(),
                    json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
                    {
                        let mut u = with_work.clone();
                        u["nickName"] = json!("Babs");
                        u
                    },
                ),
                (
                    "add emails with a new primary demotes the old one",
                    user(),
                    json!([{"op": "add", "path": "emails", "value": [{"value": "new@x", "primary": true}]}]),
                    {
                        let mut u = user();
                        u["emails"] = json!([{"value": "b@example.com", "type": "work", "primary": false},
                                             {"value": "new@x", "primary": true}]);
                        u
                    },
                ),
                (
                    "§3.5.2.3 replace addresses[type eq \"work\"]",
                    user(),
                    json!([{"op": "replace", "path": "addresses[type eq \"work\"]",
                            "value": {"type": "work", "streetAddress": "911 Universal City Plaza", "primary": true}}]),
                    {
                        let mut u = user();
                        u["addresses"] = json!([{"type": "work", "streetAddress": "911 Universal City Plaza",
                                                 "locality": "Hollywood", "primary": true}]);
                        u
                    },
                ),
                (
                    "§3.5.2.3 replace addresses[type eq \"work\"].streetAddress",
                    user(),
                    json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
                    {
                        let mut u = user();
                        u["addresses"][0]["streetAddress"] = json!("1010 Broadway Ave");
                        u
                    },
                ),
                (
                    "§3.5.2.2 remove emails[type eq \"work\" and value ew \"example.com\"]",
                    with_work.clone(),
                    json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
                    {
                        let mut u = user();
                        u["emails"] = json!([{"value": "babs@jensen.org", "type": "home"}]);
                        u
                    },
                ),
                (
                    "remove a sub-attribute of matching elements",
                    with_work.clone(),
                    json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
                    {
                        let mut u = with_work.clone();
                        u["emails"][0] = json!({"value": "b@example.com", "type": "work"});
                        u
                    },
                ),
                (
                    "remove a single-valued attribute and a sub-attribute",
                    user(),
                    json!([{"op": "remove", "path": "displayName"}, {"op": "remove", "path": "name.givenName"},
                           {"op": "remove", "path": "nickName"}]),
                    {
                        let mut u = user();
                        u.as_object_mut().unwrap().remove("displayName");
                        u["name"] = json!({"familyName": "Jensen"});
                        u
                    },
                ),
                (
                    "replace a whole multi-valued attribute",
                    with_work.clone(),
                    json!([{"op": "replace", "path": "emails", "value": {"value": "only@x"}}]),
                    {
                        let mut u = user();
                        u["emails"] = json!([{"value": "only@x"}]);
                        u
                    },
                ),
                (
                    "replace a complex attribute merges sub-attributes",
                    user(),
                    json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs", "middleName": "Jane"}}]),
                    {
                        let mut u = user();
                        u["name"] = json!({"givenName": "Babs", "familyName": "Jensen", "middleName": "Jane"});
                        u
                    },
                ),
                (
                    "replace with null unassigns",
                    user(),
                    json!([{"op": "replace", "path": "displayName", "value": null},
                           {"op": "replace", "path": "emails[type eq \"work\"]", "value": null}]),
                    {
                        let mut u = user();
                        let o = u.as_object_mut().unwrap();
                        o.remove("displayName");
                        o.remove("emails");
                        u
                    },
                ),
                (
                    "whole extension path",
                    user(),
                    json!([{"op": "add", "path": EXT, "value": {"department": "Sales", "Manager": {"value": "m"}}},
                           {"op": "replace", "path": format!("{EXT}:department"), "value": "Ops"}]),
                    {
                        let mut u = user();
                        u[EXT] = json!({"department": "Ops", "manager": {"value": "m"}});
                        u
                    },
                ),
            ],
        );
    }

    #[test]
    fn entra_and_okta_dialects() {
        check(
            &USER,
            vec![
                (
                    "Replace active with a boolean string",
                    user(),
                    json!([{"op": "Replace", "path": "active", "value": "False"}]),
                    {
                        let mut u = user();
                        u["active"] = json!(false);
                        u
                    },
                ),
                (
                    "Add on a single-valued attribute replaces it",
                    user(),
                    json!([{"op": "Add", "path": "displayName", "value": "x"}]),
                    {
                        let mut u = user();
                        u["displayName"] = json!("x");
                        u
                    },
                ),
                (
                    "path-less Replace with dotted and URN-qualified keys",
                    user(),
                    json!([{"op": "Replace", "value": {
                        "displayName": "x", "name.givenName": "y",
                        format!("{EXT}:department"): "z", "active": false, "unknownThing": 1,
                        "id": "ignored", "meta": {"version": "1"}, "groups": [{"value": "g"}]}}]),
                    {
                        let mut u = user();
                        u["displayName"] = json!("x");
                        u["name"]["givenName"] = json!("y");
                        u["active"] = json!(false);
                        u[EXT] = json!({"department": "z"});
                        u
                    },
                ),
                (
                    "Add manager as a bare id",
                    user(),
                    json!([{"op": "Add", "path": format!("{EXT}:manager"), "value": "2819c223"}]),
                    {
                        let mut u = user();
                        u[EXT] = json!({"manager": {"value": "2819c223"}});
                        u
                    },
                ),
                (
                    "path-less Add of manager as a bare id and an extension object",
                    user(),
                    json!([{"op": "add", "value": {format!("{EXT}:manager"): "m1", EXT: {"costCenter": "4"}}}]),
                    {
                        let mut u = user();
                        u[EXT] = json!({"manager": {"value": "m1"}, "costCenter": "4"});
                        u
                    },
                ),
                (
                    "replace emails[type eq \"work\"].value on an existing work email",
                    user(),
                    json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"}]),
                    {
                        let mut u = user();
                        u["emails"][0]["value"] = json!("updatedEmail@microsoft.com");
                        u
                    },
                ),
                (
                    "replace emails[type eq \"work\"].value creates the work email",
                    json!({"userName": "u", "emails": [{"value": "h@x", "type": "home"}]}),
                    json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"}]),
                    json!({"userName": "u", "emails": [{"value": "h@x", "type": "home"},
                                                       {"type": "work", "value": "updatedEmail@microsoft.com"}]}),
                ),
                (
                    "add addresses[type eq \"work\"].formatted creates the work address",
                    json!({"userName": "u"}),
                    json!([{"op": "add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St"},
                           {"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Town"}]),
                    json!({"userName": "u", "addresses": [{"type": "work", "formatted": "1 Main St", "locality": "Town"}]}),
                ),
                (
                    "replace name.familyName",
                    user(),
                    json!([{"op": "replace", "path": "name.familyName", "value": "updatedFamilyName"}]),
                    {
                        let mut u = user();
                        u["name"]["familyName"] = json!("updatedFamilyName");
                        u
                    },
                ),
                (
                    "Okta: path-less replace of active",
                    user(),
                    json!([{"op": "replace", "value": {"active": false}}]),
                    {
                        let mut u = user();
                        u["active"] = json!(false);
                        u
                    },
                ),
                (
                    "primary set by filter path demotes others",
                    json!({"userName": "u", "emails": [{"value": "a", "primary": true}, {"value": "b", "type": "home"}]}),
                    json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
                    json!({"userName": "u", "emails": [{"value": "a", "primary": false}, {"value": "b", "type": "home", "primary": true}]}),
                ),
            ],
        );
    }

    #[test]
    fn password_and_changed() {
        let (attrs, out) = run(
            &USER,
            user(),
            json!([{"op": "replace", "path": "password", "value": "n3w"}]),
        )
        .unwrap();
        assert_eq!(
            out,
            PatchOutcome {
                password: Some("n3w".into()),
                changed: false
            }
        );
        assert_eq!(attrs, user());
        let (_, out) = run(
            &USER,
            user(),
            json!([{"op": "replace", "value": {"password": "p2", "nickName": "B"}}]),
        )
        .unwrap();
        assert_eq!(
            out,
            PatchOutcome {
                password: Some("p2".into()),
                changed: true
            }
        );
        // Setting what is already there changes nothing.
        let (_, out) = run(
            &USER,
            user(),
            json!([{"op": "replace", "path": "displayName", "value": "Babs"}]),
        )
        .unwrap();
        assert!(!out.changed);
        let (_, out) = run(
            &GROUP,
            group(),
            json!([{"op": "add", "path": "members", "value": [{"value": "2819c223"}]}]),
        )
        .unwrap();
        assert!(!out.changed);
    }

    #[test]
    fn parse_errors() {
        let cases: Vec<(Value, ScimType, &str)> = vec![
            (json!([]), ScimType::InvalidSyntax, "JSON object"),
            (
                json!({"Operations": []}),
                ScimType::InvalidSyntax,
                "at least one",
            ),
            (
                json!({"Operations": {}}),
                ScimType::InvalidSyntax,
                "must be an array",
            ),
            (json!({}), ScimType::InvalidSyntax, "Operations"),
            (
                json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "x", "value": 1}]}),
                ScimType::InvalidSyntax,
                "schemas",
            ),
            (
                json!({"schemas": "x", "Operations": [{"op": "add", "path": "x", "value": 1}]}),
                ScimType::InvalidSyntax,
                "schemas",
            ),
            (
                json!({"Operations": [1]}),
                ScimType::InvalidSyntax,
                "Operations[0] must be an object",
            ),
            (
                json!({"Operations": [{"op": "move"}]}),
                ScimType::InvalidSyntax,
                "Operations[0].op",
            ),
            (
                json!({"Operations": [{"path": "x"}]}),
                ScimType::InvalidSyntax,
                "needs an \"op\"",
            ),
            (
                json!({"Operations": [{"op": 5}]}),
                ScimType::InvalidSyntax,
                "needs an \"op\"",
            ),
            (
                json!({"Operations": [{"op": "remove"}]}),
                ScimType::NoTarget,
                "remove needs a path",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "displayName"}]}),
                ScimType::InvalidValue,
                "needs a value",
            ),
            (
                json!({"Operations": [{"op": "add", "path": 5, "value": 1}]}),
                ScimType::InvalidPath,
                "path must be a string",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "emails[type eq", "value": 1}]}),
                ScimType::InvalidPath,
                "Operations[0].path",
            ),
        ];
        for (b, ty, detail) in cases {
            let e = parse_request(&b).unwrap_err();
            assert_eq!(e.scim_type, ty, "{b}");
            assert!(e.detail.contains(detail), "{b}: {}", e.detail);
        }
        let ops = parse_request(&json!({"operations": [
            {"OP": "REPLACE", "Path": "displayName", "Value": "x", "id": 1, "name": "n"},
            {"op": "Remove", "path": EXT},
        ]}))
        .unwrap();
        assert_eq!(ops[0].op, PatchOpKind::Replace);
        assert_eq!(ops[0].value, Some(json!("x")));
        assert_eq!(ops[1].path.as_ref().unwrap().attr, EXT);
    }

    #[test]
    fn apply_errors() {
        let cases: Vec<(&ResourceType, Value, Value, ScimType, &str)> = vec![
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "nope", "value": 1}]),
                ScimType::InvalidPath,
                "nope",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "name.nope", "value": 1}]),
                ScimType::InvalidPath,
                "nope",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "urn:x:y:department", "value": 1}]),
                ScimType::InvalidPath,
                "department",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "department", "value": 1}]),
                ScimType::InvalidPath,
                "department",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "displayName[value eq \"x\"]", "value": 1}]),
                ScimType::InvalidPath,
                "multi-valued",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                ScimType::Mutability,
                "id is readOnly",
            ),
            (
                &USER,
                user(),
                json!([{"op": "remove", "path": "meta.version"}]),
                ScimType::Mutability,
                "meta.version is readOnly",
            ),
            (
                &USER,
                user(),
                json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
                ScimType::Mutability,
                "groups",
            ),
            (
                &USER,
                user(),
                json!([{"op": "add", "path": format!("{EXT}:manager.displayName"), "value": "x"}]),
                ScimType::Mutability,
                "readOnly",
            ),
            (
                &USER,
                user(),
                json!([{"op": "remove", "path": "userName"}]),
                ScimType::Mutability,
                "userName is required",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "userName", "value": null}]),
                ScimType::Mutability,
                "userName is required",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "value": {"userName": null}}]),
                ScimType::Mutability,
                "userName is required",
            ),
            (
                &GROUP,
                group(),
                json!([{"op": "remove", "path": "displayName"}]),
                ScimType::Mutability,
                "displayName is required",
            ),
            (
                &GROUP,
                group(),
                json!([{"op": "replace", "path": "members[value eq \"2819c223\"].value", "value": "other"}]),
                ScimType::Mutability,
                "immutable",
            ),
            (
                &GROUP,
                group(),
                json!([{"op": "remove", "path": "members[value eq \"2819c223\"].type"}]),
                ScimType::Mutability,
                "immutable",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x"}}]),
                ScimType::NoTarget,
                "matches",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "emails[value sw \"zz\"].value", "value": "x"}]),
                ScimType::NoTarget,
                "matches",
            ),
            (
                &USER,
                json!({"userName": "u"}),
                json!([{"op": "replace", "path": "emails.value", "value": "x"}]),
                ScimType::NoTarget,
                "matches",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "active", "value": "maybe"}]),
                ScimType::InvalidValue,
                "active must be a boolean",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "name", "value": 5}]),
                ScimType::InvalidValue,
                "name must be an object",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "value": "x"}]),
                ScimType::InvalidValue,
                "object value",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "value": {EXT: 5}}]),
                ScimType::InvalidValue,
                EXT,
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "emails", "value": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}]),
                ScimType::InvalidValue,
                "primary",
            ),
            (
                &USER,
                user(),
                json!([{"op": "replace", "path": "password", "value": 5}]),
                ScimType::InvalidValue,
                "password must be a string",
            ),
            (
                &USER,
                user(),
                json!([{"op": "remove", "path": "password"}]),
                ScimType::InvalidValue,
                "password",
            ),
            (
                &USER,
                user(),
                json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User"}]),
                ScimType::InvalidPath,
                "whole resource",
            ),
        ];
        for (rt, start, ops, ty, detail) in cases {
            let e = run(rt, start, ops.clone()).unwrap_err();
            assert_eq!(e.scim_type, ty, "{ops}: {}", e.detail);
            assert!(e.detail.contains(detail), "{ops}: {}", e.detail);
        }
    }

    #[test]
    fn failed_patch_leaves_attrs_unchanged() {
        let mut attrs = crate::resource::normalize(&USER, &user()).unwrap().attrs;
        let before = attrs.clone();
        let ops = parse_request(&body(json!([
            {"op": "replace", "path": "displayName", "value": "changed"},
            {"op": "add", "path": "emails", "value": [{"value": "x@y"}]},
            {"op": "replace", "path": "id", "value": "x"},
        ])))
        .unwrap();
        let e = apply(&USER, &mut attrs, &ops).unwrap_err();
        assert_eq!(e.scim_type, ScimType::Mutability);
        assert!(e.detail.starts_with("Operations[2]: "), "{}", e.detail);
        assert_eq!(attrs, before);
    }

    #[test]
    fn odd_json_never_panics() {
        let odd = [
            json!(null),
            json!(true),
            json!(1.5),
            json!("s"),
            json!([]),
            json!([null, 1, "x", [], {}]),
            json!({}),
            json!({"value": [1]}),
            json!({"value": {"x": 1}, "primary": "nah"}),
            json!({"emails[type eq \"work\"].value": [1], "members[value eq \"x\"]": {}}),
            json!({"emails[": null, "urn:ietf:params:scim:schemas:core:2.0:User": {"addresses[type eq \"work\"]": "x"}}),
        ];
        let paths = [
            None,
            Some("userName"),
            Some("name"),
            Some("name.givenName"),
            Some("emails"),
            Some("emails[type eq \"work\"]"),
            Some("emails[type eq \"work\"].value"),
            Some("emails.primary"),
            Some("active"),
            Some(EXT),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            Some("x509Certificates"),
            Some("addresses[primary eq true].primary"),
        ];
        for rt in [&USER, &GROUP] {
            for op in ["add", "replace", "remove"] {
                for path in paths {
                    for v in &odd {
                        let mut o = json!({"op": op, "value": v});
                        if let Some(p) = path {
                            o["path"] = json!(p);
                        }
                        let start = if std::ptr::eq(rt, &GROUP) {
                            group()
                        } else {
                            user()
                        };
                        let _ = run(rt, start, json!([o]));
                    }
                }
            }
        }
        // Whatever the stored form holds, apply does not panic either.
        let mut weird: Map<String, Value> = serde_json::from_value(json!({
            "userName": "u", "emails": "notarray", "name": [1], EXT: 3}))
        .unwrap();
        let ops = parse_request(&body(json!([
            {"op": "add", "path": "emails", "value": {"value": "a"}},
            {"op": "replace", "path": "name.givenName", "value": "g"},
            {"op": "add", "path": format!("{EXT}:department"), "value": "d"},
        ])))
        .unwrap();
        let _ = apply(&USER, &mut weird, &ops);
    }

    /// `n` work emails `prefix0@x` … with `primary` on the one at `primary`.
    fn emails(prefix: &str, n: usize, primary: Option<usize>) -> Vec<Value> {
        (0..n)
            .map(|i| {
                let mut e = json!({"value": format!("{prefix}{i}@x"), "type": "work"});
                if primary == Some(i) {
                    e["primary"] = json!(true);
                }
                e
            })
            .collect()
    }

    #[test]
    fn adding_values_hashes_each_element_once() {
        // 200,000 elements: 100,000 stored, 100,000 added of which half are
        // already there. Each element is hashed exactly once, so the work is
        // linear; comparing each new element with every stored one would
        // be 10^10 comparisons.
        let n = 100_000;
        let mut items = emails("a", n, Some(n - 1));
        let mut new = emails("a", n / 2, None);
        new.extend(emails("b", n / 2, Some(n / 4)));
        let mut hashed = 0;
        let mut compared = 0;
        add_unique(
            &mut items,
            new,
            |a, b| {
                compared += 1;
                a == b
            },
            |e| {
                hashed += 1;
                element_hash(false, e)
            },
        );
        assert_eq!(hashed, 2 * n);
        // Only the duplicates are compared, each with its twin.
        assert_eq!(compared, n / 2);
        assert_eq!(items.len(), n + n / 2);
        assert_eq!(items[n]["value"], "b0@x");
        // The new primary value wins; the stored one is demoted.
        assert_eq!(items[n - 1]["primary"], json!(false));
        assert_eq!(items[n + n / 4]["primary"], json!(true));
        assert_eq!(items.iter().filter(|e| is_primary(e)).count(), 1);
    }

    #[test]
    fn element_hashes_agree_with_equality() {
        // Members compare by value, other elements as a whole, whatever
        // the order of their keys: the same elements hash alike.
        let a = json!({"value": "u1", "type": "User"});
        let b = json!({"type": "Group", "value": "u1"});
        let c: Value = serde_json::from_str(r#"{"type": "User", "value": "u1"}"#).unwrap();
        assert!(same_element(true, &a, &b) && !same_element(false, &a, &b));
        assert_eq!(element_hash(true, &a), element_hash(true, &b));
        assert_eq!(element_hash(false, &a), element_hash(false, &c));
        assert_eq!(
            element_hash(false, &json!(0.0)),
            element_hash(false, &json!(-0.0))
        );
        let mut h = (DefaultHasher::new(), DefaultHasher::new());
        hash_value(&json!({"v": ["ÄB", 1]}), true, &mut h.0);
        hash_value(&json!({"v": ["äb", 1]}), true, &mut h.1);
        assert_eq!(h.0.finish(), h.1.finish());
        // Whatever the hashes, only the same elements are dropped, in
        // both ways of adding (direct and hashed).
        let distinct = [
            json!({"value": "u1"}),
            json!({"value": "U1"}),
            json!({"value": 1}),
            json!({"value": 1.0}),
            json!({"value": "1"}),
            json!({"value": "u1", "type": "work"}),
            json!({"type": "work"}),
            json!("u1"),
        ];
        for new in [distinct.to_vec(), distinct[..4].to_vec()] {
            let mut items = vec![json!({"type": "work", "value": "u1"})];
            let mut want = items.clone();
            want.extend(new.iter().filter(|v| **v != items[0]).cloned());
            add_unique(&mut items, new.clone(), |a, b| a == b, |_| 7);
            assert_eq!(items, want);
        }
    }

    #[test]
    fn large_group_patches_stay_linear() {
        // Group members are not capped (the server applies them in the
        // store); in memory too, adding and removing 40,000 of them is
        // linear: each would otherwise be compared with every other
        // (about 10^9 comparisons).
        let n = 40_000;
        let members = |from: usize, to: usize| -> Value {
            (from..to)
                .map(|i| json!({"value": format!("m{i}"), "type": "User"}))
                .collect()
        };
        let start = json!({"displayName": "Big", "members": members(0, n)});
        let (attrs, _) = run(
            &GROUP,
            start,
            json!([
                {"op": "add", "path": "members", "value": members(n / 2, n + n / 2)},
                {"op": "remove", "path": "members", "value": members(0, n / 2)},
                {"op": "remove", "path": "members[value sw \"m3\"]"}
            ]),
        )
        .unwrap();
        let left = attrs["members"].as_array().unwrap();
        let want = (n / 2..n + n / 2)
            .filter(|i| !i.to_string().starts_with('3'))
            .count();
        assert_eq!(left.len(), want);
        assert_eq!(left[0]["value"], "m20000");
    }

    #[test]
    fn removing_listed_values_follows_case_exactness() {
        // emails.value is not caseExact; members.value is.
        let (attrs, _) = run(
            &USER,
            json!({"userName": "u", "emails": [{"value": "A@x"}, {"value": "b@x"}, {"type": "work"}]}),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "a@X"}, {"type": "work"}]}]),
        )
        .unwrap();
        assert_eq!(attrs["emails"], json!([{"value": "b@x"}]));
        let (attrs, _) = run(
            &GROUP,
            json!({"displayName": "g", "members": [{"value": "U1"}, {"value": "u2"}]}),
            json!([{"op": "remove", "path": "members", "value": ["u1", {"Value": "u2"}]}]),
        )
        .unwrap();
        assert_eq!(attrs["members"], json!([{"value": "U1"}]));
    }

    #[test]
    fn values_are_capped_but_stored_excess_may_stay() {
        let cap = crate::schema::MAX_VALUES;
        let list = |n: usize| Value::Array(emails("e", n, None));
        // At the cap: fine. One more, by add, replace or filter: refused,
        // naming the attribute and the cap.
        let at_cap = json!({"userName": "u", "emails": list(cap)});
        let (attrs, _) = run(
            &USER,
            at_cap.clone(),
            json!([{"op": "add", "path": "emails", "value": list(cap)}]),
        )
        .unwrap();
        assert_eq!(attrs["emails"].as_array().unwrap().len(), cap);
        for ops in [
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@x"}]}]),
            json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "h@x"}]),
            json!([{"op": "add", "value": {"emails": [{"value": "new@x"}]}}]),
        ] {
            let e = run(&USER, at_cap.clone(), ops.clone()).unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidValue, "{ops}");
            assert!(
                e.detail.contains("emails: 101 values")
                    && e.detail.contains(&format!("the {cap} a resource may hold")),
                "{ops}: {}",
                e.detail
            );
        }
        let e = run(
            &USER,
            json!({"userName": "u"}),
            json!([{"op": "replace", "path": "roles", "value": list(45_000)}]),
        )
        .unwrap_err();
        assert!(e.detail.contains("roles: 45000 values"), "{}", e.detail);
        let ops: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "replace", "path": "emails[value eq \"e0@x\"].display", "value": "d"}))
            .collect();
        let e = run(&USER, at_cap.clone(), Value::Array(ops)).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
        assert!(
            e.detail
                .contains("at most 500 operations, this one carries 501"),
            "{}",
            e.detail
        );
        let e = crate::resource::normalize(
            &USER,
            &json!({"userName": "u", "phoneNumbers": list(cap + 1)}),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
        assert!(
            e.detail.starts_with("phoneNumbers: 101 values"),
            "{}",
            e.detail
        );

        // A resource stored with more (before the cap) can still be
        // patched, and shrink, but not grow.
        let stored: Map<String, Value> = serde_json::from_value(
            json!({"userName": "u", "title": "t", "emails": list(cap + 50)}),
        )
        .unwrap();
        let patch = |ops: Value| {
            let mut attrs = stored.clone();
            apply(&USER, &mut attrs, &parse_request(&body(ops)).unwrap()).map(|_| attrs)
        };
        assert!(patch(json!([{"op": "replace", "path": "active", "value": false}])).is_ok());
        let fewer = patch(json!([{"op": "remove", "path": "emails[value eq \"e0@x\"]"}])).unwrap();
        assert_eq!(fewer["emails"].as_array().unwrap().len(), cap + 49);
        let e = patch(json!([{"op": "add", "path": "emails", "value": {"value": "more@x"}}]))
            .unwrap_err();
        assert!(e.detail.contains("emails: 151 values"), "{}", e.detail);
        assert!(patch(json!([{"op": "remove", "path": "title"}])).is_ok());
        // But no request gives an attribute more than its cap, whatever
        // the resource holds and whatever the op: the body parser
        // (`crate::body`) refuses such a list before it is built.
        for op in ["add", "replace", "remove"] {
            let e =
                patch(json!([{"op": op, "path": "emails", "value": list(cap + 50)}])).unwrap_err();
            assert!(
                e.detail.starts_with("Operations[0]: emails: 150 values"),
                "{op}: {}",
                e.detail
            );
        }
    }

    /// Entra ID (aadOptscim062020) sends several attributes in one
    /// path-less `replace`, value paths among them.
    fn entra_pathless(value: Value) -> Value {
        json!([{"op": "replace", "value": value}])
    }

    #[test]
    fn pathless_value_path_keys_are_applied() {
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        check(
            &USER,
            vec![
                (
                    "Entra: work email, address and mobile on a user that has a work email and address",
                    user(),
                    entra_pathless(json!({
                        "displayName": "x",
                        "name.givenName": "y",
                        format!("{EXT}:department"): "z",
                        "emails[type eq \"work\"].value": "a@b.c",
                        "addresses[type eq \"work\"].locality": "X",
                        "phoneNumbers[type eq \"mobile\"].value": "+1 555 0100",
                    })),
                    {
                        let mut u = user();
                        u["displayName"] = json!("x");
                        u["name"]["givenName"] = json!("y");
                        u[EXT] = json!({"department": "z"});
                        u["emails"][0]["value"] = json!("a@b.c");
                        u["addresses"][0]["locality"] = json!("X");
                        u["phoneNumbers"] = json!([{"type": "mobile", "value": "+1 555 0100"}]);
                        u
                    },
                ),
                (
                    "Entra: replace creates the work email and address on a bare user",
                    json!({"userName": "u"}),
                    entra_pathless(json!({
                        "emails[type eq \"work\"].value": "a@b.c",
                        "addresses[type eq \"work\"].locality": "X",
                        "addresses[type eq \"work\"].postalCode": "100-0001",
                        "phoneNumbers[type eq \"mobile\"].value": "+1 555 0100",
                    })),
                    json!({"userName": "u",
                           "emails": [{"type": "work", "value": "a@b.c"}],
                           "addresses": [{"type": "work", "locality": "X", "postalCode": "100-0001"}],
                           "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}]}),
                ),
                (
                    "Entra: the home email is kept, a work one added",
                    json!({"userName": "u", "emails": [{"value": "h@x", "type": "home"}]}),
                    entra_pathless(json!({"emails[type eq \"work\"].value": "w@x"})),
                    json!({"userName": "u", "emails": [{"value": "h@x", "type": "home"},
                                                       {"type": "work", "value": "w@x"}]}),
                ),
                (
                    "Entra: null unassigns the selection",
                    user(),
                    entra_pathless(json!({"emails[type eq \"work\"].value": null,
                                          "addresses[type eq \"work\"]": null})),
                    {
                        let mut u = user();
                        u["emails"] = json!([{"type": "work", "primary": true}]);
                        u.as_object_mut().unwrap().remove("addresses");
                        u
                    },
                ),
                (
                    "path-less add, URN-qualified, nested under the core schema URN",
                    json!({"userName": "u"}),
                    json!([{"op": "Add", "value": {
                        format!("{core}:emails[type eq \"work\"].value"): "a@b.c",
                        core: {"phoneNumbers[type eq \"work\"].value": "+1 555 0199"},
                    }}]),
                    json!({"userName": "u",
                           "emails": [{"type": "work", "value": "a@b.c"}],
                           "phoneNumbers": [{"type": "work", "value": "+1 555 0199"}]}),
                ),
                (
                    "a filter with dots and brackets in its string, and a primary that demotes",
                    json!({"userName": "u", "emails": [{"value": "a.b@x.y", "primary": true}, {"value": "[c]@x"}]}),
                    json!([{"op": "replace", "value": {
                        "emails[value eq \"[c]@x\"].primary": true,
                        "emails[value eq \"a.b@x.y\"].display": "A. B.",
                    }}]),
                    json!({"userName": "u", "emails": [
                        {"value": "a.b@x.y", "primary": false, "display": "A. B."},
                        {"value": "[c]@x", "primary": true}]}),
                ),
                (
                    "Okta: path-less replace of active, unchanged",
                    user(),
                    json!([{"op": "replace", "value": {"active": false}}]),
                    {
                        let mut u = user();
                        u["active"] = json!(false);
                        u
                    },
                ),
            ],
        );
        check(
            &GROUP,
            vec![(
                "Okta: path-less group rename with its id, unchanged",
                group(),
                json!([{"op": "replace", "value": {"id": "abf4dd94", "displayName": "Renamed"}}]),
                {
                    let mut g = group();
                    g["displayName"] = json!("Renamed");
                    g
                },
            )],
        );
    }

    #[test]
    fn pathless_value_path_keys_act_as_their_paths() {
        // Each key, sent by Entra's default dialect as a `path` and by
        // aadOptscim062020 as a path-less key, gives the same result or
        // the same error, on users with and without a matching value.
        let starts = [
            user(),
            json!({"userName": "u"}),
            json!({"userName": "u", "emails": [{"value": "h@x", "type": "home"}],
                   "phoneNumbers": [{"value": "+1", "type": "mobile"}, {"value": "+2", "type": "work"}]}),
        ];
        let keys: [(&str, Value); 12] = [
            ("emails[type eq \"work\"].value", json!("w@x")),
            ("emails[type eq \"work\"].primary", json!("True")),
            (
                "emails[type eq \"work\" and primary eq true].value",
                json!("p@x"),
            ),
            ("emails[value ew \"example.com\"].display", json!("d")),
            (
                "emails[type eq \"work\"]",
                json!({"value": "o@x", "display": "o"}),
            ),
            ("addresses[type eq \"work\"].locality", json!("X")),
            ("addresses[type eq \"work\"].streetAddress", json!(null)),
            ("phoneNumbers[type eq \"mobile\"].value", json!("+3")),
            ("phoneNumbers[type eq \"fax\"]", json!({"value": "+4"})),
            ("emails[type eq \"work\"].nope", json!("x")),
            ("groups[value eq \"g\"].display", json!("x")),
            ("name[givenName eq \"x\"].familyName", json!("x")),
        ];
        let (mut same_values, mut same_errors) = (0, 0);
        for start in &starts {
            for (key, v) in &keys {
                for op in ["Add", "Replace"] {
                    let by_path = run(
                        &USER,
                        start.clone(),
                        json!([{"op": op, "path": key, "value": v}]),
                    );
                    let pathless = run(
                        &USER,
                        start.clone(),
                        json!([{"op": op, "value": {*key: v}}]),
                    );
                    match (by_path, pathless) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(a, b, "{op} {key} on {start}");
                            same_values += 1;
                        }
                        (Err(a), Err(b)) => {
                            same_errors += 1;
                            assert_eq!(
                                a.scim_type, b.scim_type,
                                "{op} {key} on {start}: {a} / {b}"
                            );
                            assert!(
                                b.detail.contains(&format!("value key {key:?}")),
                                "{}",
                                b.detail
                            );
                        }
                        (a, b) => panic!("{op} {key} on {start}: path {a:?}, path-less {b:?}"),
                    }
                }
            }
        }
        // Both outcomes are covered: of 72 pairs, 27 are errors (18 unknown
        // or readOnly keys, 9 filters that match nothing and create nothing).
        assert_eq!((same_values, same_errors), (45, 27));
    }

    #[test]
    fn pathless_value_path_keys_that_cannot_apply_are_errors() {
        let ext_key = format!("value key \"{EXT}:manager[value eq \\\"m\\\"].displayName\"");
        let cases: Vec<(&ResourceType, Value, ScimType, &str)> = vec![
            (
                &USER,
                json!({"foo[type eq \"work\"].value": "x"}),
                ScimType::InvalidPath,
                "value key \"foo[type eq \\\"work\\\"].value\": foo[…].value: no attribute \"foo\"",
            ),
            (
                &USER,
                json!({"emails[type eq \"work\".value": "x"}),
                ScimType::InvalidPath,
                "value key \"emails[type eq \\\"work\\\".value\"",
            ),
            (
                &USER,
                json!({"emails[type eq]": "x"}),
                ScimType::InvalidPath,
                "value key \"emails[type eq]\"",
            ),
            (
                &USER,
                json!({"emails]": "x"}),
                ScimType::InvalidPath,
                "value key \"emails]\"",
            ),
            (
                &USER,
                json!({"urn:x:y:emails[type eq \"work\"].value": "x"}),
                ScimType::InvalidPath,
                "value key \"urn:x:y:emails",
            ),
            (
                &USER,
                json!({"displayName[value eq \"x\"]": "x"}),
                ScimType::InvalidPath,
                "multi-valued",
            ),
            (
                &USER,
                json!({"emails[type eq \"work\"].nope": "x"}),
                ScimType::InvalidPath,
                "no sub-attribute \"nope\"",
            ),
            (
                &USER,
                json!({EXT: {"manager[value eq \"m\"].displayName": "x"}}),
                ScimType::InvalidPath,
                &ext_key,
            ),
            (
                &USER,
                json!({"groups[value eq \"g\"].display": "x"}),
                ScimType::Mutability,
                "groups.display is readOnly",
            ),
            (
                &USER,
                json!({"emails[value sw \"zz\"].value": "x"}),
                ScimType::NoTarget,
                "no value of emails.value matches",
            ),
            (
                &USER,
                json!({"emails[type eq \"other\"]": {"value": "x"}}),
                ScimType::NoTarget,
                "matches",
            ),
            (
                &USER,
                json!({"emails[type eq \"work\"].primary": "maybe"}),
                ScimType::InvalidValue,
                "value key",
            ),
            (
                &GROUP,
                json!({"displayName[value eq \"x\"]": "x"}),
                ScimType::InvalidPath,
                "value key",
            ),
        ];
        for (rt, value, ty, detail) in cases {
            let start = if std::ptr::eq(rt, &GROUP) {
                group()
            } else {
                user()
            };
            let e = run(rt, start, json!([{"op": "replace", "value": value}])).unwrap_err();
            assert_eq!(e.scim_type, ty, "{value}: {}", e.detail);
            assert!(
                e.detail.starts_with("Operations[0]: "),
                "{value}: {}",
                e.detail
            );
            assert!(e.detail.contains(detail), "{value}: {}", e.detail);
        }
        // The other keys of the operation are not applied either.
        let mut attrs = crate::resource::normalize(&USER, &user()).unwrap().attrs;
        let before = attrs.clone();
        let ops = parse_request(&body(json!([{"op": "replace", "value": {
            "displayName": "changed", "foo[type eq \"work\"].value": "x"}}])))
        .unwrap();
        assert!(apply(&USER, &mut attrs, &ops).is_err());
        assert_eq!(attrs, before);
        // Unknown attribute names without a value filter stay ignored, as
        // in PUT (documented in docs/SCIM.md).
        let (got, _) = run(
            &USER,
            user(),
            json!([{"op": "replace", "value": {"unknownThing": 1, "name.nope": 2,
                    "urn:example:custom:2.0:User:costCenter": 3, "id": "x"}}]),
        )
        .unwrap();
        assert_eq!(got, user());
    }

    #[test]
    fn password_in_agrees_with_apply() {
        let cases = [
            (
                json!([{"op": "replace", "path": "password", "value": "one"}]),
                Some("one"),
            ),
            (
                json!([{"op": "Replace", "value": {"Password": "two", "title": "t"}}]),
                Some("two"),
            ),
            (
                json!([
                    {"op": "add", "path": "password", "value": "first"},
                    {"op": "replace", "value": {"password": "last"}}
                ]),
                Some("last"),
            ),
            (
                json!([{"op": "replace", "path": "title", "value": "x"}]),
                None,
            ),
        ];
        for (ops, want) in cases {
            let parsed = parse_request(&body(ops.clone())).unwrap();
            assert_eq!(password_in(&parsed), want, "{ops}");
            let (_, outcome) = run(&USER, user(), ops.clone()).unwrap();
            assert_eq!(outcome.password.as_deref(), want, "{ops}");
        }
    }
}
