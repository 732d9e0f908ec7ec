//! Custom schema extensions of the User resource type, defined at run time
//! by an administrator (RFC 7643 §3.3 and §7): Entra ID maps custom
//! attributes into `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`.
//!
//! A definition ([`ExtensionDef`]) is the RFC 7643 §7 representation of a
//! schema, restricted to what scimd stores and indexes: attributes of the
//! types string, boolean, decimal, integer, dateTime, reference and complex,
//! with sub-attributes one level deep. [`ExtensionDef::validate`] checks a
//! definition before it is stored; [`UserSchemas::build`] turns the stored
//! definitions into the User resource type every other module of this
//! crate works with (normalisation, PATCH, projection, filter resolution),
//! so an extension attribute is validated, stored and returned exactly as
//! the Enterprise User extension's are, plus its canonical values, which
//! are enforced ([`crate::schema::AttributeDef::canonical_enforced`]).
//!
//! The schema descriptions of [`crate::schema`] are `&'static` data. A
//! built set of definitions is therefore leaked (a few KiB per set): one
//! set is built per change of the definitions, which only administrators
//! make, so the memory held grows with the number of such changes made
//! while the process runs, never with requests.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::{
    AttrType, AttributeDef, Mutability, ResourceType, Returned, Schema, SchemaExtension,
    Uniqueness, ENTERPRISE_USER, MAX_VALUES, USER, USER_CORE,
};
use crate::ScimError;

/// What every custom extension URN starts with (RFC 7643 §3.3, §10.2.2).
pub const URN_PREFIX: &str = "urn:ietf:params:scim:schemas:extension:";
/// What every custom extension URN ends with: extensions of the User.
pub const URN_SUFFIX: &str = ":2.0:User";
/// The most extensions that may be defined.
pub const MAX_EXTENSIONS: usize = 20;
/// The most top-level attributes one extension may define.
pub const MAX_ATTRIBUTES: usize = 50;
/// The most sub-attributes one complex attribute may define.
pub const MAX_SUB_ATTRIBUTES: usize = 20;
/// The most canonical values one attribute may list.
pub const MAX_CANONICAL_VALUES: usize = 100;
/// The longest attribute name, extension name or canonical value.
pub const MAX_NAME_LEN: usize = 64;
/// The longest description.
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// One custom extension: its URN (`id`, RFC 7643 §7) and its attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionDef {
    /// The schema URN,
    /// `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`.
    pub id: String,
    /// A human-readable description.
    #[serde(default)]
    pub description: String,
    /// The top-level attributes.
    pub attributes: Vec<ExtensionAttr>,
}

/// One attribute of a custom extension, with the characteristics of
/// RFC 7643 §7 (their keywords as written there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionAttr {
    /// The attribute name (RFC 7643 §2.1 `ATTRNAME`).
    pub name: String,
    /// `string`, `boolean`, `decimal`, `integer`, `dateTime`, `reference`
    /// or `complex`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the value is an array.
    #[serde(default)]
    pub multi_valued: bool,
    /// A human-readable description.
    #[serde(default)]
    pub description: String,
    /// Whether every User must carry a value.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// `readWrite` (default), `readOnly` or `immutable` (`writeOnly` is
    /// refused).
    #[serde(default = "read_write")]
    pub mutability: String,
    /// `default` (default), `always` or `request` (`never` is refused).
    #[serde(default = "returned_default")]
    pub returned: String,
    /// `none` (default), `server` or `global` (enforced, the same for
    /// scimd: a value belongs to at most one live User).
    #[serde(default = "uniqueness_none")]
    pub uniqueness: String,
    /// The only values a string or reference attribute accepts, when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// For `complex`: the sub-attributes (themselves not complex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<ExtensionAttr>,
}

fn read_write() -> String {
    "readWrite".into()
}
fn returned_default() -> String {
    "default".into()
}
fn uniqueness_none() -> String {
    "none".into()
}

fn parse_type(s: &str) -> Option<AttrType> {
    Some(match s {
        "string" => AttrType::String,
        "boolean" => AttrType::Boolean,
        "decimal" => AttrType::Decimal,
        "integer" => AttrType::Integer,
        "dateTime" => AttrType::DateTime,
        "reference" => AttrType::Reference,
        "complex" => AttrType::Complex,
        _ => return None,
    })
}

fn parse_mutability(s: &str) -> Option<Mutability> {
    Some(match s {
        "readWrite" => Mutability::ReadWrite,
        "readOnly" => Mutability::ReadOnly,
        "immutable" => Mutability::Immutable,
        "writeOnly" => Mutability::WriteOnly,
        _ => return None,
    })
}

fn parse_returned(s: &str) -> Option<Returned> {
    Some(match s {
        "default" => Returned::Default,
        "always" => Returned::Always,
        "never" => Returned::Never,
        "request" => Returned::Request,
        _ => return None,
    })
}

fn parse_uniqueness(s: &str) -> Option<Uniqueness> {
    Some(match s {
        "none" => Uniqueness::None,
        "server" => Uniqueness::Server,
        "global" => Uniqueness::Global,
        _ => return None,
    })
}

/// Whether `s` is an RFC 7643 §2.1 `ATTRNAME`: `ALPHA *(nameChar)`, with
/// `nameChar = "-" / "_" / DIGIT / ALPHA`.
fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` is one of `def`'s canonical values (compared as the
/// attribute's `caseExact` says). Always true when it lists none.
pub fn is_canonical(def: &AttributeDef, s: &str) -> bool {
    def.canonical_values.is_empty()
        || def.canonical_values.iter().any(|c| {
            if def.case_exact {
                *c == s
            } else {
                c.eq_ignore_ascii_case(s)
            }
        })
}

fn bad(detail: String) -> ScimError {
    ScimError::invalid_value(detail)
}

impl ExtensionDef {
    /// Reads a definition from its JSON form, naming the field that does
    /// not fit (`invalidSyntax`).
    pub fn from_json(v: &Value) -> Result<Self, ScimError> {
        serde_json::from_value(v.clone())
            .map_err(|e| ScimError::invalid_syntax(format!("the extension definition: {e}")))
    }

    /// The `<Name>` of the URN.
    pub fn name(&self) -> &str {
        self.id
            .get(URN_PREFIX.len()..self.id.len().saturating_sub(URN_SUFFIX.len()))
            .unwrap_or("")
    }

    /// Checks the definition (`invalidValue` naming what to fix): the URN
    /// form, a name unused by `others` and by the built-in schemas, and
    /// each attribute's name, type and characteristics.
    pub fn validate(&self, others: &[ExtensionDef]) -> Result<(), ScimError> {
        check_urn(&self.id)?;
        if crate::schema::find_schema(&self.id).is_some()
            || others.iter().any(|o| o.id.eq_ignore_ascii_case(&self.id))
        {
            return Err(ScimError::new(
                crate::ScimType::Uniqueness,
                format!("the schema {} already exists", self.id),
            ));
        }
        if others.len() >= MAX_EXTENSIONS {
            return Err(bad(format!(
                "at most {MAX_EXTENSIONS} extensions may be defined; remove one first"
            )));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(bad(format!(
                "description is longer than {MAX_DESCRIPTION_LEN} bytes"
            )));
        }
        if self.attributes.is_empty() {
            return Err(bad("attributes must list at least one attribute".into()));
        }
        check_attrs(&self.attributes, "attributes", MAX_ATTRIBUTES, true)
    }
}

/// Checks a custom extension URN (RFC 7643 §3.3): the prefix and suffix in
/// their exact case, and a name of letters, digits, `-` and `_`.
pub fn check_urn(urn: &str) -> Result<(), ScimError> {
    let form = format!("{URN_PREFIX}<Name>{URN_SUFFIX}");
    let name = urn
        .strip_prefix(URN_PREFIX)
        .and_then(|r| r.strip_suffix(URN_SUFFIX))
        .ok_or_else(|| bad(format!("id must have the form {form}, got {urn:?}")))?;
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(format!(
            "the <Name> of {form} must be 1 to {MAX_NAME_LEN} letters, digits, '-' or '_', got {name:?}"
        )));
    }
    if name.eq_ignore_ascii_case("enterprise") {
        return Err(bad(
            "the enterprise User extension (RFC 7643 §4.3) is built in".into(),
        ));
    }
    Ok(())
}

fn check_attrs(attrs: &[ExtensionAttr], at: &str, max: usize, top: bool) -> Result<(), ScimError> {
    if attrs.len() > max {
        return Err(bad(format!("{at} lists more than {max} attributes")));
    }
    let mut seen = HashSet::new();
    for (i, a) in attrs.iter().enumerate() {
        let here = format!("{at}[{i}]");
        if !is_attr_name(&a.name) || a.name.len() > MAX_NAME_LEN {
            return Err(bad(format!(
                "{here}.name must start with a letter and hold only letters, digits, '-' or '_' (RFC 7643 §2.1), at most {MAX_NAME_LEN}; got {:?}",
                a.name
            )));
        }
        if !seen.insert(a.name.to_ascii_lowercase()) {
            return Err(bad(format!(
                "{here}.name {:?} is given twice (names are case-insensitive)",
                a.name
            )));
        }
        let ty = parse_type(&a.ty).ok_or_else(|| {
            bad(format!(
                "{here}.type must be one of string, boolean, decimal, integer, dateTime, reference, complex; got {:?}",
                a.ty
            ))
        })?;
        let mutability = parse_mutability(&a.mutability).ok_or_else(|| {
            bad(format!(
                "{here}.mutability must be one of readWrite, readOnly, immutable, writeOnly; got {:?}",
                a.mutability
            ))
        })?;
        let returned = parse_returned(&a.returned).ok_or_else(|| {
            bad(format!(
                "{here}.returned must be one of default, always, never, request; got {:?}",
                a.returned
            ))
        })?;
        let uniqueness = parse_uniqueness(&a.uniqueness).ok_or_else(|| {
            bad(format!(
                "{here}.uniqueness must be one of none, server, global; got {:?}",
                a.uniqueness
            ))
        })?;
        if ty == AttrType::Complex && uniqueness != Uniqueness::None {
            return Err(bad(format!(
                "{here}.uniqueness applies to simple values: set it on the sub-attributes whose values must be unique"
            )));
        }
        if a.description.len() > MAX_DESCRIPTION_LEN {
            return Err(bad(format!(
                "{here}.description is longer than {MAX_DESCRIPTION_LEN} bytes"
            )));
        }
        if a.required && mutability == Mutability::ReadOnly {
            return Err(bad(format!(
                "{here} cannot be both required and readOnly: no client could set it"
            )));
        }
        // A value never returned would still reach the change log's
        // `data` and the event streams built from it: scimd keeps no
        // values it must hide (only the core `password`, as a hash).
        if mutability == Mutability::WriteOnly || returned == Returned::Never {
            return Err(bad(format!(
                "{here}: writeOnly attributes and returned \"never\" are not supported: scimd keeps no values it must hide from the change log and event streams"
            )));
        }
        if !a.canonical_values.is_empty() {
            if !matches!(ty, AttrType::String | AttrType::Reference) {
                return Err(bad(format!(
                    "{here}.canonicalValues apply only to string and reference attributes"
                )));
            }
            if a.canonical_values.len() > MAX_CANONICAL_VALUES
                || a.canonical_values
                    .iter()
                    .any(|c| c.trim().is_empty() || c.len() > MAX_NAME_LEN || c.contains('\0'))
            {
                return Err(bad(format!(
                    "{here}.canonicalValues must be at most {MAX_CANONICAL_VALUES} non-empty values of at most {MAX_NAME_LEN} bytes"
                )));
            }
        }
        match (ty, top, a.sub_attributes.is_empty()) {
            (AttrType::Complex, false, _) => {
                return Err(bad(format!(
                    "{here}: sub-attributes cannot be complex (RFC 7643 §2.3.8)"
                )))
            }
            (AttrType::Complex, true, true) => {
                return Err(bad(format!("{here} is complex and needs subAttributes")))
            }
            (AttrType::Complex, true, false) => check_attrs(
                &a.sub_attributes,
                &format!("{here}.subAttributes"),
                MAX_SUB_ATTRIBUTES,
                false,
            )?,
            (_, _, false) => {
                return Err(bad(format!("{here} has subAttributes but is not complex")))
            }
            (_, _, true) => {}
        }
        if !top && a.multi_valued {
            return Err(bad(format!("{here}: sub-attributes are single-valued")));
        }
    }
    Ok(())
}

/// The User resource type in force: the core User schema, the Enterprise
/// User extension and the custom extensions of one version of the stored
/// definitions.
#[derive(Debug, Clone)]
pub struct UserSchemas {
    /// The definitions' version (`schema_extension_state.version`).
    pub version: i64,
    /// The definitions, in the order they were defined.
    pub defs: Vec<ExtensionDef>,
    /// The User resource type with every extension.
    pub user_type: &'static ResourceType,
}

impl UserSchemas {
    /// The built-in User resource type, with no custom extension.
    pub fn builtin() -> Self {
        Self {
            version: 0,
            defs: Vec::new(),
            user_type: &USER,
        }
    }

    /// Builds the User resource type for `defs` (valid definitions, as
    /// stored). With none, the built-in type is used and nothing leaks.
    pub fn build(version: i64, defs: Vec<ExtensionDef>) -> Self {
        if defs.is_empty() {
            return Self {
                version,
                ..Self::builtin()
            };
        }
        let mut exts = vec![SchemaExtension {
            schema: &ENTERPRISE_USER,
            required: false,
        }];
        for d in &defs {
            let attributes: Vec<AttributeDef> = d.attributes.iter().map(attr_def).collect();
            let schema: &'static Schema = Box::leak(Box::new(Schema {
                id: leak(&d.id),
                name: leak(d.name()),
                description: leak(&d.description),
                attributes: Box::leak(attributes.into_boxed_slice()),
            }));
            exts.push(SchemaExtension {
                schema,
                required: false,
            });
        }
        let user_type: &'static ResourceType = Box::leak(Box::new(ResourceType {
            name: USER.name,
            endpoint: USER.endpoint,
            description: USER.description,
            schema: &USER_CORE,
            extensions: Box::leak(exts.into_boxed_slice()),
        }));
        Self {
            version,
            defs,
            user_type,
        }
    }

    /// The custom extension schemas, in definition order.
    pub fn custom_schemas(&self) -> impl Iterator<Item = &'static Schema> + '_ {
        self.user_type
            .extensions
            .iter()
            .map(|e| e.schema)
            .filter(|s| is_custom(s.id))
    }
}

/// Whether `urn` names a custom extension: an extension URN other than
/// the Enterprise User's.
pub fn is_custom(urn: &str) -> bool {
    urn.get(..URN_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(URN_PREFIX))
        && !urn.eq_ignore_ascii_case(crate::schema::ENTERPRISE_USER_SCHEMA)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The schema description of a validated attribute (an unknown keyword
/// falls back to RFC 7643 §2.2's default; `validate` refused it before).
fn attr_def(a: &ExtensionAttr) -> AttributeDef {
    let ty = parse_type(&a.ty).unwrap_or(AttrType::String);
    let subs: Vec<AttributeDef> = a.sub_attributes.iter().map(attr_def).collect();
    let canonical: Vec<&'static str> = a.canonical_values.iter().map(|c| leak(c)).collect();
    AttributeDef {
        name: leak(&a.name),
        ty,
        multi_valued: a.multi_valued,
        description: leak(&a.description),
        required: a.required,
        case_exact: a.case_exact,
        mutability: parse_mutability(&a.mutability).unwrap_or(Mutability::ReadWrite),
        returned: parse_returned(&a.returned).unwrap_or(Returned::Default),
        uniqueness: parse_uniqueness(&a.uniqueness).unwrap_or(Uniqueness::None),
        canonical_values: Box::leak(canonical.into_boxed_slice()),
        reference_types: if ty == AttrType::Reference {
            &["external"]
        } else {
            &[]
        },
        sub_attributes: Box::leak(subs.into_boxed_slice()),
        max_values: a.multi_valued.then_some(MAX_VALUES),
        canonical_enforced: true,
    }
}

/// Refuses a replacement (PUT, RFC 7644 §3.5.1) that changes an immutable
/// custom extension attribute already set (`mutability`).
pub fn check_replace(
    rt: &ResourceType,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<(), ScimError> {
    for schema in rt.schemas().filter(|s| is_custom(s.id)) {
        let before = old.get(schema.id).and_then(Value::as_object);
        let after = new.get(schema.id).and_then(Value::as_object);
        for a in schema
            .attributes
            .iter()
            .filter(|a| a.mutability == Mutability::Immutable)
        {
            let was = before.and_then(|m| m.get(a.name));
            let now = after.and_then(|m| m.get(a.name));
            if was.is_some_and(|w| !w.is_null()) && was != now {
                return Err(ScimError::mutability(format!(
                    "{}:{} is immutable and already set",
                    schema.id, a.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::resource::normalize;
    use crate::ScimType;
    use serde_json::json;

    const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

    fn def(v: Value) -> ExtensionDef {
        ExtensionDef::from_json(&v).unwrap()
    }

    fn entra() -> ExtensionDef {
        def(json!({
            "id": URN,
            "attributes": [
                {"name": "CustomAttribute", "type": "string"},
                {"name": "level", "type": "string", "canonicalValues": ["Junior", "Senior"]},
                {"name": "badge", "type": "integer", "mutability": "immutable"},
                {"name": "site", "type": "complex", "subAttributes": [
                    {"name": "building", "type": "string"},
                    {"name": "floor", "type": "integer"}
                ]}
            ]
        }))
    }

    #[test]
    fn a_valid_definition_builds_a_user_type() {
        let d = entra();
        d.validate(&[]).unwrap();
        assert_eq!(d.name(), "CustomExtensionName");
        let s = UserSchemas::build(1, vec![d]);
        let r = s
            .user_type
            .resolve_str(&format!("{URN}:customattribute"))
            .unwrap();
        assert_eq!(r.canonical_path(), format!("{URN}:CustomAttribute"));
        assert!(s
            .user_type
            .resolve_str(&format!("{URN}:site.floor"))
            .is_some());
        assert_eq!(s.custom_schemas().count(), 1);
    }

    #[test]
    fn bad_definitions_are_refused() {
        let cases = [
            (
                json!({"id": "urn:x:2.0:User", "attributes": [{"name": "a", "type": "string"}]}),
                "id must have the form",
            ),
            (
                json!({"id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "attributes": [{"name": "a", "type": "string"}]}),
                "built in",
            ),
            (
                json!({"id": "urn:ietf:params:scim:schemas:extension:a b:2.0:User", "attributes": [{"name": "a", "type": "string"}]}),
                "<Name>",
            ),
            (json!({"id": URN, "attributes": []}), "at least one"),
            (
                json!({"id": URN, "attributes": [{"name": "1a", "type": "string"}]}),
                "must start with a letter",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "binary"}]}),
                ".type must be one of",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]}),
                "given twice",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "complex"}]}),
                "needs subAttributes",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "complex", "subAttributes": [{"name": "b", "type": "complex", "subAttributes": [{"name": "c", "type": "string"}]}]}]}),
                "cannot be complex",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "integer", "canonicalValues": ["1"]}]}),
                "apply only to string",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "string", "mutability": "sometimes"}]}),
                "mutability must be",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "string", "required": true, "mutability": "readOnly"}]}),
                "required and readOnly",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "complex", "uniqueness": "server", "subAttributes": [{"name": "b", "type": "string"}]}]}),
                "set it on the sub-attributes",
            ),
        ];
        for (v, want) in cases {
            let e = def(v.clone()).validate(&[]).unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidValue, "{v}");
            assert!(e.detail.contains(want), "{v}: {}", e.detail);
        }
        let e = ExtensionDef::from_json(&json!({"id": URN, "attributes": [], "colour": 1}))
            .unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidSyntax);
        let e = entra().validate(&[entra()]).unwrap_err();
        assert_eq!(e.scim_type, ScimType::Uniqueness);
    }

    #[test]
    fn writes_are_validated_against_the_definition() {
        let s = UserSchemas::build(1, vec![entra()]);
        let rt = s.user_type;
        let ok = normalize(
            rt,
            &json!({"userName": "u", URN: {"customattribute": "x", "level": "senior", "site": {"floor": 3}}}),
        )
        .unwrap();
        assert_eq!(
            ok.attrs[URN],
            json!({"CustomAttribute": "x", "level": "senior", "site": {"floor": 3}})
        );
        let flat = normalize(
            rt,
            &json!({"userName": "u", format!("{URN}:CustomAttribute"): "y"}),
        )
        .unwrap();
        assert_eq!(flat.attrs[URN], json!({"CustomAttribute": "y"}));
        for (body, want) in [
            (
                json!({"userName": "u", URN: {"level": "Chief"}}),
                "canonicalValues",
            ),
            (
                json!({"userName": "u", URN: {"badge": "seven"}}),
                "must be an integer",
            ),
            (
                json!({"userName": "u", URN: {"site": {"floor": 1.5}}}),
                "must be an integer",
            ),
        ] {
            let e = normalize(rt, &body).unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidValue, "{body}");
            assert!(e.detail.contains(want), "{body}: {}", e.detail);
        }
        let old = json!({URN: {"badge": 7}});
        let same = json!({URN: {"badge": 7}});
        let changed = json!({URN: {"badge": 8}});
        check_replace(rt, old.as_object().unwrap(), same.as_object().unwrap()).unwrap();
        let e =
            check_replace(rt, old.as_object().unwrap(), changed.as_object().unwrap()).unwrap_err();
        assert_eq!(e.scim_type, ScimType::Mutability);
    }
}
