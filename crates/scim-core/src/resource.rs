//! The canonical in-memory form of a resource, and the conversions around
//! it: request bodies in (RFC 7644 §3.3, §3.5.1), responses out
//! (RFC 7644 §3.4.1, RFC 7643 §3.1), and attribute projection
//! (RFC 7644 §3.4.2.5, §3.9).
//!
//! The canonical form is a JSON object whose top-level keys are core
//! attribute names in canonical case (`userName`, `name`, `emails`, …);
//! complex values are objects with canonical sub-attribute keys,
//! multi-valued attributes are arrays, and extension attributes live under
//! the full extension URN key (`{"urn:…:enterprise:2.0:User":
//! {"department": "…"}}`). It never holds `id`, `meta`, `schemas`,
//! `password` or any other readOnly attribute: those belong to the service
//! provider and are added by [`render`] (or, for `groups` and
//! `members.display`, by the server from the store).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{json, Map, Value};

use crate::filter::{AttrPath, Filter};
use crate::schema::{
    AttrType, AttributeDef, Mutability, ResolvedAttr, ResourceType, Returned, Schema,
};
use crate::ScimError;

/// A POST or PUT body reduced to the canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The attributes, in canonical form.
    pub attrs: Map<String, Value>,
    /// The `password` the client set, if any. It is writeOnly and returned
    /// never (RFC 7643 §4.1.1), so it is kept apart from the attributes for
    /// the store to hash.
    pub password: Option<String>,
}

/// Normalises a POST or PUT body for resource type `rt`.
///
/// - The body must be a JSON object (else `invalidSyntax`).
/// - Attribute names match case-insensitively (RFC 7643 §2.1) and are
///   rewritten in canonical case.
/// - Extension attributes are accepted nested under the extension URN key
///   and as top-level URN-qualified keys (`"urn:…:2.0:User:department"`).
/// - Unknown attributes, unknown schema URNs, `schemas` and readOnly
///   attributes (`id`, `meta`, `groups`, `manager.displayName`,
///   `members.display`) are dropped: RFC 7644 §3.5.1 says readOnly values
///   SHALL be ignored. `members.display` is filled in by the service
///   provider from the member itself, so a stale client copy is not kept.
/// - `null` means unassigned (RFC 7644 §3.5.1) and is dropped, as are
///   objects and arrays left empty.
/// - Boolean attributes also accept the strings `"True"`/`"False"` (any
///   case), which Microsoft Entra ID sends.
/// - A multi-valued attribute given a single value is wrapped in an array;
///   the enterprise `manager` given as a bare string becomes
///   `{"value": "…"}` (an empty string unassigns it).
/// - canonicalValues are not enforced (Entra sends its own `type`s).
/// - At most one element of a multi-valued attribute may be
///   `primary: true` (RFC 7643 §2.4), else `invalidValue`.
/// - Required attributes (`userName`, Group `displayName`) must be present
///   and non-empty, else `invalidValue`.
/// - Other type mismatches are `invalidValue` naming the attribute and the
///   expected type; dateTime values must be RFC 3339 and are stored in
///   the fixed form of [`crate::datetime`].
///
/// - A multi-valued attribute with a cap ([`AttributeDef::max_values`])
///   holds at most that many values, else `invalidValue` naming the
///   attribute and the cap.
///
/// Immutable attributes are accepted: comparing a PUT against the stored
/// resource is the caller's job.
pub fn normalize(rt: &ResourceType, input: &Value) -> Result<Normalized, ScimError> {
    normalize_with(rt, input, true)
}

/// [`normalize`] without the cap on the number of values, for PATCH,
/// which checks it against the resource as it was ([`check_counts`]).
pub(crate) fn normalize_uncounted(
    rt: &ResourceType,
    input: &Value,
) -> Result<Normalized, ScimError> {
    normalize_with(rt, input, false)
}

fn normalize_with(rt: &ResourceType, input: &Value, capped: bool) -> Result<Normalized, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    let mut n = Normalized {
        attrs: Map::new(),
        password: None,
    };
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            match value {
                Value::Null => {}
                Value::Object(inner) => {
                    for (k, v) in inner {
                        put(rt, &mut n, Some(ext), k, v, capped)?;
                    }
                }
                other => {
                    return Err(ScimError::invalid_value(format!(
                        "{} must be a JSON object of extension attributes, got {}",
                        ext.id,
                        kind(other)
                    )))
                }
            }
            continue;
        }
        // A key with an unknown `urn:` prefix names nothing we store.
        if let Some((schema, rest)) = rt.split_urn(key) {
            put(rt, &mut n, schema, rest, value, capped)?;
        }
    }
    if let Some(name) = missing_required(rt, &n.attrs) {
        return Err(ScimError::invalid_value(format!("{name} is required")));
    }
    Ok(n)
}

/// Stores one body member (`name` may be `attr` or `attr.sub`); with
/// `capped`, a multi-valued attribute given more values than its cap is
/// refused before any of them is looked at.
fn put(
    rt: &ResourceType,
    n: &mut Normalized,
    schema: Option<&'static Schema>,
    name: &str,
    value: &Value,
    capped: bool,
) -> Result<(), ScimError> {
    let (attr, sub) = match name.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (name, None),
    };
    let Some(r) = rt.resolve(schema.map(|s| s.id), attr, sub) else {
        return Ok(());
    };
    if is_password(&r) {
        if sub.is_none() {
            n.password = match coerce_scalar(r.attr, "password", value)? {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
        }
        return Ok(());
    }
    if is_read_only(&r) {
        return Ok(());
    }
    let path = r.canonical_path();
    if capped && r.sub.is_none() {
        check_count(r.attr, &path, 0, given_count(value))?;
    }
    in_container(&mut n.attrs, &r, |m| {
        match r.sub {
            None => match coerce_attr(r.attr, &path, value)? {
                Some(v) => {
                    m.insert(r.attr.name.to_string(), v);
                }
                None => {
                    m.remove(r.attr.name);
                }
            },
            // `emails.value` as a body key does not say which element.
            Some(_) if r.attr.multi_valued => {}
            Some(sub) => {
                let v = coerce_scalar(sub, &path, value)?;
                with_object(m, r.attr.name, |o| match v {
                    Some(v) => {
                        o.insert(sub.name.to_string(), v);
                    }
                    None => {
                        o.remove(sub.name);
                    }
                });
            }
        }
        Ok(())
    })
}

/// Refuses a multi-valued attribute of `attrs` holding more values than
/// its cap ([`AttributeDef::max_values`]). With `before` (the resource
/// before a PATCH), an attribute that already held more than its cap
/// (stored before the cap existed) may keep as many, but not grow.
pub(crate) fn check_counts(
    rt: &ResourceType,
    attrs: &Map<String, Value>,
    before: Option<&Map<String, Value>>,
) -> Result<(), ScimError> {
    for schema in rt.schemas() {
        let core = std::ptr::eq(schema, rt.schema);
        for a in schema.attributes.iter().filter(|a| a.max_values.is_some()) {
            let count = |m: &Map<String, Value>| {
                let c = if core {
                    Some(m)
                } else {
                    m.get(schema.id).and_then(Value::as_object)
                };
                c.and_then(|c| c.get(a.name))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            };
            let path = if core {
                a.name.to_string()
            } else {
                format!("{}:{}", schema.id, a.name)
            };
            check_count(a, &path, before.map_or(0, count), count(attrs))?;
        }
    }
    Ok(())
}

/// How many values a request gives in `v`: an array's length, else one
/// (a multi-valued attribute may be given a single value).
pub(crate) fn given_count(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Null => 0,
        _ => 1,
    }
}

/// Refuses `after` values of multi-valued attribute `def` (at `path`)
/// above its cap, unless there were already as many `before`.
pub(crate) fn check_count(
    def: &AttributeDef,
    path: &str,
    before: usize,
    after: usize,
) -> Result<(), ScimError> {
    match def.max_values {
        Some(max) if after > max && after > before => Err(ScimError::invalid_value(
            too_many_values(path, &after.to_string(), max),
        )),
        _ => Ok(()),
    }
}

/// The detail of `count` values of the attribute at `path`, over its cap
/// `max`.
pub(crate) fn too_many_values(path: &str, count: &str, max: usize) -> String {
    format!(
        "{path}: {count} values, more than the {max} a resource may hold (see its description in /Schemas)"
    )
}

/// Feeds `v` to `h` so that equal values (`==`) hash alike, whatever the
/// order of their objects' keys; with `fold`, strings are hashed
/// lower-cased. It lets the elements of a multi-valued attribute be
/// matched in linear time, by hash (then `==` on a hit), rather than
/// each compared with each.
pub(crate) fn hash_value(v: &Value, fold: bool, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n).hash(h),
        Value::String(s) if fold => {
            3u8.hash(h);
            s.chars()
                .flat_map(char::to_lowercase)
                .for_each(|c| c.hash(h));
        }
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            items.iter().for_each(|x| hash_value(x, fold, h));
        }
        Value::Object(o) => {
            // Order-independent: the sum of the members' own hashes.
            let sum = o.iter().fold(0u64, |sum, (k, x)| {
                let mut m = DefaultHasher::new();
                k.hash(&mut m);
                hash_value(x, fold, &mut m);
                sum.wrapping_add(m.finish())
            });
            (5u8, o.len(), sum).hash(h);
        }
    }
}

/// The first required attribute of `rt` that is missing or empty in
/// `attrs`, by canonical path.
pub(crate) fn missing_required(rt: &ResourceType, attrs: &Map<String, Value>) -> Option<String> {
    for schema in rt.schemas() {
        let container = if std::ptr::eq(schema, rt.schema) {
            Some(attrs)
        } else {
            attrs.get(schema.id).and_then(Value::as_object)
        };
        for a in schema.attributes.iter().filter(|a| a.required) {
            let present = container
                .and_then(|c| c.get(a.name))
                .is_some_and(|v| !is_empty(v));
            if !present {
                return Some(if std::ptr::eq(schema, rt.schema) {
                    a.name.to_string()
                } else {
                    format!("{}:{}", schema.id, a.name)
                });
            }
        }
    }
    None
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Whether `r` is the core `password` attribute.
pub(crate) fn is_password(r: &ResolvedAttr) -> bool {
    r.attr.mutability == Mutability::WriteOnly && r.attr.name == "password" && !r.is_extension()
}

/// Whether `r` (the attribute or its sub-attribute) is readOnly.
pub(crate) fn is_read_only(r: &ResolvedAttr) -> bool {
    r.attr.mutability == Mutability::ReadOnly
        || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
}

/// Runs `f` on the map holding `r`'s attribute: the resource itself for
/// core attributes, the extension object for extension attributes (created
/// if absent, removed again if left empty).
pub(crate) fn in_container<R>(
    attrs: &mut Map<String, Value>,
    r: &ResolvedAttr,
    f: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    if r.is_extension() {
        with_object(attrs, r.schema.id, f)
    } else {
        f(attrs)
    }
}

/// Runs `f` on the object under `key` (a fresh one if absent or not an
/// object), putting it back only if it is not empty.
pub(crate) fn with_object<R>(
    map: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    let mut inner = match map.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let r = f(&mut inner);
    if !inner.is_empty() {
        map.insert(key.to_string(), Value::Object(inner));
    }
    r
}

/// A short description of a JSON value's kind, for error details.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "a string",
        AttrType::Boolean => "a boolean",
        AttrType::Decimal => "a number",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "an RFC 3339 date-time string",
        AttrType::Binary => "a base64 string",
        AttrType::Reference => "a URI string",
        AttrType::Complex => "a JSON object",
    }
}

fn type_error(path: &str, ty: AttrType, got: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "{path} must be {}, got {}",
        expected(ty),
        kind(got)
    ))
}

/// Coerces the whole value of attribute `def` (an array for multi-valued
/// attributes). `Ok(None)` means unassigned.
pub(crate) fn coerce_attr(
    def: &AttributeDef,
    path: &str,
    v: &Value,
) -> Result<Option<Value>, ScimError> {
    if !def.multi_valued {
        if v.is_array() {
            return Err(ScimError::invalid_value(format!(
                "{path} is single-valued and must be {}, got an array",
                expected(def.ty)
            )));
        }
        return coerce_one(def, path, v);
    }
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(None),
        Value::Array(a) => a.iter().collect(),
        // RFC 7644 §3.5.2.1 lets a client give one value; we store arrays.
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(x) = coerce_one(def, path, item)? {
            out.push(x);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    check_primary(path, &out)?;
    Ok(Some(Value::Array(out)))
}

/// At most one `primary: true` per multi-valued attribute (RFC 7643 §2.4).
pub(crate) fn check_primary(path: &str, items: &[Value]) -> Result<(), ScimError> {
    if items.iter().filter(|i| is_primary(i)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of {path} may have primary set to true (RFC 7643 §2.4)"
        )));
    }
    Ok(())
}

/// Whether an element of a multi-valued attribute is `primary: true`.
pub(crate) fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

/// Coerces one value of `def`: the value of a single-valued attribute, or
/// one element of a multi-valued one. `Ok(None)` means unassigned.
pub(crate) fn coerce_one(
    def: &AttributeDef,
    path: &str,
    v: &Value,
) -> Result<Option<Value>, ScimError> {
    if def.ty != AttrType::Complex {
        return coerce_scalar(def, path, v);
    }
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, sv) in o {
                let Some(sub) = def.sub(k) else { continue };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(x) = coerce_scalar(sub, &format!("{path}.{}", sub.name), sv)? {
                    out.insert(sub.name.to_string(), x);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        // The enterprise `manager` as a bare id, as Entra sends it.
        Value::String(s) if is_bare_value_complex(def) && s.contains('\0') => Err(nul_error(path)),
        Value::String(s) if is_bare_value_complex(def) => {
            Ok((!s.is_empty()).then(|| json!({ "value": s })))
        }
        other => Err(type_error(path, AttrType::Complex, other)),
    }
}

/// A single-valued complex attribute with a `value` sub-attribute (the
/// enterprise `manager`), which also accepts a bare string as its value.
pub(crate) fn is_bare_value_complex(def: &AttributeDef) -> bool {
    def.ty == AttrType::Complex && !def.multi_valued && def.sub("value").is_some()
}

/// Coerces a simple (non-complex) value of `def`. `Ok(None)` for `null`.
pub(crate) fn coerce_scalar(
    def: &AttributeDef,
    path: &str,
    v: &Value,
) -> Result<Option<Value>, ScimError> {
    let ok = |v: Value| Ok(Some(v));
    match (def.ty, v) {
        (_, Value::Null) => Ok(None),
        (_, Value::String(s)) if s.contains('\0') => Err(nul_error(path)),
        (AttrType::String | AttrType::Reference, Value::String(s))
            if def.canonical_enforced && !crate::extensions::is_canonical(def, s) =>
        {
            Err(ScimError::invalid_value(format!(
                "{path} must be one of its canonicalValues {:?}, got {s:?}",
                def.canonical_values
            )))
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => {
            ok(v.clone())
        }
        (AttrType::DateTime, Value::String(s)) => match crate::datetime::normalize(s) {
            Some(d) => ok(Value::String(d)),
            None => Err(ScimError::invalid_value(format!(
                "{path} must be an RFC 3339 date-time, got {s:?}"
            ))),
        },
        (AttrType::Boolean, Value::Bool(_)) => ok(v.clone()),
        // Entra sends booleans as "True"/"False" strings.
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => {
            ok(Value::Bool(true))
        }
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => {
            ok(Value::Bool(false))
        }
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => ok(v.clone()),
        (AttrType::Decimal, Value::Number(_)) => ok(v.clone()),
        (AttrType::Complex, _) => coerce_one(def, path, v),
        (ty, other) => Err(type_error(path, ty, other)),
    }
}

/// The error for a string value that contains U+0000 (NUL). JSON may
/// carry it (`"\u0000"`), but no SCIM attribute needs it, and PostgreSQL
/// `text` cannot hold it: refusing it here, where every attribute value of
/// a POST, PUT or PATCH is checked, makes both backends answer the same.
pub(crate) fn nul_error(path: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "{path} contains the NUL character (U+0000), which attribute values may not contain; remove it"
    ))
}

/// The service-provider metadata of a resource (RFC 7643 §3.1 `meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `User` or `Group`.
    pub resource_type: &'static str,
    /// When the resource was created (RFC 3339).
    pub created: String,
    /// When the resource was last modified (RFC 3339).
    pub last_modified: String,
    /// The resource's URI.
    pub location: String,
    /// The resource's version, as its ETag (`W/"…"`).
    pub version: String,
}

/// Renders a stored resource for a response: `schemas` (the core URN, plus
/// each extension URN whose attributes are present, RFC 7643 §3), `id`,
/// the attributes and `meta` (RFC 7643 §3.1).
///
/// Key order is not preserved (serde_json sorts keys without its
/// `preserve_order` feature); JSON clients do not depend on it.
pub fn render(
    rt: &ResourceType,
    id: &str,
    attrs: &Map<String, Value>,
    meta: &Meta,
) -> Map<String, Value> {
    let mut schemas = vec![Value::from(rt.schema.id)];
    for e in rt.extensions {
        let present = attrs
            .get(e.schema.id)
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty());
        if present {
            schemas.push(Value::from(e.schema.id));
        }
    }
    // A custom extension's values rendered with a type that does not list
    // it (the change log's `data`, rendered by the store) still name it.
    for (k, v) in attrs {
        let listed = schemas.iter().any(|s| s.as_str() == Some(k.as_str()));
        if !listed
            && crate::extensions::is_custom(k)
            && v.as_object().is_some_and(|o| !o.is_empty())
        {
            schemas.push(Value::from(k.as_str()));
        }
    }
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::from(id));
    for (k, v) in attrs {
        if !["schemas", "id", "meta", "password"].contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": meta.resource_type,
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": meta.location,
            "version": meta.version,
        }),
    );
    out
}

/// Which attributes a response carries (RFC 7644 §3.4.2.5 `attributes`
/// and `excludedAttributes`, §3.9), on top of each attribute's `returned`
/// characteristic (RFC 7643 §2.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    mode: Mode,
}

#[derive(Debug, Clone, Default, PartialEq)]
enum Mode {
    /// Every attribute returned by default.
    #[default]
    Default,
    /// Only these (plus `returned: always`).
    Include(Vec<Selector>),
    /// All defaults but these (`returned: always` cannot be excluded).
    Exclude(Vec<Selector>),
}

/// One entry of `attributes` / `excludedAttributes`: an attribute path,
/// and, leniently, a value filter selecting which values of a multi-valued
/// attribute it covers (`emails[type eq "work"]`, `emails[type eq
/// "work"].value`; see docs/SCIM.md).
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    path: AttrPath,
    filter: Option<Filter>,
}

/// What a projection path selects on a given resource type.
enum Sel {
    /// A whole extension object (`attributes=urn:…:enterprise:2.0:User`).
    Extension(&'static Schema),
    /// An attribute or a sub-attribute.
    Attr(ResolvedAttr),
}

fn resolve_sel(rt: &ResourceType, p: &AttrPath) -> Option<Sel> {
    if p.sub_attr.is_none() {
        let full = match &p.urn {
            Some(u) => format!("{u}:{}", p.attr),
            None => p.attr.clone(),
        };
        if let Some(ext) = rt.extension(&full) {
            return Some(Sel::Extension(ext));
        }
    }
    rt.resolve_path(p).map(Sel::Attr)
}

fn parse_list(param: &str, input: Option<&str>) -> Result<Vec<Selector>, ScimError> {
    let mut out = Vec::new();
    for part in split_list(input.unwrap_or("")) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        // A bare schema URN selects a whole extension; the path grammar
        // would read its last segment as an attribute name.
        if let Some(s) = crate::schema::find_schema(part) {
            out.push(Selector {
                path: AttrPath::new(s.id),
                filter: None,
            });
            continue;
        }
        let invalid = |e: ScimError| ScimError::invalid_value(format!("{param}: {}", e.detail));
        let selector = if part.contains('[') {
            // RFC 7644 §3.4.2.5 takes attribute names only; the PATCH path
            // grammar (§3.5.2) adds the value filter that Microsoft's
            // SCIMReferenceCode tests send here.
            let p = crate::filter::parse_patch_path(part).map_err(invalid)?;
            Selector {
                path: AttrPath {
                    urn: p.urn,
                    attr: p.attr,
                    sub_attr: p.sub_attr,
                },
                filter: p.filter,
            }
        } else {
            Selector {
                path: crate::filter::parse_attr_path(part).map_err(invalid)?,
                filter: None,
            }
        };
        out.push(selector);
    }
    Ok(out)
}

/// Splits a comma-separated list at the commas outside value filters and
/// their quoted strings (`emails[value eq "a,b"],userName` is two entries).
fn split_list(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0);
    for (i, c) in input.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' if depth > 0 => in_string = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(input.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(input.get(start..).unwrap_or(""));
    parts
}

impl Projection {
    /// Parses the `attributes` and `excludedAttributes` parameters: each a
    /// comma-separated list of attribute paths (RFC 7644 §3.4.2.5).
    ///
    /// A malformed path is `invalidValue` naming the parameter (RFC 7644
    /// has no dedicated keyword for query parameters). Paths naming
    /// attributes the resource type does not have are ignored when the
    /// projection is applied, which is what Entra and Okta expect. The two
    /// parameters are mutually exclusive in the RFC; if both are given,
    /// `attributes` wins.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        let include = parse_list("attributes", attributes)?;
        let exclude = parse_list("excludedAttributes", excluded)?;
        let mode = if !include.is_empty() {
            Mode::Include(include)
        } else if !exclude.is_empty() {
            Mode::Exclude(exclude)
        } else {
            Mode::Default
        };
        Ok(Self { mode })
    }

    /// Whether the attribute named by `attr` (a written path: `members`,
    /// `emails.value`, `urn:…:enterprise:2.0:User:manager`) will appear,
    /// at least in part, in responses projected by `self`. The server uses
    /// this to skip loading `members` or `groups` no one will see.
    /// Unknown attributes are never included.
    pub fn includes(&self, rt: &ResourceType, attr: &str) -> bool {
        let Some(r) = rt.resolve_str(attr) else {
            return false;
        };
        let returned = stricter(r.target().returned, r.attr.returned);
        match returned {
            Returned::Always => return true,
            Returned::Never => return false,
            Returned::Default | Returned::Request => {}
        }
        match &self.mode {
            Mode::Default => returned == Returned::Default,
            Mode::Include(paths) => paths.iter().any(|p| match resolve_sel(rt, &p.path) {
                Some(Sel::Extension(s)) => std::ptr::eq(s, r.schema),
                // `emails` covers `emails.value`; `emails.value` makes
                // `emails` appear (in part); `emails.type` does not make
                // `emails.value` appear.
                Some(Sel::Attr(p)) => {
                    std::ptr::eq(p.attr, r.attr)
                        && (p.sub.is_none() || r.sub.is_none() || p.sub == r.sub)
                }
                None => false,
            }),
            // A value filter removes only some values: the attribute
            // still appears.
            Mode::Exclude(paths) => {
                returned == Returned::Default
                    && !paths.iter().filter(|p| p.filter.is_none()).any(|p| {
                        match resolve_sel(rt, &p.path) {
                            Some(Sel::Extension(s)) => std::ptr::eq(s, r.schema),
                            Some(Sel::Attr(p)) => {
                                std::ptr::eq(p.attr, r.attr) && (p.sub.is_none() || p.sub == r.sub)
                            }
                            None => false,
                        }
                    })
            }
        }
    }

    /// Whether a value filter (`members[type eq "User"]`) selects which
    /// values of `attr` appear: then [`Projection::apply`] must see all of
    /// them.
    pub fn filters_values_of(&self, rt: &ResourceType, attr: &str) -> bool {
        let Some(r) = rt.resolve_str(attr) else {
            return false;
        };
        let paths = match &self.mode {
            Mode::Default => return false,
            Mode::Include(paths) | Mode::Exclude(paths) => paths,
        };
        paths.iter().any(|p| {
            p.filter.is_some()
                && matches!(resolve_sel(rt, &p.path), Some(Sel::Attr(s)) if std::ptr::eq(s.attr, r.attr))
        })
    }

    /// The negation of [`Projection::includes`].
    pub fn excludes(&self, rt: &ResourceType, attr: &str) -> bool {
        !self.includes(rt, attr)
    }

    /// Applies the projection to a rendered resource (the output of
    /// [`render`], plus anything the server added such as `groups`).
    ///
    /// `id` and `schemas` are always kept (RFC 7643 §3.1, RFC 7644 §3.9:
    /// `returned: always` SHALL be returned even if excluded), `returned:
    /// never` (`password`) is always dropped, and `returned: request` is
    /// kept only when asked for. `meta` is `returned: default`, so
    /// `attributes=userName` leaves it out.
    pub fn apply(&self, rt: &ResourceType, resource: &mut Map<String, Value>) {
        match &self.mode {
            Mode::Default => strip_unrequested(rt, resource),
            Mode::Exclude(paths) => {
                strip_unrequested(rt, resource);
                for p in paths {
                    match resolve_sel(rt, &p.path) {
                        Some(Sel::Extension(s)) => {
                            resource.remove(s.id);
                        }
                        Some(Sel::Attr(r)) => exclude(resource, &r, p.filter.as_ref()),
                        None => {}
                    }
                }
            }
            Mode::Include(paths) => {
                let mut out = Map::new();
                for key in ["schemas", "id"] {
                    if let Some(v) = resource.get(key) {
                        out.insert(key.to_string(), v.clone());
                    }
                }
                // Other `returned: always` attributes (none beyond `id`
                // today, but the schema decides).
                for schema in rt.schemas() {
                    for a in crate::schema::COMMON_ATTRIBUTES
                        .iter()
                        .chain(schema.attributes)
                        .filter(|a| a.returned == Returned::Always)
                    {
                        if let Some(r) = rt.resolve(Some(schema.id), a.name, None) {
                            include(resource, &mut out, &r, None, None);
                        }
                    }
                }
                // Whole attributes first, so that `emails,emails.value`
                // keeps all of `emails`.
                let mut whole: Vec<(ResolvedAttr, Option<&Filter>)> = Vec::new();
                let mut subs: Vec<(ResolvedAttr, Option<&Filter>)> = Vec::new();
                for p in paths {
                    match resolve_sel(rt, &p.path) {
                        Some(Sel::Extension(s)) => {
                            for a in s.attributes {
                                if let Some(r) = rt.resolve(Some(s.id), a.name, None) {
                                    whole.push((r, None));
                                }
                            }
                        }
                        Some(Sel::Attr(r)) if r.sub.is_none() => whole.push((r, p.filter.as_ref())),
                        Some(Sel::Attr(r)) => subs.push((r, p.filter.as_ref())),
                        None => {}
                    }
                }
                for (r, filter) in &whole {
                    include(resource, &mut out, r, None, *filter);
                }
                for (r, filter) in subs {
                    if whole
                        .iter()
                        .any(|(w, f)| f.is_none() && std::ptr::eq(w.attr, r.attr))
                    {
                        continue;
                    }
                    include(resource, &mut out, &r, r.sub, filter);
                }
                drop_empty_elements(&mut out);
                *resource = out;
            }
        }
    }
}

/// The more restrictive of two `returned` settings, for a sub-attribute
/// inside its attribute.
fn stricter(a: Returned, b: Returned) -> Returned {
    fn rank(r: Returned) -> u8 {
        match r {
            Returned::Always => 0,
            Returned::Default => 1,
            Returned::Request => 2,
            Returned::Never => 3,
        }
    }
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// Drops the `{}` placeholders that sub-attribute picks leave in arrays.
fn drop_empty_elements(map: &mut Map<String, Value>) {
    for v in map.values_mut() {
        match v {
            Value::Array(items) => items.retain(|i| !i.as_object().is_some_and(Map::is_empty)),
            Value::Object(o) => drop_empty_elements(o),
            _ => {}
        }
    }
    map.retain(|_, v| match v {
        Value::Array(a) => !a.is_empty(),
        _ => true,
    });
}

/// Finds a key case-insensitively (resources are canonical, but the
/// server may add keys of its own).
fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The map holding `r`'s attribute in `resource`, if present.
fn container<'a>(
    resource: &'a Map<String, Value>,
    r: &ResolvedAttr,
) -> Option<&'a Map<String, Value>> {
    if r.is_extension() {
        let key = key_ci(resource, r.schema.id)?;
        resource.get(&key).and_then(Value::as_object)
    } else {
        Some(resource)
    }
}

/// Copies `r`'s attribute (or only `sub` of it, merging with subs already
/// copied) from `resource` into `out`; with a `filter`, only the values it
/// selects (the others become `{}` placeholders, so that picks of the same
/// array stay aligned, and are dropped by [`drop_empty_elements`]).
fn include(
    resource: &Map<String, Value>,
    out: &mut Map<String, Value>,
    r: &ResolvedAttr,
    sub: Option<&AttributeDef>,
    filter: Option<&Filter>,
) {
    if r.attr.returned == Returned::Never || sub.is_some_and(|s| s.returned == Returned::Never) {
        return;
    }
    let Some(src) = container(resource, r) else {
        return;
    };
    let Some(key) = key_ci(src, r.attr.name) else {
        return;
    };
    let Some(value) = src.get(&key) else { return };
    let selected;
    let value = match filter {
        None => value,
        Some(f) => match value {
            Value::Array(items) => {
                selected = Value::Array(
                    items
                        .iter()
                        .map(|v| {
                            if selects(r.attr, f, v) {
                                v.clone()
                            } else {
                                Value::Object(Map::new())
                            }
                        })
                        .collect(),
                );
                &selected
            }
            single if selects(r.attr, f, single) => single,
            _ => return,
        },
    };
    let picked = match sub {
        None => Some(strip_value(r.attr, value.clone())),
        Some(sub) => pick_sub(value, sub.name),
    };
    let Some(picked) = picked else { return };
    let merge = |dst: &mut Map<String, Value>| match (dst.get_mut(&key), picked) {
        (Some(Value::Object(have)), Value::Object(add)) => have.extend(add),
        (Some(Value::Array(have)), Value::Array(add)) if have.len() == add.len() => {
            for (h, a) in have.iter_mut().zip(add) {
                if let (Value::Object(h), Value::Object(a)) = (h, a) {
                    h.extend(a);
                }
            }
        }
        (_, picked) => {
            dst.insert(key.clone(), picked);
        }
    };
    if r.is_extension() {
        let ext_key = key_ci(resource, r.schema.id).unwrap_or_else(|| r.schema.id.to_string());
        with_object(out, &ext_key, merge);
    } else {
        merge(out);
    }
}

/// Only `sub` of a complex value, or of each element of an array (keeping
/// positions, so that several picks of the same array line up).
fn pick_sub(value: &Value, sub: &str) -> Option<Value> {
    let pick = |v: &Value| -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(o) = v.as_object() {
            if let Some(k) = key_ci(o, sub) {
                if let Some(x) = o.get(&k) {
                    m.insert(k, x.clone());
                }
            }
        }
        m
    };
    match value {
        Value::Object(_) => {
            let m = pick(value);
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(items) => {
            let picked: Vec<Map<String, Value>> = items.iter().map(pick).collect();
            if picked.iter().all(Map::is_empty) {
                None
            } else {
                Some(Value::Array(
                    picked.into_iter().map(Value::Object).collect(),
                ))
            }
        }
        _ => None,
    }
}

/// Drops sub-attributes that are `returned: never` or `request` from a
/// complex value.
fn strip_value(def: &AttributeDef, mut value: Value) -> Value {
    let hidden: Vec<&str> = def
        .sub_attributes
        .iter()
        .filter(|s| matches!(s.returned, Returned::Never | Returned::Request))
        .map(|s| s.name)
        .collect();
    if hidden.is_empty() {
        return value;
    }
    let strip = |v: &mut Value| {
        if let Some(o) = v.as_object_mut() {
            o.retain(|k, _| !hidden.iter().any(|h| h.eq_ignore_ascii_case(k)));
        }
    };
    match &mut value {
        Value::Array(items) => items.iter_mut().for_each(strip),
        other => strip(other),
    }
    value
}

/// Removes everything not returned by default: `returned: never` and
/// `returned: request` attributes and sub-attributes.
fn strip_unrequested(rt: &ResourceType, resource: &mut Map<String, Value>) {
    let hidden = |returned: Returned| matches!(returned, Returned::Never | Returned::Request);
    for schema in rt.schemas() {
        for a in crate::schema::COMMON_ATTRIBUTES
            .iter()
            .chain(schema.attributes)
        {
            // Most attributes hide nothing: resolve only those that do.
            if !hidden(a.returned) && !a.sub_attributes.iter().any(|s| hidden(s.returned)) {
                continue;
            }
            let Some(r) = rt.resolve(Some(schema.id), a.name, None) else {
                continue;
            };
            if hidden(a.returned) {
                exclude(resource, &r, None);
                continue;
            }
            for s in a.sub_attributes {
                if hidden(s.returned) {
                    exclude(resource, &ResolvedAttr { sub: Some(s), ..r }, None);
                }
            }
        }
    }
}

/// Whether value filter `filter` (its paths naming sub-attributes of
/// `attr`) selects `value`, one value of `attr`.
fn selects(attr: &AttributeDef, filter: &Filter, value: &Value) -> bool {
    let case_exact = |p: &AttrPath| attr.sub(&p.attr).map_or(attr.case_exact, |s| s.case_exact);
    crate::filter::matches(filter, value, &case_exact)
}

/// Removes `r` (an attribute, or a sub-attribute in each of its values)
/// unless it is `returned: always`. Values left empty are removed. With a
/// `filter`, only from the values it selects.
fn exclude(resource: &mut Map<String, Value>, r: &ResolvedAttr, filter: Option<&Filter>) {
    if r.attr.returned == Returned::Always || r.sub.is_some_and(|s| s.returned == Returned::Always)
    {
        return;
    }
    let remove = |m: &mut Map<String, Value>| {
        let Some(key) = key_ci(m, r.attr.name) else {
            return;
        };
        let chosen = |v: &Value| filter.is_none_or(|f| selects(r.attr, f, v));
        let Some(sub) = r.sub else {
            match m.get_mut(&key) {
                Some(Value::Array(items)) if filter.is_some() => {
                    items.retain(|v| !chosen(v));
                    if items.is_empty() {
                        m.remove(&key);
                    }
                }
                Some(v) if !chosen(v) => {}
                _ => {
                    m.remove(&key);
                }
            }
            return;
        };
        let drop_sub = |v: &mut Value| {
            if !chosen(v) {
                return;
            }
            if let Some(o) = v.as_object_mut() {
                if let Some(k) = key_ci(o, sub.name) {
                    o.remove(&k);
                }
            }
        };
        let empty = match m.get_mut(&key) {
            Some(Value::Array(items)) => {
                items.iter_mut().for_each(drop_sub);
                items.retain(|i| !i.as_object().is_some_and(Map::is_empty));
                items.is_empty()
            }
            Some(v) => {
                drop_sub(v);
                v.as_object().is_some_and(Map::is_empty)
            }
            None => false,
        };
        if empty {
            m.remove(&key);
        }
    };
    if r.is_extension() {
        if let Some(ext_key) = key_ci(resource, r.schema.id) {
            with_object(resource, &ext_key, remove);
        }
    } else {
        remove(resource);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP, USER, USER_SCHEMA};
    use crate::ScimType;

    const EXT: &str = ENTERPRISE_USER_SCHEMA;

    fn norm(v: Value) -> Result<Normalized, ScimError> {
        normalize(&USER, &v)
    }

    fn attrs(v: Value) -> Value {
        Value::Object(norm(v).unwrap().attrs)
    }

    #[test]
    fn normalizes_bodies() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "case-folded keys, schemas/id/meta dropped",
                json!({"schemas": [USER_SCHEMA], "id": "x", "meta": {"version": "1"},
                       "USERNAME": "bjensen", "Name": {"GivenName": "Barbara", "FAMILYNAME": "Jensen"},
                       "Emails": [{"VALUE": "b@example.com", "Type": "work", "Primary": true}]}),
                json!({"userName": "bjensen", "name": {"givenName": "Barbara", "familyName": "Jensen"},
                       "emails": [{"value": "b@example.com", "type": "work", "primary": true}]}),
            ),
            (
                "extension nested and URN-qualified",
                json!({"userName": "u",
                       EXT: {"Department": "Sales", "manager": {"value": "m1", "displayName": "ignored"}},
                       format!("{EXT}:costCenter"): "42",
                       format!("{}:employeeNumber", EXT.to_uppercase()): "7"}),
                json!({"userName": "u", EXT: {"department": "Sales", "manager": {"value": "m1"},
                       "costCenter": "42", "employeeNumber": "7"}}),
            ),
            (
                "core URN-qualified key",
                json!({format!("{USER_SCHEMA}:userName"): "u", "displayName": "D"}),
                json!({"userName": "u", "displayName": "D"}),
            ),
            (
                "Entra boolean strings",
                json!({"userName": "u", "active": "False", "emails": [{"value": "a", "primary": "TRUE"}]}),
                json!({"userName": "u", "active": false, "emails": [{"value": "a", "primary": true}]}),
            ),
            (
                "nulls, unknown and readOnly dropped, empties removed",
                json!({"userName": "u", "nickName": null, "name": {"givenName": null}, "emails": [null],
                       "groups": [{"value": "g"}], "unknownAttr": 1, "urn:example:other:attr": "x",
                       EXT: {"department": null}, "externalId": "ext-1"}),
                json!({"userName": "u", "externalId": "ext-1"}),
            ),
            (
                "single value wrapped, manager bare string",
                json!({"userName": "u", "emails": {"value": "a@b"}, EXT: {"manager": "2819c223"}}),
                json!({"userName": "u", "emails": [{"value": "a@b"}], EXT: {"manager": {"value": "2819c223"}}}),
            ),
            (
                "custom canonical values accepted",
                json!({"userName": "u", "phoneNumbers": [{"value": "1", "type": "custom"}]}),
                json!({"userName": "u", "phoneNumbers": [{"value": "1", "type": "custom"}]}),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(attrs(input), want, "{name}");
        }
    }

    #[test]
    fn extracts_password() {
        let n = norm(json!({"userName": "u", "Password": "s3cret"})).unwrap();
        assert_eq!(n.password.as_deref(), Some("s3cret"));
        assert_eq!(Value::Object(n.attrs), json!({"userName": "u"}));
        let n = norm(json!({"userName": "u"})).unwrap();
        assert_eq!(n.password, None);
        let e = norm(json!({"userName": "u", "password": 5})).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
    }

    #[test]
    fn rejects_bad_bodies() {
        let cases: Vec<(Value, ScimType, &str)> = vec![
            (json!([1]), ScimType::InvalidSyntax, "JSON object"),
            (json!("x"), ScimType::InvalidSyntax, "JSON object"),
            (json!({}), ScimType::InvalidValue, "userName is required"),
            (json!({"userName": "  "}), ScimType::InvalidValue, "userName is required"),
            (json!({"userName": null}), ScimType::InvalidValue, "userName is required"),
            (json!({"userName": 5}), ScimType::InvalidValue, "userName must be a string, got a number"),
            (json!({"userName": "u", "active": "yes"}), ScimType::InvalidValue, "active must be a boolean"),
            (json!({"userName": "u", "active": 1}), ScimType::InvalidValue, "active must be a boolean"),
            (json!({"userName": "u", "name": "Barbara"}), ScimType::InvalidValue, "name must be a JSON object"),
            (json!({"userName": "u", "name": {"givenName": 1}}), ScimType::InvalidValue, "name.givenName must be a string"),
            (json!({"userName": ["a"]}), ScimType::InvalidValue, "userName is single-valued"),
            (json!({"userName": "u", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
             ScimType::InvalidValue, "at most one value of emails"),
            (json!({"userName": "u", "emails": [1]}), ScimType::InvalidValue, "emails must be a JSON object"),
            (json!({"userName": "u", EXT: "x"}), ScimType::InvalidValue, EXT),
            (json!({"userName": "u", EXT: {"department": 3}}), ScimType::InvalidValue,
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department must be a string"),
            (json!({"userName": "u", EXT: {"manager": 3}}), ScimType::InvalidValue, "manager must be a JSON object"),
            // U+0000 is refused wherever a string value goes, naming the attribute.
            (json!({"userName": "a\u{0}b"}), ScimType::InvalidValue, "userName contains the NUL character"),
            (json!({"userName": "u", "emails": [{"value": "x\u{0}"}]}), ScimType::InvalidValue,
             "emails.value contains the NUL character"),
            (json!({"userName": "u", "active": "true\u{0}"}), ScimType::InvalidValue,
             "active contains the NUL character"),
            (json!({"userName": "u", EXT: {"manager": "\u{0}"}}), ScimType::InvalidValue,
             "manager contains the NUL character"),
            (json!({"userName": "u", "password": "\u{0}"}), ScimType::InvalidValue,
             "password contains the NUL character"),
        ];
        for (input, ty, detail) in cases {
            let e = norm(input.clone()).unwrap_err();
            assert_eq!(e.scim_type, ty, "{input}");
            assert!(e.detail.contains(detail), "{input}: {}", e.detail);
        }
    }

    #[test]
    fn normalizes_groups() {
        let n = normalize(
            &GROUP,
            &json!({"DisplayName": "Admins", "members": [{"value": "u1", "display": "Babs", "$ref": "https://x/Users/u1", "type": "User"}]}),
        )
        .unwrap();
        // members.display is readOnly: the server fills it in from the member.
        assert_eq!(
            Value::Object(n.attrs),
            json!({"displayName": "Admins", "members": [{"value": "u1", "$ref": "https://x/Users/u1", "type": "User"}]})
        );
        let e = normalize(&GROUP, &json!({"members": []})).unwrap_err();
        assert_eq!(e.detail, "displayName is required");
    }

    #[test]
    fn datetimes_must_parse() {
        let def = AttributeDef {
            name: "when",
            ty: AttrType::DateTime,
            multi_valued: false,
            description: "",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: crate::schema::Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            max_values: None,
            canonical_enforced: false,
        };
        assert_eq!(
            coerce_attr(&def, "when", &json!("2011-05-13T04:42:34Z")).unwrap(),
            Some(json!("2011-05-13T04:42:34.000000Z"))
        );
        let e = coerce_attr(&def, "when", &json!("yesterday")).unwrap_err();
        assert!(e.detail.contains("RFC 3339"));
    }

    fn meta() -> Meta {
        Meta {
            resource_type: "User",
            created: "2026-01-01T00:00:00.000000Z".into(),
            last_modified: "2026-01-02T00:00:00.000000Z".into(),
            location: "https://example.com/v2/Users/1".into(),
            version: "W/\"1\"".into(),
        }
    }

    fn full_user() -> Map<String, Value> {
        norm(json!({
            "userName": "bjensen", "externalId": "e1", "displayName": "Babs",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "b@home", "type": "home"}],
            EXT: {"department": "Sales", "manager": {"value": "m1"}},
        }))
        .unwrap()
        .attrs
    }

    #[test]
    fn renders_schemas_id_and_meta() {
        let out = render(&USER, "1", &full_user(), &meta());
        assert_eq!(out["schemas"], json!([USER_SCHEMA, EXT]));
        assert_eq!(out["id"], "1");
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(
            out["meta"],
            json!({"resourceType": "User", "created": "2026-01-01T00:00:00.000000Z",
                   "lastModified": "2026-01-02T00:00:00.000000Z",
                   "location": "https://example.com/v2/Users/1", "version": "W/\"1\""})
        );
        let plain = norm(json!({"userName": "u"})).unwrap().attrs;
        let out = render(&USER, "2", &plain, &meta());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        assert_eq!(out.len(), 4);
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut out = render(&USER, "1", &full_user(), &meta());
        // A stray password must never come out (returned: never).
        out.insert("password".into(), json!("leak"));
        Projection::parse(attributes, excluded)
            .unwrap()
            .apply(&USER, &mut out);
        Value::Object(out)
    }

    #[test]
    fn projects_attributes() {
        let schemas = json!([USER_SCHEMA, EXT]);
        let manager_and_meta = format!("{EXT}:manager.value,meta.version,password");
        let cases: Vec<(Option<&str>, Option<&str>, Value)> = vec![
            (
                Some("userName"),
                None,
                json!({"schemas": schemas, "id": "1", "userName": "bjensen"}),
            ),
            (
                Some("USERNAME, emails.value ,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                None,
                json!({"schemas": schemas, "id": "1", "userName": "bjensen",
                       "emails": [{"value": "b@example.com"}, {"value": "b@home"}],
                       EXT: {"department": "Sales"}}),
            ),
            (
                Some("emails.value,emails.type,name.givenName,id,nope,urn:x:y"),
                None,
                json!({"schemas": schemas, "id": "1",
                       "emails": [{"value": "b@example.com", "type": "work"}, {"value": "b@home", "type": "home"}],
                       "name": {"givenName": "Barbara"}}),
            ),
            (
                Some("emails,emails.value"),
                None,
                json!({"schemas": schemas, "id": "1",
                       "emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "b@home", "type": "home"}]}),
            ),
            (
                Some(EXT),
                None,
                json!({"schemas": schemas, "id": "1", EXT: {"department": "Sales", "manager": {"value": "m1"}}}),
            ),
            (
                Some(manager_and_meta.as_str()),
                None,
                json!({"schemas": schemas, "id": "1", EXT: {"manager": {"value": "m1"}}, "meta": {"version": "W/\"1\""}}),
            ),
            (
                Some("userName"),
                Some("userName"),
                json!({"schemas": schemas, "id": "1", "userName": "bjensen"}),
            ),
        ];
        for (a, e, want) in cases {
            assert_eq!(project(a, e), want, "attributes={a:?} excluded={e:?}");
        }
    }

    #[test]
    fn projects_excluded_attributes() {
        let out = project(
            None,
            Some("emails,id,schemas,name.familyName,meta,externalId"),
        );
        assert_eq!(
            out,
            json!({"schemas": [USER_SCHEMA, EXT], "id": "1", "userName": "bjensen", "displayName": "Babs",
                   "name": {"givenName": "Barbara"}, EXT: {"department": "Sales", "manager": {"value": "m1"}}})
        );
        let out = project(
            None,
            Some(&format!("{EXT}:department,{EXT}:manager.value,emails.type")),
        );
        assert!(out.get(EXT).is_none(), "{out}");
        assert_eq!(
            out["emails"],
            json!([{"value": "b@example.com", "primary": true}, {"value": "b@home"}])
        );
        assert!(out.get("password").is_none());
        let out = project(None, Some(EXT));
        assert!(out.get(EXT).is_none());
        // Default: everything but returned-never.
        let out = project(None, None);
        assert!(out.get("password").is_none());
        assert!(out.get("meta").is_some());
        assert_eq!(out[EXT]["department"], "Sales");
    }

    /// A value filter in `attributes` / `excludedAttributes` selects which
    /// values of a multi-valued attribute it covers (docs/SCIM.md,
    /// "Leniency").
    #[test]
    fn projects_filtered_values() {
        let schemas = json!([USER_SCHEMA, EXT]);
        let work = json!({"value": "b@example.com", "type": "work", "primary": true});
        let home = json!({"value": "b@home", "type": "home"});
        let cases: Vec<(Option<&str>, Option<&str>, Value)> = vec![
            (
                Some(r#"emails[type eq "work"]"#),
                None,
                json!({"schemas": schemas, "id": "1", "emails": [work]}),
            ),
            // Unquoted, case-insensitive, with other paths.
            (
                Some("userName,EMAILS[TYPE eq HOME]"),
                None,
                json!({"schemas": schemas, "id": "1", "userName": "bjensen", "emails": [home]}),
            ),
            (
                Some(r#"emails[type eq "work"].value"#),
                None,
                json!({"schemas": schemas, "id": "1", "emails": [{"value": "b@example.com"}]}),
            ),
            // Two filters are a union; the whole attribute wins.
            (
                Some(r#"emails[type eq "home"],emails[primary eq true]"#),
                None,
                json!({"schemas": schemas, "id": "1", "emails": [work, home]}),
            ),
            (
                Some(r#"emails[type eq "home"],emails.type"#),
                None,
                json!({"schemas": schemas, "id": "1", "emails": [{"type": "work"}, home]}),
            ),
            (
                Some(r#"emails[type eq "home"],emails"#),
                None,
                json!({"schemas": schemas, "id": "1", "emails": [work, home]}),
            ),
            // A comma inside the filter's string does not split the list.
            (
                Some(r#"emails[value eq "x,y" or type eq "work"],displayName"#),
                None,
                json!({"schemas": schemas, "id": "1", "displayName": "Babs", "emails": [work]}),
            ),
            // Nothing selected: the attribute is left out.
            (
                Some(r#"emails[type eq "other"],userName"#),
                None,
                json!({"schemas": schemas, "id": "1", "userName": "bjensen"}),
            ),
            // A single-valued complex attribute is kept when it matches.
            (
                Some(r#"name[givenName sw "Bar"]"#),
                None,
                json!({"schemas": schemas, "id": "1", "name": {"givenName": "Barbara", "familyName": "Jensen"}}),
            ),
            (
                Some(r#"name[givenName sw "X"],userName"#),
                None,
                json!({"schemas": schemas, "id": "1", "userName": "bjensen"}),
            ),
        ];
        for (a, e, want) in cases {
            assert_eq!(project(a, e), want, "attributes={a:?} excluded={e:?}");
        }
        let out = project(None, Some(r#"emails[type eq "work"]"#));
        assert_eq!(out["emails"], json!([home]));
        assert_eq!(out["userName"], "bjensen");
        let out = project(
            None,
            Some(r#"emails[type eq "work"].value,emails[type eq "home"].type"#),
        );
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "primary": true}, {"value": "b@home"}])
        );
        let out = project(None, Some("emails[type pr]"));
        assert!(out.get("emails").is_none(), "{out}");
        let e = Projection::parse(Some(r#"emails[type eq "work""#), None).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
        assert!(e.detail.starts_with("attributes: "), "{}", e.detail);
        assert!(e.detail.contains("missing \"]\""), "{}", e.detail);
        let e = Projection::parse(None, Some("emails[type xx 1]")).unwrap_err();
        assert!(e.detail.starts_with("excludedAttributes: "), "{}", e.detail);
        let p = Projection::parse(Some(r#"members[type eq "User"].value"#), None).unwrap();
        assert!(p.includes(&GROUP, "members"));
        assert!(p.filters_values_of(&GROUP, "members"));
        assert!(!p.filters_values_of(&GROUP, "displayName"));
        let p = Projection::parse(None, Some(r#"members[type eq "User"]"#)).unwrap();
        assert!(p.includes(&GROUP, "members"));
        assert!(p.filters_values_of(&GROUP, "members"));
        assert!(!Projection::parse(None, Some("members"))
            .unwrap()
            .filters_values_of(&GROUP, "members"));
    }

    #[test]
    fn projection_parse_errors_and_includes() {
        let e = Projection::parse(Some("userName,emails[type"), None).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
        assert!(e.detail.starts_with("attributes: "), "{}", e.detail);
        let e = Projection::parse(None, Some("a b")).unwrap_err();
        assert!(e.detail.starts_with("excludedAttributes: "), "{}", e.detail);
        assert_eq!(
            Projection::parse(Some(" , "), Some("")).unwrap(),
            Projection::default()
        );

        let p = Projection::parse(None, Some("members")).unwrap();
        assert!(p.excludes(&GROUP, "members"));
        assert!(p.includes(&GROUP, "displayName"));
        assert!(p.includes(&GROUP, "id"));
        let p = Projection::parse(Some("displayName"), None).unwrap();
        assert!(p.excludes(&GROUP, "members"));
        assert!(p.includes(&GROUP, "id"));
        let p = Projection::parse(Some("members.value"), None).unwrap();
        assert!(p.includes(&GROUP, "members"));
        assert!(p.includes(&GROUP, "members.value"));
        assert!(!p.includes(&GROUP, "members.type"));
        let p = Projection::default();
        assert!(p.includes(&USER, "groups"));
        assert!(!p.includes(&USER, "password"));
        assert!(!p.includes(&USER, "nope"));
        let p = Projection::parse(Some(EXT), None).unwrap();
        assert!(p.includes(&USER, &format!("{EXT}:manager")));
        assert!(!p.includes(&USER, "groups"));
        let p = Projection::parse(None, Some("emails.value")).unwrap();
        assert!(p.includes(&USER, "emails"));
        assert!(p.excludes(&USER, "emails.value"));
    }
}
