//! The filter AST.

use std::fmt;

/// An attribute path: `[urn ":"] attr ["." subAttr]` (RFC 7644 §3.10).
///
/// Names are kept as written; matching against the schema is
/// case-insensitive and is the consumer's job. The URN is the schema URN
/// *without* the trailing `:` (e.g.
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the path was URN-qualified.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name, if any.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// A path with just an attribute name.
    pub fn new(attr: impl Into<String>) -> Self {
        Self {
            urn: None,
            attr: attr.into(),
            sub_attr: None,
        }
    }

    /// A path `attr.sub`.
    pub fn with_sub(attr: impl Into<String>, sub: impl Into<String>) -> Self {
        Self {
            urn: None,
            attr: attr.into(),
            sub_attr: Some(sub.into()),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `co`
    Co,
    /// `sw`
    Sw,
    /// `ew`
    Ew,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// A literal compared against (RFC 7644 §3.4.2.2: `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string (already unescaped), or an unquoted word that is not
    /// a JSON literal (`userName sw O`, a leniency described in
    /// docs/SCIM.md).
    String(String),
}

impl CompValue {
    /// The value as text, for comparison with a string or dateTime
    /// attribute: a string as itself, and an unquoted `true`, `false` or
    /// number as its JSON text, so that `userName eq true` finds the user
    /// named "true". `None` for `null`, which means "absent" everywhere.
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            CompValue::Null => None,
            CompValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            CompValue::Number(n) => Some(Cow::Owned(n.to_string())),
            CompValue::String(s) => Some(Cow::Borrowed(s)),
        }
    }

    /// The value as a boolean, for comparison with a boolean attribute:
    /// `true` / `false`, also when quoted (any case).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            CompValue::Bool(b) => Some(*b),
            CompValue::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            CompValue::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath op compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath "[" valFilter "]"`: some element of the multi-valued
    /// attribute `path` (which has no `sub_attr`) satisfies `filter`, whose
    /// own paths name sub-attributes of that element (as `AttrPath::new(sub)`).
    ///
    /// Entra's non-standard `emails[type eq "work"].value eq "x"` is
    /// normalised to `ValuePath(emails, And(type eq "work", value eq "x"))`.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH `path` (RFC 7644 §3.5.2, `PATH = attrPath / valuePath [subAttr]`).
///
/// `emails[type eq "work"].value` is `{ attr: emails, filter: Some(type eq
/// "work"), sub_attr: Some(value) }`; `name.givenName` is `{ attr: name,
/// filter: None, sub_attr: Some(givenName) }`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The schema URN prefix, if the path was URN-qualified.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The value filter selecting elements of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// The sub-attribute, after the attribute or after the filter.
    pub sub_attr: Option<String>,
}
