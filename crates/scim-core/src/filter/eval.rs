//! In-memory evaluation of a filter against a JSON object.
//!
//! The store evaluates filters in SQL; this evaluator serves PATCH, which
//! selects elements of multi-valued attributes with value filters
//! (`emails[type eq "work"]`, `members[value eq "…"]`, RFC 7644 §3.5.2), and
//! any place a resource already in memory has to be tested.
//!
//! Semantics follow RFC 7644 §3.4.2.2:
//! - attribute names match case-insensitively (RFC 7643 §2.1);
//! - a URN-qualified path looks under the extension object keyed by that
//!   URN, except the core User and Group schemas, whose attributes are
//!   top-level;
//! - on a multi-valued attribute a comparison holds if any value satisfies
//!   it, and an element that is a complex value is compared through its
//!   `value` sub-attribute;
//! - strings compare case-insensitively unless the schema says `caseExact`;
//!   when both sides are RFC 3339 date-times they compare as instants; an
//!   unquoted `true` or number compared with a string is read as its text,
//!   and a string "true"/"false" compared with a boolean as that boolean;
//! - `gt`/`ge`/`lt`/`le` on booleans and null are false;
//! - `attr eq null` holds when the attribute is absent (the usual reading of
//!   RFC 7643 §2.5, where null and "no value" are the same), and `ne` is the
//!   negation of `eq`, so it holds when the attribute is absent.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use crate::datetime;

/// The core schemas, whose attributes sit at the top level of a resource
/// rather than under a URN key (RFC 7643 §3.3).
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
];

/// Whether `value` (a JSON object: a resource, or one element of a
/// multi-valued attribute) satisfies `filter`. Attribute names match
/// case-insensitively; `case_exact` tells whether string comparison on an
/// attribute is case-sensitive (from the schema).
///
/// Inside a value path `emails[type eq "work"]`, `case_exact` is asked about
/// the full path (`emails.type`), with the outer path's URN. When PATCH
/// calls this directly on one element with the bracket's inner filter, the
/// paths it sees are the bare sub-attribute names (`type`).
///
/// When `value` is not an object (an element of a multi-valued attribute of
/// simple values), the path `value` names the element itself, so that
/// `[value eq "x"]` selects it.
pub fn matches(
    filter: &Filter,
    value: &serde_json::Value,
    case_exact: &dyn Fn(&AttrPath) -> bool,
) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, value, case_exact) && matches(b, value, case_exact),
        Filter::Or(a, b) => matches(a, value, case_exact) || matches(b, value, case_exact),
        Filter::Not(a) => !matches(a, value, case_exact),
        Filter::Present(path) => is_present_at(value, path),
        Filter::Compare(path, op, lit) => compare_at(value, path, *op, lit, case_exact(path)),
        Filter::ValuePath(path, inner) => {
            let inner_case_exact = |sub: &AttrPath| {
                case_exact(&AttrPath {
                    urn: path.urn.clone(),
                    attr: path.attr.clone(),
                    sub_attr: Some(sub.attr.clone()),
                })
            };
            resolve(value, path).into_iter().any(|target| match target {
                Value::Array(items) => items
                    .iter()
                    .any(|item| matches(inner, item, &inner_case_exact)),
                // A complex single-valued attribute (`name[givenName eq
                // "x"]`) is filtered like a one-element array.
                other => matches(inner, other, &inner_case_exact),
            })
        }
    }
}

/// Looks `key` up in a JSON object, exactly first and then ignoring ASCII
/// case (attribute names and schema URNs are case-insensitive).
fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The raw JSON values the path names: the attribute itself, or with a
/// sub-attribute the sub-attribute of the attribute (of each element, when
/// the attribute is multi-valued).
fn resolve<'a>(value: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let base = match &path.urn {
        Some(urn) if !CORE_SCHEMAS.iter().any(|c| c.eq_ignore_ascii_case(urn)) => {
            match get_ci(value, urn) {
                Some(extension) => extension,
                None => return Vec::new(),
            }
        }
        _ => value,
    };
    let attr = match get_ci(base, &path.attr) {
        Some(attr) => attr,
        // An element of a multi-valued attribute of simple values is its
        // own `value`.
        None if !base.is_object()
            && path.urn.is_none()
            && path.sub_attr.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            base
        }
        None => return Vec::new(),
    };
    match &path.sub_attr {
        None => vec![attr],
        Some(sub) => match attr {
            Value::Array(items) => items.iter().filter_map(|item| get_ci(item, sub)).collect(),
            other => get_ci(other, sub).into_iter().collect(),
        },
    }
}

/// `pr`: present and not null, not an empty string, array or object
/// (RFC 7644 §3.4.2.2 Table 3, RFC 7643 §2.5).
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => !members.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn is_present_at(value: &Value, path: &AttrPath) -> bool {
    resolve(value, path).into_iter().any(is_present)
}

/// The simple values a comparison looks at: the elements of a multi-valued
/// attribute, and a complex value through its `value` sub-attribute.
fn leaves(values: Vec<&Value>) -> Vec<&Value> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        match value {
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(_) => out.extend(get_ci(item, "value")),
                        other => out.push(other),
                    }
                }
            }
            Value::Object(_) => out.extend(get_ci(value, "value")),
            other => out.push(other),
        }
    }
    out
}

fn compare_at(
    value: &Value,
    path: &AttrPath,
    op: CompareOp,
    lit: &CompValue,
    case_exact: bool,
) -> bool {
    if let CompValue::Null = lit {
        return match op {
            CompareOp::Eq => !is_present_at(value, path),
            CompareOp::Ne => is_present_at(value, path),
            _ => false,
        };
    }
    let leaves = leaves(resolve(value, path));
    match op {
        // `ne` negates `eq` over all values, so it holds when the attribute
        // is absent and fails when any value equals the literal.
        CompareOp::Ne => !leaves
            .iter()
            .any(|leaf| compare_leaf(leaf, CompareOp::Eq, lit, case_exact)),
        _ => leaves
            .iter()
            .any(|leaf| compare_leaf(leaf, op, lit, case_exact)),
    }
}

fn compare_leaf(leaf: &Value, op: CompareOp, lit: &CompValue, case_exact: bool) -> bool {
    match leaf {
        // An unquoted `true` or number against a string reads as its text
        // (`CompValue::as_text`, docs/SCIM.md).
        Value::String(actual) => lit
            .as_text()
            .is_some_and(|expected| compare_strings(actual, &expected, op, case_exact)),
        Value::Number(actual) => match lit {
            CompValue::Number(expected) => compare_numbers(actual, expected, op),
            _ => false,
        },
        Value::Bool(actual) => match (lit.as_bool(), op) {
            (Some(expected), CompareOp::Eq) => *actual == expected,
            (Some(expected), CompareOp::Ne) => *actual != expected,
            // Booleans have no order or substrings (RFC 7644 Table 3).
            _ => false,
        },
        _ => false,
    }
}

/// Whether `ordering` (actual against expected) satisfies an ordering or
/// equality operator; substring operators never do.
fn ordering_holds(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_strings(actual: &str, expected: &str, op: CompareOp, case_exact: bool) -> bool {
    let ordered = !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if ordered {
        // RFC 7644 §3.4.2.2: dateTime attributes compare chronologically;
        // the normalised form orders as text in time order.
        if let (Some(a), Some(b)) = (datetime::normalize(actual), datetime::normalize(expected)) {
            return ordering_holds(a.cmp(&b), op);
        }
    }
    let (a, b): (Cow<'_, str>, Cow<'_, str>) = if case_exact {
        (Cow::Borrowed(actual), Cow::Borrowed(expected))
    } else {
        (
            Cow::Owned(actual.to_lowercase()),
            Cow::Owned(expected.to_lowercase()),
        )
    };
    match op {
        CompareOp::Co => a.contains(b.as_ref()),
        CompareOp::Sw => a.starts_with(b.as_ref()),
        CompareOp::Ew => a.ends_with(b.as_ref()),
        _ => ordering_holds(a.cmp(&b), op),
    }
}

fn as_i128(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn compare_numbers(
    actual: &serde_json::Number,
    expected: &serde_json::Number,
    op: CompareOp,
) -> bool {
    // Integers compare exactly; anything with a fraction or exponent as f64.
    let ordering = match (as_i128(actual), as_i128(expected)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => match (actual.as_f64(), expected.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    };
    ordering.is_some_and(|ordering| ordering_holds(ordering, op))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::cell::RefCell;

    use serde_json::json;

    use super::*;
    use crate::filter::parse_filter;

    fn user() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": { "familyName": "O'Malley", "givenName": "Barbara" },
            "title": "Tour Guide",
            "userType": "Employee",
            "nickName": "",
            "active": true,
            "loginCount": 42,
            "ratio": 0.5,
            "manager": null,
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "value": "babs@jensen.org", "type": "home" }
            ],
            "ims": [ { "value": "someaimhandle", "type": "aim" } ],
            "x509Certificates": [],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z"
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d" }
            }
        })
    }

    /// `id` is caseExact in RFC 7643 §3.1; everything else here is not.
    fn id_case_exact(path: &AttrPath) -> bool {
        path.attr.eq_ignore_ascii_case("id")
    }

    fn eval(filter: &str, value: &Value) -> bool {
        let parsed = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        matches(&parsed, value, &id_case_exact)
    }

    #[test]
    fn evaluates_against_a_user() {
        let user = user();
        let cases: &[(&str, bool)] = &[
            // Case-insensitive values and attribute names.
            ("userName eq \"BJENSEN@example.com\"", true),
            ("USERNAME eq \"bjensen@example.com\"", true),
            ("userName eq \"bjensen\"", false),
            // caseExact attributes compare exactly.
            ("id eq \"2819c223-7f76-453a-919d-413861904646\"", true),
            ("id eq \"2819C223-7F76-453A-919D-413861904646\"", false),
            // Substrings.
            ("name.familyName co \"malley\"", true),
            ("name.familyName co \"O'Malley\"", true),
            ("userName sw \"BJ\"", true),
            ("userName ew \".COM\"", true),
            ("userName co \"xyz\"", false),
            ("userName ew \"example\"", false),
            // Lexicographic order on strings.
            ("userName gt \"a\"", true),
            ("userName lt \"a\"", false),
            ("userName ge \"BJENSEN@example.com\"", true),
            ("userName le \"bjensen@example.com\"", true),
            // Presence.
            ("title pr", true),
            ("nickName pr", false),
            ("x509Certificates pr", false),
            ("manager pr", false),
            ("nosuch pr", false),
            ("emails pr", true),
            ("name pr", true),
            ("meta.lastModified pr", true),
            ("emails.type pr", true),
            ("ims.display pr", false),
            // null means "not present".
            ("nosuch eq null", true),
            ("manager eq null", true),
            ("nickName eq null", true),
            ("title eq null", false),
            ("title ne null", true),
            ("nosuch ne null", false),
            ("title co null", false),
            // Date-times compare as instants.
            ("meta.lastModified gt \"2011-05-13T04:42:33Z\"", true),
            ("meta.lastModified gt \"2011-05-13T06:42:34+02:00\"", false),
            ("meta.lastModified ge \"2011-05-13T06:42:34+02:00\"", true),
            ("meta.lastModified eq \"2011-05-13T04:42:34.000Z\"", true),
            ("meta.lastModified lt \"2012-01-01T00:00:00Z\"", true),
            ("meta.lastModified le \"2011-05-13T04:42:33.999Z\"", false),
            ("meta.lastModified sw \"2011-05\"", true),
            // Numbers compare numerically.
            ("loginCount gt 41", true),
            ("loginCount ge 42", true),
            ("loginCount lt 42", false),
            ("loginCount le 42", true),
            ("loginCount eq 42.0", true),
            ("loginCount gt 1e1", true),
            ("loginCount lt 100", true),
            ("ratio lt 1", true),
            ("ratio gt -1.5", true),
            ("ratio eq 0.5", true),
            ("loginCount co 4", false),
            ("loginCount eq \"42\"", false),
            // Booleans: equality only.
            ("active eq true", true),
            ("active eq TRUE", true),
            ("active eq false", false),
            ("active ne false", true),
            ("active gt false", false),
            ("active le true", false),
            // A quoted "true" reads as the boolean (as the store reads it).
            ("active eq \"true\"", true),
            ("active eq \"yes\"", false),
            // Unquoted values (docs/SCIM.md, "Leniency"): words are strings,
            // dateTimes compare as instants, literals against a string
            // compare as their text.
            ("userName sw BJ", true),
            ("userName eq bjensen@example.com", true),
            ("name.familyName co malley", true),
            ("meta.lastModified gt 2011-05-12T21:42:33.8617979-07:00", true),
            ("meta.lastModified gt 2011-05-12T21:42:34.5-07:00", false),
            ("emails[type eq work]", true),
            ("emails[type eq home and value co jensen.org]", true),
            ("emails[type eq other]", false),
            ("userName eq true", false),
            ("title eq 42", false),
            // Multi-valued attributes: any value; complex values via `value`.
            ("emails co \"example.com\"", true),
            ("emails eq \"BABS@jensen.org\"", true),
            ("emails.value co \"example.org\"", false),
            ("emails.value ew \"jensen.org\"", true),
            ("emails.type eq \"work\"", true),
            ("emails.type eq \"other\"", false),
            ("emails ne \"bjensen@example.com\"", false),
            ("emails ne \"nobody@example.com\"", true),
            ("schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"", true),
            ("schemas eq \"urn:ietf:params:scim:schemas:core:2.0:Group\"", false),
            // ne is true when absent.
            ("userType ne \"Employee\"", false),
            ("nosuch ne \"x\"", true),
            ("nosuch eq \"x\"", false),
            // Value paths.
            ("emails[type eq \"work\" and value co \"@example.com\"]", true),
            ("emails[type eq \"home\" and value co \"@example.com\"]", false),
            ("emails[type eq \"work\"].value eq \"bjensen@example.com\"", true),
            ("emails[type eq \"home\"].value eq \"bjensen@example.com\"", false),
            ("emails[type eq \"work\"].primary eq true", true),
            ("emails[type eq \"home\"].primary pr", false),
            ("emails[not (type eq \"work\")]", true),
            ("emails[primary eq true and type eq \"home\"]", false),
            ("ims[type eq \"xmpp\" and value co \"@foo.com\"]", false),
            ("x509Certificates[value pr]", false),
            ("nosuch[value pr]", false),
            ("name[givenName eq \"barbara\"]", true),
            // Logic, and the RFC 7644 §3.4.2.2 examples.
            ("not (title pr)", false),
            ("title pr and userType eq \"Employee\"", true),
            ("title pr and userType eq \"Intern\"", false),
            ("title pr or userType eq \"Intern\"", true),
            ("nosuch pr or userType eq \"Intern\"", false),
            (
                "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
                true,
            ),
            (
                "userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")",
                false,
            ),
            ("userType eq \"Employee\" and (emails.type eq \"work\")", true),
            (
                "userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]",
                true,
            ),
            (
                "emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
                true,
            ),
            // URN-qualified paths.
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"tour operations\"",
                true,
            ),
            (
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department eq \"Tour Operations\"",
                true,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"",
                true,
            ),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr", true),
            // The extension's `manager` is not the top-level one.
            ("manager.value pr", false),
            ("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"bjensen@example.com\"", true),
            ("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw \"Bar\"", true),
            ("urn:example:unknown:2.0:Ext:userName pr", false),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr", false),
        ];
        for (filter, expected) in cases {
            assert_eq!(eval(filter, &user), *expected, "{filter}");
        }
    }

    #[test]
    fn selects_elements_of_multi_valued_attributes() {
        // PATCH evaluates the bracket's filter against each element.
        let members = [
            json!({ "value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs" }),
            json!({ "value": "902c246b-6245-4190-8e05-00816be7344a", "$ref": "x" }),
            json!({ "display": "no value" }),
        ];
        let filter = parse_filter(
            "value eq \"2819c223-7f76-453a-919d-413861904646\" or value eq \"902c246b-6245-4190-8e05-00816be7344a\"",
        )
        .unwrap();
        let selected: Vec<bool> = members
            .iter()
            .map(|m| matches(&filter, m, &|_| true))
            .collect();
        assert_eq!(selected, [true, true, false]);

        let upper = parse_filter("value eq \"2819C223-7F76-453A-919D-413861904646\"").unwrap();
        assert!(!matches(&upper, &members[0], &|_| true));
        assert!(matches(&upper, &members[0], &|_| false));

        // Elements of a multi-valued attribute of simple values are their
        // own `value`.
        let simple = parse_filter("value eq \"urn:a\"").unwrap();
        assert!(matches(&simple, &json!("URN:A"), &|_| false));
        assert!(!matches(&simple, &json!("urn:b"), &|_| false));
        let over_strings = parse_filter("schemas[value sw \"urn:ietf\"]").unwrap();
        assert!(matches(&over_strings, &user(), &|_| false));

        // Non-objects have no other attributes.
        let typed = parse_filter("type eq \"work\"").unwrap();
        assert!(!matches(&typed, &json!("work"), &|_| false));
        assert!(!matches(&typed, &json!(null), &|_| false));
    }

    #[test]
    fn asks_case_exact_about_full_paths() {
        let seen = RefCell::new(Vec::new());
        let record = |path: &AttrPath| {
            seen.borrow_mut().push(path.to_string());
            path.attr == "emails" && path.sub_attr.as_deref() == Some("value")
        };
        let user = user();
        let f = parse_filter("emails[value eq \"BJENSEN@example.com\"]").unwrap();
        assert!(!matches(&f, &user, &record));
        assert!(matches(&f, &user, &|_| false));
        let f = parse_filter("emails[type eq \"WORK\"] and userName eq \"BJENSEN@EXAMPLE.COM\"")
            .unwrap();
        assert!(matches(&f, &user, &record));
        let f = parse_filter(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value pr]",
        )
        .unwrap();
        assert!(matches(&f, &user, &record));
        assert_eq!(
            seen.into_inner(),
            ["emails.value", "emails.value", "emails.type", "userName",]
        );
    }

    #[test]
    fn non_object_roots_never_match_named_attributes() {
        for root in [json!(null), json!(1), json!([1, 2]), json!("x"), json!({})] {
            for filter in ["title pr", "title eq \"x\"", "emails[type eq \"work\"]"] {
                assert!(!eval(filter, &root), "{filter} on {root}");
            }
            assert!(eval("title ne \"x\"", &root));
            assert!(eval("title eq null", &root));
        }
    }
}
