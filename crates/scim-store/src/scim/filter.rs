//! SCIM filters (RFC 7644 §3.4.2.2) and `sortBy` (§3.4.2.3) translated to
//! SQL over `users` (alias `u`, with `user_values` as `v`) or `groups`
//! (alias `g`), with memberships in `group_members`.
//!
//! Attributes go through an allow-list per resource type ([`Resource`]):
//! each one the store can answer maps to a column of the resource's table
//! or to rows of another table (`user_values`, `group_members`); any other
//! attribute is `invalidFilter`. Every generated expression is two-valued
//! (never SQL NULL), so `not (…)` and `ne` also match resources that lack
//! the attribute, as RFC 7644 §3.4.2.2 requires for `ne`.

use scim_core::filter::{AttrPath, CompValue, CompareOp, Filter};
use scim_core::schema::{AttrType, ResourceType};
use scim_core::ScimError;

use crate::db::org::OrgId;
use crate::db::sql::{Bind, PatternKind, SqlBuilder};
use crate::error::StoreError;

/// The core User schema URN (RFC 7643 §4.1), allowed as a prefix.
pub(crate) const CORE_USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN (RFC 7643 §4.2), allowed as a prefix.
pub(crate) const GROUP_URN: &str = scim_core::schema::GROUP_SCHEMA;
/// The enterprise User extension URN (RFC 7643 §4.3).
pub(crate) const ENTERPRISE_USER_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// How deep `and`/`or`/`not` may nest before we refuse (the parser has its
/// own limit; this one protects the translator if an AST is built by hand).
const MAX_DEPTH: usize = 64;

/// Single-valued core string attributes kept in `user_values`:
/// (canonical name, caseExact per RFC 7643 §4.1.1 / §8.7.1).
const CORE_SINGLE: &[(&str, bool)] = &[
    ("nickName", false),
    ("profileUrl", false),
    ("title", false),
    ("userType", false),
    ("preferredLanguage", false),
    ("locale", false),
    ("timezone", false),
];
/// Sub-attributes of `name` (RFC 7643 §4.1.1), all caseExact false.
const NAME_SUBS: &[&str] = &[
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
/// Single-valued enterprise string attributes (RFC 7643 §4.3).
const ENTERPRISE_SINGLE: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
];
/// Canonical `user_values.attr` of the enterprise manager's id.
pub(crate) const MANAGER_VALUE_ATTR: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";

/// A column of a multi-valued element row in `user_values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemCol {
    /// `value`, compared through `value_ci` (lowered unless caseExact).
    Value,
    Display,
    Type,
    Primary,
    Formatted,
    StreetAddress,
    Locality,
    Region,
    PostalCode,
    Country,
}

impl ElemCol {
    fn column(self) -> &'static str {
        match self {
            ElemCol::Value => "v.value_ci",
            ElemCol::Display => "v.display_ci",
            ElemCol::Type => "v.type_ci",
            ElemCol::Primary => "v.is_primary",
            ElemCol::Formatted => "v.formatted_ci",
            ElemCol::StreetAddress => "v.street_address_ci",
            ElemCol::Locality => "v.locality_ci",
            ElemCol::Region => "v.region_ci",
            ElemCol::PostalCode => "v.postal_code_ci",
            ElemCol::Country => "v.country_ci",
        }
    }

    /// The sub-attribute's canonical name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ElemCol::Value => "value",
            ElemCol::Display => "display",
            ElemCol::Type => "type",
            ElemCol::Primary => "primary",
            ElemCol::Formatted => "formatted",
            ElemCol::StreetAddress => "streetAddress",
            ElemCol::Locality => "locality",
            ElemCol::Region => "region",
            ElemCol::PostalCode => "postalCode",
            ElemCol::Country => "country",
        }
    }
}

const PLAIN_SUBS: &[ElemCol] = &[
    ElemCol::Value,
    ElemCol::Display,
    ElemCol::Type,
    ElemCol::Primary,
];
const ADDRESS_SUBS: &[ElemCol] = &[
    ElemCol::Formatted,
    ElemCol::StreetAddress,
    ElemCol::Locality,
    ElemCol::Region,
    ElemCol::PostalCode,
    ElemCol::Country,
    ElemCol::Type,
    ElemCol::Primary,
];

/// A multi-valued attribute of the User (RFC 7643 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MultiAttr {
    /// Canonical name, also `user_values.attr`.
    pub(crate) name: &'static str,
    /// Its filterable sub-attributes.
    pub(crate) subs: &'static [ElemCol],
    /// Whether `value` is caseExact (RFC 7643 §8.7.1: photos, x509Certificates).
    pub(crate) value_case_exact: bool,
}

/// The multi-valued attributes indexed in `user_values`.
pub(crate) const MULTI_ATTRS: &[MultiAttr] = &[
    MultiAttr {
        name: "emails",
        subs: PLAIN_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "phoneNumbers",
        subs: PLAIN_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "ims",
        subs: PLAIN_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "photos",
        subs: PLAIN_SUBS,
        value_case_exact: true,
    },
    MultiAttr {
        name: "addresses",
        subs: ADDRESS_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "entitlements",
        subs: PLAIN_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "roles",
        subs: PLAIN_SUBS,
        value_case_exact: false,
    },
    MultiAttr {
        name: "x509Certificates",
        subs: PLAIN_SUBS,
        value_case_exact: true,
    },
];

/// A single-valued leaf kept in `user_values` (idx 0), with its caseExact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SingleLeaf {
    /// Canonical path, also `user_values.attr`.
    pub(crate) attr: String,
    pub(crate) case_exact: bool,
}

/// Every single-valued leaf indexed in `user_values`: its canonical path
/// (`user_values.attr`), the keys leading to it in the canonical attribute
/// map, and whether it is caseExact. Built once: every user write walks it.
pub(crate) fn single_leaves() -> &'static [(String, Vec<&'static str>, bool)] {
    static LEAVES: std::sync::LazyLock<Vec<(String, Vec<&'static str>, bool)>> =
        std::sync::LazyLock::new(build_single_leaves);
    &LEAVES
}

fn build_single_leaves() -> Vec<(String, Vec<&'static str>, bool)> {
    let mut out = Vec::new();
    for (name, exact) in CORE_SINGLE {
        out.push(((*name).to_owned(), vec![*name], *exact));
    }
    for sub in NAME_SUBS {
        out.push((format!("name.{sub}"), vec!["name", *sub], false));
    }
    for name in ENTERPRISE_SINGLE {
        out.push((
            format!("{ENTERPRISE_USER_URN}:{name}"),
            vec![ENTERPRISE_USER_URN, *name],
            false,
        ));
    }
    // RFC 7643 erratum 8472 (verified): manager.value holds a User `id`,
    // which is caseExact, so manager.value is caseExact too.
    out.push((
        MANAGER_VALUE_ATTR.to_owned(),
        vec![ENTERPRISE_USER_URN, "manager", "value"],
        true,
    ));
    out
}

/// The User resource type a filter is resolved against: the built-in one
/// or one with custom schema extensions (`scim::extensions`), whose
/// attributes are filterable and sortable through `user_values`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserType(pub(crate) &'static ResourceType);

impl PartialEq for UserType {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for UserType {}

/// The resource type a filter or sort key is evaluated over: each has its
/// own table (and alias) and its own allow-list of attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `users u` (RFC 7643 §4.1) of an organization, with the extensions
    /// of the type.
    User(UserType, OrgId),
    /// `groups g` (RFC 7643 §4.2) of an organization.
    Group(OrgId),
}

impl Resource {
    /// Users of the built-in User type (no custom extension).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) const USER: Resource =
        Resource::User(UserType(&scim_core::schema::USER), OrgId::DEFAULT);

    /// The default organization's Groups.
    #[cfg(test)]
    pub(crate) const GROUP: Resource = Resource::Group(OrgId::DEFAULT);

    /// Users of `rt` (a User type with custom extensions) in `org`.
    pub(crate) fn user(rt: &'static ResourceType, org: OrgId) -> Resource {
        Resource::User(UserType(rt), org)
    }

    /// The organization whose rows it is.
    pub(crate) fn org(self) -> OrgId {
        match self {
            Resource::User(_, org) | Resource::Group(org) => org,
        }
    }

    /// The table with its alias, for `FROM`.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Resource::User(..) => "users u",
            Resource::Group(_) => "groups g",
        }
    }

    /// The aliased table's column prefix (`u.` / `g.`).
    pub(crate) fn alias(self) -> &'static str {
        match self {
            Resource::User(..) => "u.",
            Resource::Group(_) => "g.",
        }
    }

    /// The condition every listed row meets: the row is the
    /// organization's, and a soft-deleted User is invisible to the SCIM
    /// API (spelt out in every query so that SQLite's planner can use the
    /// partial indexes `WHERE deleted_at IS NULL`). Every index that serves
    /// a list leads with the organization.
    ///
    /// When `filter` reads another table (`user_values`, `group_members`:
    /// `… IN (SELECT …)`, itself restricted to the organization), the
    /// organization is checked on the row but not used to find it (`+`):
    /// SQLite would otherwise walk all the organization's rows through an
    /// index leading with `org_id` and test each against the subquery,
    /// instead of finding the few rows the subquery names by their primary
    /// key. PostgreSQL plans both the same.
    pub(crate) fn push_scope(self, b: &mut SqlBuilder, filter: Option<&Filter>) {
        let plus = if filter.is_some_and(|f| reads_other_table(self, f)) {
            "+"
        } else {
            ""
        };
        match self {
            Resource::User(_, org) => {
                b.push(plus)
                    .push("u.org_id = ")
                    .bind(Bind::Integer(org.0))
                    .push(" AND u.deleted_at IS NULL");
            }
            Resource::Group(org) => {
                b.push(plus).push("g.org_id = ").bind(Bind::Integer(org.0));
            }
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Resource::User(..) => "u.id",
            Resource::Group(_) => "g.id",
        }
    }

    fn created_column(self) -> &'static str {
        match self {
            Resource::User(..) => "u.created",
            Resource::Group(_) => "g.created",
        }
    }

    /// `meta.resourceType` (RFC 7643 §3.1).
    fn type_name(self) -> &'static str {
        match self {
            Resource::User(..) => "User",
            Resource::Group(_) => "Group",
        }
    }
}

/// A column of the resource's own table (or of an element table), with how
/// it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// The SQL expression (trusted text, never client input).
    sql: &'static str,
    /// Whether it may be NULL (then comparisons get an `IS NOT NULL` guard).
    nullable: bool,
    kind: Kind,
    /// Whether its PostgreSQL index is on `md5(column)`, so that equality
    /// compares the hashes too (`SqlBuilder::push_hashed_eq`).
    hashed: bool,
}

const fn col(sql: &'static str, nullable: bool, kind: Kind) -> Column {
    Column {
        sql,
        nullable,
        kind,
        hashed: false,
    }
}

/// A client-filled text column indexed by its hash on PostgreSQL
/// (migration `20261206000000_bounded_index_keys`).
const fn hashed(sql: &'static str, nullable: bool, kind: Kind) -> Column {
    Column {
        sql,
        nullable,
        kind,
        hashed: true,
    }
}

/// A filterable sub-attribute of a [`Relation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelSub {
    name: &'static str,
    column: Column,
}

/// A multi-valued attribute kept as rows of another table (a group's
/// `members`, a user's `groups`): filters become a subquery on that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relation {
    /// The attribute's canonical name.
    name: &'static str,
    /// The subquery's `FROM` (trusted text).
    from: &'static str,
    /// The subquery column holding the owning resource's id.
    owner_key: &'static str,
    /// A condition every row of the subquery must meet.
    base_cond: &'static str,
    /// The sub-attributes that may be filtered on.
    subs: &'static [RelSub],
}

/// A Group's `members` (RFC 7643 §4.2) as seen by `GET /Groups?filter=`:
/// `value` is the member id (caseExact), `type` "User" or "Group"
/// (caseExact false, so compared lowered). `display` is not filterable
/// across groups: it lives on the member, and matching it would scan every
/// membership.
pub(crate) const GROUP_MEMBERS: Relation = Relation {
    name: "members",
    from: "group_members",
    owner_key: "group_members.group_id",
    base_cond: "1 = 1",
    subs: &[
        RelSub {
            name: "value",
            column: col("group_members.member_id", false, Kind::TextExact),
        },
        RelSub {
            name: "type",
            column: col("LOWER(group_members.member_type)", false, Kind::TextCi),
        },
    ],
};

/// The `members` of ONE group as a PATCH path filter (`members[…]`, RFC
/// 7644 §3.5.2) sees them: as [`GROUP_MEMBERS`], plus `display`, the
/// member's displayName (compared case-insensitively). The scan is bounded
/// by the group.
pub(crate) const PATCH_MEMBERS: Relation = Relation {
    name: "members",
    from: "group_members",
    owner_key: "group_members.group_id",
    base_cond: "1 = 1",
    subs: &[
        RelSub {
            name: "value",
            column: col("group_members.member_id", false, Kind::TextExact),
        },
        RelSub {
            name: "type",
            column: col("LOWER(group_members.member_type)", false, Kind::TextCi),
        },
        RelSub {
            name: "display",
            column: col(
                "(CASE WHEN group_members.member_type = 'User' \
                 THEN (SELECT du.display_name_ci FROM users du WHERE du.id = group_members.member_id) \
                 ELSE (SELECT dg.display_name_ci FROM groups dg WHERE dg.id = group_members.member_id) END)",
                true,
                Kind::TextCi,
            ),
        },
    ],
};

/// A User's read-only `groups` (RFC 7643 §4.1.2): its direct memberships;
/// `value` is the group id (caseExact), `display` the group's displayName.
const USER_GROUPS: Relation = Relation {
    name: "groups",
    from: "group_members gm JOIN groups gg ON gg.id = gm.group_id",
    owner_key: "gm.member_id",
    base_cond: "gm.member_type = 'User'",
    subs: &[
        RelSub {
            name: "value",
            column: col("gm.group_id", false, Kind::TextExact),
        },
        RelSub {
            name: "display",
            column: hashed("gg.display_name_ci", false, Kind::TextCi),
        },
    ],
};

/// What an attribute path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// A column of the resource's own table.
    Column(Column),
    /// `meta.resourceType`, a constant per resource type.
    ResourceType,
    /// A single-valued User leaf in `user_values`.
    Single(SingleLeaf),
    /// A complex single-valued attribute named without a sub-attribute
    /// (`name`, `manager`): its leaves.
    Complex {
        leaves: Vec<SingleLeaf>,
        prefix: PathPrefix,
    },
    /// A multi-valued User attribute in `user_values`.
    Multi {
        attr: MultiAttr,
        sub: Option<ElemCol>,
    },
    /// A multi-valued attribute kept in another table.
    Relation {
        rel: &'static Relation,
        sub: Option<RelSub>,
    },
    /// A custom extension attribute or sub-attribute in `user_values`.
    Custom(CustomLeaf),
}

/// A simple attribute of a custom extension (`scim::extensions`), kept in
/// `user_values` as attr `<urn>:<name>[.<sub>]`, one row per value (idx),
/// `value` as written (numbers and booleans as their JSON text) and
/// `value_ci` lowered. Its comparisons follow its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomLeaf {
    attr: String,
    ty: AttrType,
    case_exact: bool,
}

/// Resolves a path under a custom extension URN against `rt`'s
/// definitions: `None` when it names no attribute defined.
fn resolve_custom(rt: &'static ResourceType, path: &AttrPath) -> Option<Field> {
    let r = rt.resolve_path(path)?;
    let base = format!("{}:{}", r.schema.id, r.attr.name);
    let leaf = |attr: String, def: &scim_core::schema::AttributeDef| CustomLeaf {
        attr,
        ty: def.ty,
        case_exact: def.case_exact,
    };
    Some(match r.sub {
        Some(sub) => Field::Custom(leaf(format!("{base}.{}", sub.name), sub)),
        // A complex attribute (single- or multi-valued) named alone: its
        // presence is its sub-attributes', and `attr[sub op x]` reads as
        // `attr.sub op x` (for a multi-valued one: some element matches
        // each condition, docs/SCIM.md).
        None if r.attr.ty == AttrType::Complex => Field::Complex {
            leaves: r
                .attr
                .sub_attributes
                .iter()
                .map(|s| SingleLeaf {
                    attr: format!("{base}.{}", s.name),
                    case_exact: s.case_exact,
                })
                .collect(),
            prefix: PathPrefix {
                urn: Some(r.schema.id.to_owned()),
                attr: r.attr.name.to_owned(),
            },
        },
        None => Field::Custom(leaf(base, r.attr)),
    })
}

/// The numeric SQL type custom `integer` and `decimal` values are compared
/// as.
fn numeric_type(b: &SqlBuilder) -> &'static str {
    match b.backend() {
        crate::db::connection::Backend::Sqlite => "REAL",
        crate::db::connection::Backend::Postgres => "NUMERIC",
    }
}

/// `u.id [NOT] IN (SELECT … FROM user_values v WHERE v.attr = … AND <cmp>)`
/// for a custom extension attribute.
fn custom_compare(
    b: &mut SqlBuilder,
    res: Resource,
    leaf: &CustomLeaf,
    op: CompareOp,
    negate: bool,
    value: &CompValue,
    path: &AttrPath,
) -> Result<(), StoreError> {
    b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
    b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
        .bind(Bind::Integer(res.org().0))
        .push(" AND v.attr = ")
        .bind_text(leaf.attr.clone())
        .push(" AND ");
    match leaf.ty {
        AttrType::Boolean => {
            let c = col("v.value_ci", true, Kind::Bool);
            let Some(v) = value.as_bool() else {
                return push_compare(b, c, op, value, path);
            };
            if op != CompareOp::Eq {
                return push_compare(b, c, op, value, path);
            }
            b.push("v.value_ci = ")
                .bind_text(if v { "true" } else { "false" });
        }
        AttrType::Integer | AttrType::Decimal => {
            let CompValue::Number(n) = value else {
                return Err(invalid(format!(
                    "\"{path}\" is a number; compare it with an unquoted number"
                )));
            };
            let sym = match op {
                CompareOp::Eq => " = ",
                CompareOp::Gt => " > ",
                CompareOp::Ge => " >= ",
                CompareOp::Lt => " < ",
                CompareOp::Le => " <= ",
                other => {
                    return Err(invalid(format!(
                        "\"{path}\" is a number; co, sw and ew apply only to strings, not {}",
                        op_name(other)
                    )))
                }
            };
            let ty = numeric_type(b);
            // The CASE keeps PostgreSQL from casting another attribute's
            // text, whatever order it evaluates the conditions in.
            b.push("CAST(CASE WHEN v.attr = ")
                .bind_text(leaf.attr.clone())
                .push(" THEN v.value END AS ")
                .push(ty)
                .push(")")
                .push(sym)
                .push("CAST(")
                .bind_text(n.to_string())
                .push(" AS ")
                .push(ty)
                .push(")");
        }
        AttrType::DateTime => {
            if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                return Err(invalid(format!(
                    "\"{path}\" is a dateTime; co, sw and ew apply only to strings, use eq, gt, ge, lt or le"
                )));
            }
            let raw = value.as_text().unwrap_or_default();
            let normal = scim_core::datetime::normalize(&raw).ok_or_else(|| {
                invalid(format!(
                    "\"{raw}\" is not a dateTime; \"{path}\" needs an RFC 3339 date-time such as \"2011-05-13T04:42:34Z\""
                ))
            })?;
            // Stored lowered like every value_ci; the fixed form keeps its
            // text order (`t` and `z` sit at fixed places).
            let c = hashed("v.value_ci", true, Kind::TextCi);
            push_compare(b, c, op, &CompValue::String(normal), path)?;
        }
        _ if leaf.case_exact => {
            if op == CompareOp::Eq {
                // The lowered copy finds the rows through the index, the
                // value as written makes the match exact.
                push_compare(b, hashed("v.value_ci", true, Kind::TextCi), op, value, path)?;
                b.push(" AND ");
            }
            push_compare(b, col("v.value", true, Kind::TextExact), op, value, path)?;
        }
        _ => push_compare(b, hashed("v.value_ci", true, Kind::TextCi), op, value, path)?,
    }
    b.push(")");
    Ok(())
}

/// The sort key of a custom extension attribute: its first value
/// (`idx` order), as its type orders.
fn custom_sort_key(b: &mut SqlBuilder, leaf: &CustomLeaf) {
    let expr = match leaf.ty {
        AttrType::Integer | AttrType::Decimal => None,
        _ if leaf.case_exact && matches!(leaf.ty, AttrType::String | AttrType::Reference) => {
            Some("v.value")
        }
        _ => Some("v.value_ci"),
    };
    b.push("(SELECT ");
    match expr {
        Some(e) => {
            b.push(e);
        }
        None => {
            let ty = numeric_type(b);
            b.push("CAST(v.value AS ").push(ty).push(")");
        }
    }
    b.push(" FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
        .bind_text(leaf.attr.clone())
        .push(" ORDER BY v.idx LIMIT 1)");
}

/// The numeric SQL type of the `sortBy` key of `path` when it is a custom
/// number (`integer` or `decimal`), which keyset pages compare as numbers:
/// the position holds the value's text ([`push_sort_text`]), cast like the
/// key on both sides of each comparison.
pub(crate) fn sort_key_number_type(
    b: &SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Option<&'static str> {
    matches!(
        resolve(res, path),
        Ok(Field::Custom(CustomLeaf {
            ty: AttrType::Integer | AttrType::Decimal,
            ..
        }))
    )
    .then(|| numeric_type(b))
}

/// For a custom number's `sortBy` key ([`sort_key_number_type`]): the
/// text of the value it is cast from (its first value as written), which
/// a keyset position keeps so that casting it again gives exactly the key.
pub(crate) fn push_sort_text(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Result<(), StoreError> {
    match resolve(res, path)? {
        Field::Custom(leaf) => {
            b.push("(SELECT v.value FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
                .bind_text(leaf.attr)
                .push(" ORDER BY v.idx LIMIT 1)");
            Ok(())
        }
        _ => Err(StoreError::Internal(format!(
            "\"{path}\" is not a custom number"
        ))),
    }
}

/// How to rebuild `outer.inner` paths for `name[givenName eq "x"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathPrefix {
    urn: Option<String>,
    attr: String,
}

fn not_filterable(res: Resource, path: &AttrPath) -> StoreError {
    let detail = match res {
        Resource::User(..) => format!(
            "attribute \"{path}\" is not filterable; filterable attributes are id, userName, \
             externalId, displayName, active, meta.created, meta.lastModified, meta.resourceType, \
             nickName, profileUrl, title, userType, preferredLanguage, locale, timezone, \
             name.(formatted|familyName|givenName|middleName|honorificPrefix|honorificSuffix), \
             emails, phoneNumbers, ims, photos, entitlements, roles, x509Certificates \
             (.value|.display|.type|.primary), addresses \
             (.formatted|.streetAddress|.locality|.region|.postalCode|.country|.type|.primary), \
             groups (.value|.display), \
             {ENTERPRISE_USER_URN}:(employeeNumber|costCenter|organization|division|department|manager.value), \
             and the attributes of the custom extensions listed at /Schemas"
        ),
        Resource::Group(_) => format!(
            "attribute \"{path}\" is not filterable; filterable Group attributes are id, \
             displayName, externalId, meta.created, meta.lastModified, meta.resourceType, \
             and members (.value|.type)"
        ),
    };
    StoreError::Invalid(ScimError::invalid_filter(detail))
}

fn find_ci<'a>(names: &[&'a str], wanted: &str) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(wanted))
}

/// Resolves a path against the resource's allow-list (names match
/// case-insensitively, RFC 7643 §2.1).
fn resolve(res: Resource, path: &AttrPath) -> Result<Field, StoreError> {
    match res {
        Resource::User(UserType(rt), _) => resolve_user(res, rt, path),
        Resource::Group(_) => resolve_group(res, path),
    }
}

/// `meta.created`, `meta.lastModified`, `meta.resourceType` over `alias`.
fn resolve_meta(res: Resource, path: &AttrPath) -> Result<Field, StoreError> {
    let (created, last_modified) = match res {
        Resource::User(..) => ("u.created", "u.last_modified"),
        Resource::Group(_) => ("g.created", "g.last_modified"),
    };
    match path
        .sub_attr
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("created") => Ok(Field::Column(col(created, false, Kind::Date))),
        Some("lastmodified") => Ok(Field::Column(col(last_modified, false, Kind::Date))),
        Some("resourcetype") => Ok(Field::ResourceType),
        _ => Err(not_filterable(res, path)),
    }
}

fn resolve_relation(
    res: Resource,
    rel: &'static Relation,
    path: &AttrPath,
) -> Result<Field, StoreError> {
    let sub = match path.sub_attr.as_deref() {
        None => None,
        Some(s) => Some(
            rel.subs
                .iter()
                .copied()
                .find(|c| c.name.eq_ignore_ascii_case(s))
                .ok_or_else(|| not_filterable(res, path))?,
        ),
    };
    Ok(Field::Relation { rel, sub })
}

fn resolve_group(res: Resource, path: &AttrPath) -> Result<Field, StoreError> {
    match path.urn.as_deref() {
        None => {}
        Some(urn) if urn.eq_ignore_ascii_case(GROUP_URN) => {}
        Some(_) => return Err(not_filterable(res, path)),
    }
    let simple = |f: Field| {
        if path.sub_attr.is_none() {
            Ok(f)
        } else {
            Err(not_filterable(res, path))
        }
    };
    match path.attr.to_ascii_lowercase().as_str() {
        "id" => simple(Field::Column(col("g.id", false, Kind::TextExact))),
        // displayName is unique case-insensitively (Entra ID), so it is
        // compared through its lowered column.
        "displayname" => simple(Field::Column(hashed(
            "g.display_name_ci",
            false,
            Kind::TextCi,
        ))),
        "externalid" => simple(Field::Column(hashed(
            "g.external_id",
            true,
            Kind::TextExact,
        ))),
        "meta" => resolve_meta(res, path),
        "members" => resolve_relation(res, &GROUP_MEMBERS, path),
        _ => Err(not_filterable(res, path)),
    }
}

fn resolve_user(
    res: Resource,
    rt: &'static ResourceType,
    path: &AttrPath,
) -> Result<Field, StoreError> {
    let enterprise = match path.urn.as_deref() {
        None => false,
        Some(urn) if urn.eq_ignore_ascii_case(CORE_USER_URN) => false,
        Some(urn) if urn.eq_ignore_ascii_case(ENTERPRISE_USER_URN) => true,
        Some(urn) if scim_core::extensions::is_custom(urn) => {
            return resolve_custom(rt, path).ok_or_else(|| not_filterable(res, path))
        }
        Some(_) => return Err(not_filterable(res, path)),
    };
    let attr = path.attr.as_str();
    let sub = path.sub_attr.as_deref();
    let lower = attr.to_ascii_lowercase();
    if enterprise {
        if let Some(name) = find_ci(ENTERPRISE_SINGLE, attr) {
            return match sub {
                None => Ok(Field::Single(SingleLeaf {
                    attr: format!("{ENTERPRISE_USER_URN}:{name}"),
                    case_exact: false,
                })),
                Some(_) => Err(not_filterable(res, path)),
            };
        }
        if lower == "manager" {
            let leaf = SingleLeaf {
                attr: MANAGER_VALUE_ATTR.to_owned(),
                case_exact: true,
            };
            return match sub {
                Some(s) if s.eq_ignore_ascii_case("value") => Ok(Field::Single(leaf)),
                None => Ok(Field::Complex {
                    leaves: vec![leaf],
                    prefix: PathPrefix {
                        urn: Some(ENTERPRISE_USER_URN.to_owned()),
                        attr: "manager".to_owned(),
                    },
                }),
                Some(_) => Err(not_filterable(res, path)),
            };
        }
        return Err(not_filterable(res, path));
    }
    let simple = |f: Field| {
        if sub.is_none() {
            Ok(f)
        } else {
            Err(not_filterable(res, path))
        }
    };
    match lower.as_str() {
        "id" => return simple(Field::Column(col("u.id", false, Kind::TextExact))),
        "username" => return simple(Field::Column(hashed("u.user_name_ci", false, Kind::TextCi))),
        "externalid" => {
            return simple(Field::Column(hashed(
                "u.external_id",
                true,
                Kind::TextExact,
            )))
        }
        "displayname" => {
            return simple(Field::Column(hashed(
                "u.display_name_ci",
                true,
                Kind::TextCi,
            )))
        }
        "active" => return simple(Field::Column(col("u.active", false, Kind::Bool))),
        "meta" => return resolve_meta(res, path),
        "groups" => return resolve_relation(res, &USER_GROUPS, path),
        "name" => {
            let leaf = |s: &str| SingleLeaf {
                attr: format!("name.{s}"),
                case_exact: false,
            };
            return match sub {
                None => Ok(Field::Complex {
                    leaves: NAME_SUBS.iter().map(|s| leaf(s)).collect(),
                    prefix: PathPrefix {
                        urn: None,
                        attr: "name".to_owned(),
                    },
                }),
                Some(s) => match find_ci(NAME_SUBS, s) {
                    Some(canonical) => Ok(Field::Single(leaf(canonical))),
                    None => Err(not_filterable(res, path)),
                },
            };
        }
        _ => {}
    }
    if let Some((name, exact)) = CORE_SINGLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(attr))
    {
        return simple(Field::Single(SingleLeaf {
            attr: (*name).to_owned(),
            case_exact: *exact,
        }));
    }
    if let Some(multi) = MULTI_ATTRS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(attr))
    {
        let sub = match sub {
            None => None,
            Some(s) => Some(
                multi
                    .subs
                    .iter()
                    .copied()
                    .find(|c| c.name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| not_filterable(res, path))?,
            ),
        };
        return Ok(Field::Multi { attr: *multi, sub });
    }
    Err(not_filterable(res, path))
}

/// The kind of comparison a column supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text compared after lowering the literal (caseExact false).
    TextCi,
    /// Text compared as given (caseExact true).
    TextExact,
    /// A boolean.
    Bool,
    /// A dateTime in the fixed stored form.
    Date,
}

fn kind_for(case_exact: bool) -> Kind {
    if case_exact {
        Kind::TextExact
    } else {
        Kind::TextCi
    }
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid(ScimError::invalid_filter(detail))
}

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Co => "co",
        CompareOp::Sw => "sw",
        CompareOp::Ew => "ew",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
    }
}

/// Writes a two-valued comparison `column op value` (op is never `ne`;
/// callers negate `eq`). `nullable` columns get an `IS NOT NULL` guard so a
/// missing value compares false rather than NULL.
fn push_compare(
    b: &mut SqlBuilder,
    c: Column,
    op: CompareOp,
    value: &CompValue,
    path: &AttrPath,
) -> Result<(), StoreError> {
    let Column {
        sql: column,
        nullable,
        kind,
        hashed,
    } = c;
    match kind {
        Kind::Bool => {
            let Some(v) = value.as_bool() else {
                return Err(invalid(format!(
                    "\"{path}\" is a boolean; compare it with true or false"
                )));
            };
            if op != CompareOp::Eq {
                return Err(invalid(format!(
                    "\"{path}\" is a boolean; only eq and ne apply to it (RFC 7644 §3.4.2.2), not {}",
                    op_name(op)
                )));
            }
            if nullable {
                // An absent `primary` is false (RFC 7643 §2.4).
                b.push("COALESCE(").push(column).push(", FALSE) = ");
            } else {
                b.push(column).push(" = ");
            }
            b.bind(Bind::Bool(v));
            Ok(())
        }
        Kind::TextCi | Kind::TextExact | Kind::Date => {
            // An unquoted `true` or number reads as its text here
            // (`CompValue::as_text`, docs/SCIM.md).
            let Some(raw) = value.as_text() else {
                return Err(invalid(format!(
                    "\"{path}\" is a {}; compare it with a quoted string",
                    if kind == Kind::Date {
                        "dateTime"
                    } else {
                        "string"
                    }
                )));
            };
            let literal = match kind {
                Kind::TextCi => raw.to_lowercase(),
                Kind::TextExact => raw.clone().into_owned(),
                Kind::Date => scim_core::datetime::normalize(&raw).ok_or_else(|| {
                    invalid(format!(
                        "\"{raw}\" is not a dateTime; \"{path}\" needs an RFC 3339 date-time such as \"2011-05-13T04:42:34Z\""
                    ))
                })?,
                Kind::Bool => {
                    return Err(invalid(format!(
                        "\"{path}\" is a boolean; compare it with true or false"
                    )))
                }
            };
            if nullable {
                b.push("(").push(column).push(" IS NOT NULL AND ");
            }
            match op {
                CompareOp::Eq | CompareOp::Ne if hashed => {
                    b.push_hashed_eq(column, literal);
                }
                CompareOp::Eq | CompareOp::Ne => {
                    b.push(column).push(" = ").bind_text(literal);
                }
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                    let sym = match op {
                        CompareOp::Gt => " > ",
                        CompareOp::Ge => " >= ",
                        CompareOp::Lt => " < ",
                        _ => " <= ",
                    };
                    b.push(column).push(sym).bind_text(literal);
                }
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                    if kind == Kind::Date {
                        return Err(invalid(format!(
                            "\"{path}\" is a dateTime; co, sw and ew apply only to strings, use eq, gt, ge, lt or le"
                        )));
                    }
                    let pk = match op {
                        CompareOp::Co => PatternKind::Contains,
                        CompareOp::Sw => PatternKind::StartsWith,
                        _ => PatternKind::EndsWith,
                    };
                    b.push_pattern(column, pk, &literal);
                }
            }
            if nullable {
                b.push(")");
            }
            Ok(())
        }
    }
}

/// The `user_values` attrs a complex attribute's presence is judged by.
fn push_attr_in(b: &mut SqlBuilder, leaves: &[SingleLeaf]) {
    b.push("v.attr IN (");
    for (i, leaf) in leaves.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.bind_text(leaf.attr.clone());
    }
    b.push(")");
}

/// Appends the SQL condition (over the resource's aliased table, `users u`
/// or `groups g`) for `filter`.
pub(crate) fn push_filter(
    b: &mut SqlBuilder,
    res: Resource,
    filter: &Filter,
) -> Result<(), StoreError> {
    expr(b, res, filter, 0)
}

/// Appends the condition over one row of `rel`'s table for a value filter
/// such as the `[…]` of the PATCH path `members[value eq "x"]` (RFC 7644
/// §3.5.2), whose paths name `rel`'s sub-attributes.
pub(crate) fn push_element_filter(
    b: &mut SqlBuilder,
    rel: &'static Relation,
    filter: &Filter,
) -> Result<(), StoreError> {
    elem_expr(b, Elements::Rel(rel), filter, 0)
}

fn expr(
    b: &mut SqlBuilder,
    res: Resource,
    filter: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            let joiner = if matches!(filter, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            expr(b, res, l, depth + 1)?;
            b.push(joiner);
            expr(b, res, r, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            expr(b, res, inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Filter::Present(path) => present(b, res, path),
        Filter::Compare(path, op, value) => compare(b, res, path, *op, value),
        Filter::ValuePath(path, inner) => value_path(b, res, path, inner, depth),
    }
}

/// `<id> [NOT] IN (SELECT <owner> FROM <rel> WHERE <base> AND ` — the
/// caller appends the row condition and the closing parenthesis.
fn push_relation_in(b: &mut SqlBuilder, res: Resource, rel: &Relation, negate: bool) {
    b.push(res.id_column())
        .push(if negate { " NOT IN" } else { " IN" })
        .push(" (SELECT ")
        .push(rel.owner_key)
        .push(" FROM ")
        .push(rel.from)
        .push(" WHERE ")
        .push(rel.base_cond)
        .push(" AND ");
}

/// `rel`'s `value` sub-attribute: what `members eq "x"` compares
/// (RFC 7644 §3.4.2.2, a multi-valued attribute without a sub-attribute).
fn relation_value(rel: &Relation, path: &AttrPath) -> Result<RelSub, StoreError> {
    rel.subs
        .iter()
        .copied()
        .find(|s| s.name == "value")
        .ok_or_else(|| {
            invalid(format!(
                "\"{path}\" has no value sub-attribute; filter on one of its sub-attributes"
            ))
        })
}

fn present(b: &mut SqlBuilder, res: Resource, path: &AttrPath) -> Result<(), StoreError> {
    match resolve(res, path)? {
        // Empty strings are stored as NULL, so presence is non-NULL; a NOT
        // NULL column is always present on a stored resource.
        Field::Column(c) => {
            if c.nullable {
                b.push(c.sql).push(" IS NOT NULL");
            } else {
                b.push("1 = 1");
            }
        }
        Field::ResourceType => {
            b.push("1 = 1");
        }
        Field::Single(leaf) => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr)
                .push(")");
        }
        Field::Custom(leaf) => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr)
                .push(")");
        }
        Field::Complex { leaves, .. } => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND ");
            push_attr_in(b, &leaves);
            b.push(")");
        }
        Field::Multi { attr, sub } => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name);
            if let Some(col) = sub {
                b.push(" AND ").push(col.column()).push(" IS NOT NULL");
            }
            b.push(")");
        }
        Field::Relation { rel, sub } => {
            // EXISTS probes the owner's rows through an index instead of
            // collecting every owner of any row.
            b.push("EXISTS (SELECT 1 FROM ")
                .push(rel.from)
                .push(" WHERE ")
                .push(rel.owner_key)
                .push(" = ")
                .push(res.id_column())
                .push(" AND ")
                .push(rel.base_cond);
            if let Some(s) = sub.filter(|s| s.column.nullable) {
                b.push(" AND ").push(s.column.sql).push(" IS NOT NULL");
            }
            b.push(")");
        }
    }
    Ok(())
}

/// `attr eq null` / `attr ne null`: absence / presence.
fn compare_null(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
) -> Result<(), StoreError> {
    match op {
        CompareOp::Eq => {
            b.push("NOT (");
            present(b, res, path)?;
            b.push(")");
            Ok(())
        }
        CompareOp::Ne => present(b, res, path),
        other => Err(invalid(format!(
            "null can only be compared with eq or ne, not {}",
            op_name(other)
        ))),
    }
}

fn compare(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<(), StoreError> {
    if matches!(value, CompValue::Null) {
        return compare_null(b, res, path, op);
    }
    let field = resolve(res, path)?;
    // `ne` is `not eq`: with two-valued `eq` this matches resources lacking
    // the attribute too.
    let (negate, op) = if op == CompareOp::Ne {
        (true, CompareOp::Eq)
    } else {
        (false, op)
    };
    match field {
        Field::Column(c) => {
            if negate {
                b.push("NOT (");
            }
            push_compare(b, c, op, value, path)?;
            if negate {
                b.push(")");
            }
            Ok(())
        }
        Field::ResourceType => resource_type(b, res, path, op, negate, value),
        Field::Custom(leaf) => custom_compare(b, res, &leaf, op, negate, value, path),
        Field::Single(leaf) => {
            b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
            b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr.clone())
                .push(" AND ");
            let c = hashed("v.value_ci", true, kind_for(leaf.case_exact));
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
        Field::Complex { .. } => Err(invalid(format!(
            "\"{path}\" is complex; compare one of its sub-attributes (e.g. \"{path}.{}\")",
            if path.attr.eq_ignore_ascii_case("name") {
                "familyName"
            } else {
                "value"
            }
        ))),
        Field::Multi { attr, sub } => {
            // `emails eq "x"` means `emails.value eq "x"` (RFC 7644 §3.4.2.2
            // for multi-valued attributes without a sub-attribute).
            let col = match sub {
                Some(c) => c,
                None if attr.subs.contains(&ElemCol::Value) => ElemCol::Value,
                None => {
                    return Err(invalid(format!(
                        "\"{path}\" has no value sub-attribute; filter on one of its sub-attributes, e.g. \"{path}.locality\""
                    )))
                }
            };
            b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
            b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name)
                .push(" AND ");
            let c = values_column(attr, col);
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
        Field::Relation { rel, sub } => {
            let sub = match sub {
                Some(s) => s,
                None => relation_value(rel, path)?,
            };
            push_relation_in(b, res, rel, negate);
            let c = sub.column;
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
    }
}

/// The column of an element row `v` of `user_values` for a sub-attribute
/// of `attr`.
fn values_column(attr: MultiAttr, c: ElemCol) -> Column {
    let kind = match c {
        ElemCol::Primary => Kind::Bool,
        ElemCol::Value => kind_for(attr.value_case_exact),
        _ => Kind::TextCi,
    };
    if c == ElemCol::Value {
        hashed(c.column(), true, kind)
    } else {
        col(c.column(), true, kind)
    }
}

/// `meta.resourceType` is a constant per resource type (caseExact, RFC
/// 7643 §3.1): decide in Rust and emit a constant condition.
fn resource_type(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
    negate: bool,
    value: &CompValue,
) -> Result<(), StoreError> {
    let Some(lit) = value.as_text() else {
        return Err(invalid(format!(
            "\"{path}\" is a string; compare it with a quoted string"
        )));
    };
    let rt = res.type_name();
    let lit = lit.as_ref();
    let hit = match op {
        CompareOp::Eq | CompareOp::Ne => rt == lit,
        CompareOp::Co => rt.contains(lit),
        CompareOp::Sw => rt.starts_with(lit),
        CompareOp::Ew => rt.ends_with(lit),
        CompareOp::Gt => rt > lit,
        CompareOp::Ge => rt >= lit,
        CompareOp::Lt => rt < lit,
        CompareOp::Le => rt <= lit,
    };
    b.push(if hit != negate { "1 = 1" } else { "1 = 0" });
    Ok(())
}

fn value_path(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    inner: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    match resolve(res, path)? {
        Field::Multi { attr, sub: None } => {
            // One subquery: some element row satisfies the whole inner filter.
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name)
                .push(" AND ");
            elem_expr(b, Elements::Values(attr), inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Field::Relation { rel, sub: None } => {
            push_relation_in(b, res, rel, false);
            elem_expr(b, Elements::Rel(rel), inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Field::Complex { prefix, .. } => {
            // A single-valued complex attribute has one "element": the user
            // itself, so `name[givenName eq "x"]` is `name.givenName eq "x"`.
            let rewritten = prefix_paths(inner, &prefix, depth)?;
            expr(b, res, &rewritten, depth + 1)
        }
        _ => Err(invalid(format!(
            "\"{path}\" is not a multi-valued or complex attribute, so it cannot take a [filter]"
        ))),
    }
}

fn prefix_paths(f: &Filter, prefix: &PathPrefix, depth: usize) -> Result<Filter, StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    let sub = |p: &AttrPath| -> Result<AttrPath, StoreError> {
        if p.sub_attr.is_some() || p.urn.is_some() {
            return Err(invalid(format!(
                "inside {}[…] name a sub-attribute only, not \"{p}\"",
                prefix.attr
            )));
        }
        Ok(AttrPath {
            urn: prefix.urn.clone(),
            attr: prefix.attr.clone(),
            sub_attr: Some(p.attr.clone()),
        })
    };
    Ok(match f {
        Filter::And(l, r) => Filter::And(
            Box::new(prefix_paths(l, prefix, depth + 1)?),
            Box::new(prefix_paths(r, prefix, depth + 1)?),
        ),
        Filter::Or(l, r) => Filter::Or(
            Box::new(prefix_paths(l, prefix, depth + 1)?),
            Box::new(prefix_paths(r, prefix, depth + 1)?),
        ),
        Filter::Not(i) => Filter::Not(Box::new(prefix_paths(i, prefix, depth + 1)?)),
        Filter::Present(p) => Filter::Present(sub(p)?),
        Filter::Compare(p, op, v) => Filter::Compare(sub(p)?, *op, v.clone()),
        Filter::ValuePath(p, _) => {
            return Err(invalid(format!(
                "value filters cannot nest: \"{p}[…]\" inside {}[…]",
                prefix.attr
            )))
        }
    })
}

/// The element rows a value filter (`attr[…]`) is evaluated over.
#[derive(Debug, Clone, Copy)]
enum Elements {
    /// Rows `v` of `user_values` for a multi-valued User attribute.
    Values(MultiAttr),
    /// Rows of a relation's table.
    Rel(&'static Relation),
}

impl Elements {
    fn name(self) -> &'static str {
        match self {
            Elements::Values(a) => a.name,
            Elements::Rel(r) => r.name,
        }
    }

    fn column(self, sub: &str) -> Option<Column> {
        match self {
            Elements::Values(a) => a
                .subs
                .iter()
                .copied()
                .find(|c| c.name().eq_ignore_ascii_case(sub))
                .map(|c| values_column(a, c)),
            Elements::Rel(r) => r
                .subs
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(sub))
                .map(|s| s.column),
        }
    }

    fn sub_names(self) -> Vec<&'static str> {
        match self {
            Elements::Values(a) => a.subs.iter().map(|c| c.name()).collect(),
            Elements::Rel(r) => r.subs.iter().map(|s| s.name).collect(),
        }
    }
}

/// The condition over one element row for a value filter.
fn elem_expr(
    b: &mut SqlBuilder,
    elems: Elements,
    filter: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    let column_of = |p: &AttrPath| -> Result<Column, StoreError> {
        let found = if p.urn.is_none() && p.sub_attr.is_none() {
            elems.column(&p.attr)
        } else {
            None
        };
        found.ok_or_else(|| {
            invalid(format!(
                "\"{p}\" is not a filterable sub-attribute of {}; use one of {}",
                elems.name(),
                elems.sub_names().join(", ")
            ))
        })
    };
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            let joiner = if matches!(filter, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            elem_expr(b, elems, l, depth + 1)?;
            b.push(joiner);
            elem_expr(b, elems, r, depth + 1)?;
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            elem_expr(b, elems, inner, depth + 1)?;
            b.push(")");
        }
        Filter::Present(p) => {
            let c = column_of(p)?;
            b.push(c.sql).push(" IS NOT NULL");
        }
        Filter::Compare(p, op, value) => {
            let c = column_of(p)?;
            if matches!(value, CompValue::Null) {
                match op {
                    CompareOp::Eq => b.push(c.sql).push(" IS NULL"),
                    CompareOp::Ne => b.push(c.sql).push(" IS NOT NULL"),
                    other => {
                        return Err(invalid(format!(
                            "null can only be compared with eq or ne, not {}",
                            op_name(*other)
                        )))
                    }
                };
                return Ok(());
            }
            let (negate, op) = if *op == CompareOp::Ne {
                (true, CompareOp::Eq)
            } else {
                (false, *op)
            };
            if negate {
                b.push("NOT (");
            }
            push_compare(b, c, op, value, p)?;
            if negate {
                b.push(")");
            }
        }
        Filter::ValuePath(p, _) => {
            return Err(invalid(format!(
                "value filters cannot nest: \"{p}[…]\" inside {}[…]",
                elems.name()
            )))
        }
    }
    Ok(())
}

/// Whether the `sortBy` key of `path` is a boolean (`active`,
/// `emails.primary`): keyset pages read it back as text, so it is cast.
pub(crate) fn sort_key_is_bool(res: Resource, path: &AttrPath) -> bool {
    match resolve(res, path) {
        Ok(Field::Column(c)) => c.kind == Kind::Bool,
        Ok(Field::Multi {
            sub: Some(ElemCol::Primary),
            ..
        }) => true,
        _ => false,
    }
}

/// Appends the `sortBy` key expression (over the resource's aliased table)
/// for `path` (RFC 7644 §3.4.2.3). For a multi-valued User attribute the
/// key is the primary element's value, or the first element's.
pub(crate) fn push_sort_key(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Result<(), StoreError> {
    let sort_err = |p: &AttrPath| {
        StoreError::Invalid(ScimError::invalid_value(format!(
            "cannot sort by \"{p}\"; sortBy takes a filterable single-valued attribute or a multi-valued attribute's sub-attribute{}",
            match res {
                Resource::User(..) => "",
                Resource::Group(_) =>
                    " (for Groups: displayName, externalId, id, meta.created, meta.lastModified)",
            }
        )))
    };
    let field = resolve(res, path).map_err(|e| match e {
        StoreError::Invalid(_) => sort_err(path),
        other => other,
    })?;
    match field {
        Field::Column(c) => b.push(c.sql),
        Field::ResourceType => b.push(res.created_column()),
        Field::Single(leaf) => b
            .push("(SELECT v.value_ci FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
            .bind_text(leaf.attr)
            .push(")"),
        Field::Custom(leaf) => {
            custom_sort_key(b, &leaf);
            b
        }
        Field::Complex { .. } | Field::Relation { .. } => return Err(sort_err(path)),
        Field::Multi { attr, sub } => {
            let col = match sub {
                Some(c) => c,
                None if attr.subs.contains(&ElemCol::Value) => ElemCol::Value,
                None => return Err(sort_err(path)),
            };
            b.push("(SELECT ")
                .push(col.column())
                .push(" FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
                .bind_text(attr.name)
                .push(" ORDER BY COALESCE(v.is_primary, FALSE) DESC, v.idx LIMIT 1)")
        }
    };
    Ok(())
}

/// Whether `filter` names an attribute kept in another table than the
/// resource's own (`user_values`, `group_members`), which it reads through
/// a subquery ([`Resource::push_scope`]).
fn reads_other_table(res: Resource, filter: &Filter) -> bool {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            reads_other_table(res, a) || reads_other_table(res, b)
        }
        Filter::Not(a) => reads_other_table(res, a),
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => !matches!(
            resolve(res, p),
            Ok(Field::Column(_) | Field::ResourceType) | Err(_)
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::db::connection::Backend;

    fn sql(f: &Filter) -> Result<(String, Vec<Bind>), StoreError> {
        sql_for(Resource::USER, f)
    }

    fn sql_for(res: Resource, f: &Filter) -> Result<(String, Vec<Bind>), StoreError> {
        let mut b = SqlBuilder::new(Backend::Sqlite);
        push_filter(&mut b, res, f)?;
        Ok((b.sql(), b.binds().to_vec()))
    }

    fn cmp(path: AttrPath, op: CompareOp, v: &str) -> Filter {
        Filter::Compare(path, op, CompValue::String(v.into()))
    }

    #[test]
    fn user_name_is_lowered_and_bound() {
        let (s, binds) = sql(&cmp(AttrPath::new("USERNAME"), CompareOp::Eq, "Bob'--")).unwrap();
        assert_eq!(s, "u.user_name_ci = ?");
        assert_eq!(binds, vec![Bind::Text("bob'--".into())]);
    }

    /// On PostgreSQL, equality on a client-filled indexed column compares
    /// the MD5s (which the index holds) and the values (exactness); other
    /// operators and unindexed columns compare the values only.
    #[test]
    fn postgres_equality_on_indexed_text_compares_hashes_and_values() {
        let pg = |f: &Filter| {
            let mut b = SqlBuilder::new(Backend::Postgres);
            push_filter(&mut b, Resource::USER, f).unwrap();
            (b.sql(), b.binds().to_vec())
        };
        let (s, binds) = pg(&cmp(AttrPath::new("userName"), CompareOp::Eq, "Bob"));
        assert_eq!(s, "md5(u.user_name_ci) = md5($1) AND u.user_name_ci = $2");
        assert_eq!(
            binds,
            vec![Bind::Text("bob".into()), Bind::Text("bob".into())]
        );
        let (s, _) = pg(&cmp(AttrPath::new("externalId"), CompareOp::Ne, "X"));
        assert_eq!(
            s,
            "NOT ((u.external_id IS NOT NULL AND md5(u.external_id) = md5($1) AND u.external_id = $2))"
        );
        let (s, _) = pg(&cmp(
            AttrPath::with_sub("emails", "value"),
            CompareOp::Eq,
            "a@b",
        ));
        assert_eq!(
            s,
            "u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = $1 AND v.attr = $2 AND (v.value_ci IS NOT NULL AND md5(v.value_ci) = md5($3) AND v.value_ci = $4))"
        );
        let (s, _) = pg(&cmp(
            AttrPath::with_sub("emails", "type"),
            CompareOp::Eq,
            "work",
        ));
        assert!(!s.contains("md5"), "{s}");
        let (s, _) = pg(&cmp(AttrPath::new("userName"), CompareOp::Sw, "b"));
        assert_eq!(s, "u.user_name_ci LIKE $1 ESCAPE '\\'");
    }

    #[test]
    fn ne_on_nullable_column_is_negated_guarded_eq() {
        let (s, _) = sql(&cmp(AttrPath::new("externalId"), CompareOp::Ne, "X")).unwrap();
        assert_eq!(s, "NOT ((u.external_id IS NOT NULL AND u.external_id = ?))");
    }

    #[test]
    fn value_path_is_one_subquery() {
        let f = Filter::ValuePath(
            AttrPath::new("emails"),
            Box::new(Filter::And(
                Box::new(cmp(AttrPath::new("type"), CompareOp::Eq, "Work")),
                Box::new(cmp(AttrPath::new("value"), CompareOp::Co, "@X")),
            )),
        );
        let (s, binds) = sql(&f).unwrap();
        assert_eq!(
            s,
            "u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ? AND v.attr = ? AND ((v.type_ci IS NOT NULL AND v.type_ci = ?) AND (v.value_ci IS NOT NULL AND v.value_ci GLOB ?)))"
        );
        assert_eq!(
            binds,
            vec![
                Bind::Integer(1),
                Bind::Text("emails".into()),
                Bind::Text("work".into()),
                Bind::Text("*@x*".into())
            ]
        );
    }

    #[test]
    fn unknown_attributes_are_invalid_filter() {
        for path in [
            AttrPath::new("password"),
            AttrPath::with_sub("groups", "type"),
            AttrPath::with_sub("emails", "bogus"),
            AttrPath::with_sub("userName", "x"),
            AttrPath {
                urn: Some("urn:example:other".into()),
                attr: "department".into(),
                sub_attr: None,
            },
            // Enterprise attributes need their URN.
            AttrPath::new("department"),
        ] {
            match sql(&cmp(path.clone(), CompareOp::Eq, "x")) {
                Err(StoreError::Invalid(e)) => {
                    assert_eq!(e.scim_type, scim_core::ScimType::InvalidFilter, "{path}");
                    assert!(e.detail.contains("not filterable"), "{}", e.detail);
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn booleans_and_dates_reject_wrong_operators() {
        for f in [
            Filter::Compare(
                AttrPath::new("active"),
                CompareOp::Gt,
                CompValue::Bool(true),
            ),
            Filter::Compare(
                AttrPath::new("active"),
                CompareOp::Eq,
                CompValue::String("yes".into()),
            ),
            cmp(
                AttrPath::with_sub("meta", "lastModified"),
                CompareOp::Gt,
                "yesterday",
            ),
            cmp(AttrPath::with_sub("meta", "created"), CompareOp::Co, "2011"),
            Filter::Compare(AttrPath::new("title"), CompareOp::Gt, CompValue::Null),
        ] {
            assert!(matches!(sql(&f), Err(StoreError::Invalid(_))), "{f:?}");
        }
    }

    /// An unquoted `true` or number against a string attribute compares as
    /// its text (docs/SCIM.md, "Leniency").
    #[test]
    fn literals_against_strings_compare_as_text() {
        for (value, text) in [
            (CompValue::Bool(true), "true"),
            (CompValue::Number(42.into()), "42"),
        ] {
            let f = Filter::Compare(AttrPath::new("title"), CompareOp::Eq, value);
            let (_, binds) = sql(&f).unwrap();
            assert!(
                binds
                    .iter()
                    .any(|b| matches!(b, Bind::Text(t) if t == text)),
                "{binds:?}"
            );
        }
    }

    #[test]
    fn sort_keys_resolve() {
        let mut b = SqlBuilder::new(Backend::Postgres);
        push_sort_key(
            &mut b,
            Resource::USER,
            &AttrPath::with_sub("emails", "value"),
        )
        .unwrap();
        assert!(b
            .sql()
            .contains("ORDER BY COALESCE(v.is_primary, FALSE) DESC, v.idx LIMIT 1"));
        let mut b = SqlBuilder::new(Backend::Sqlite);
        assert!(push_sort_key(&mut b, Resource::USER, &AttrPath::new("password")).is_err());
        let mut b = SqlBuilder::new(Backend::Sqlite);
        push_sort_key(&mut b, Resource::GROUP, &AttrPath::new("DISPLAYNAME")).unwrap();
        assert_eq!(b.sql(), "g.display_name_ci");
        for bad in [AttrPath::new("members"), AttrPath::new("userName")] {
            let mut b = SqlBuilder::new(Backend::Sqlite);
            assert!(
                matches!(
                    push_sort_key(&mut b, Resource::GROUP, &bad),
                    Err(StoreError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn group_members_become_subqueries_on_group_members() {
        let f = Filter::ValuePath(
            AttrPath::new("members"),
            Box::new(cmp(AttrPath::new("value"), CompareOp::Eq, "ID-1")),
        );
        let (s, binds) = sql_for(Resource::GROUP, &f).unwrap();
        assert_eq!(
            s,
            "g.id IN (SELECT group_members.group_id FROM group_members WHERE 1 = 1 AND group_members.member_id = ?)"
        );
        assert_eq!(binds, vec![Bind::Text("ID-1".into())]);
        // `members.type` compares lowered (caseExact false).
        let (s, binds) = sql_for(
            Resource::GROUP,
            &cmp(AttrPath::with_sub("members", "TYPE"), CompareOp::Ne, "User"),
        )
        .unwrap();
        assert!(s.starts_with("g.id NOT IN (SELECT"), "{s}");
        assert!(s.contains("LOWER(group_members.member_type) = ?"), "{s}");
        assert_eq!(binds, vec![Bind::Text("user".into())]);
        // The displayName column is the lowered, unique one.
        let (s, _) = sql_for(
            Resource::GROUP,
            &cmp(AttrPath::new("displayName"), CompareOp::Eq, "X"),
        )
        .unwrap();
        assert_eq!(s, "g.display_name_ci = ?");
    }

    #[test]
    fn user_groups_join_the_group_for_display() {
        let (s, binds) = sql(&cmp(
            AttrPath::with_sub("groups", "display"),
            CompareOp::Sw,
            "Eng",
        ))
        .unwrap();
        assert_eq!(
            s,
            "u.id IN (SELECT gm.member_id FROM group_members gm JOIN groups gg ON gg.id = gm.group_id WHERE gm.member_type = 'User' AND gg.display_name_ci GLOB ?)"
        );
        assert_eq!(binds, vec![Bind::Text("eng*".into())]);
        let (s, _) = sql(&Filter::Present(AttrPath::new("groups"))).unwrap();
        assert!(
            s.starts_with("EXISTS (SELECT 1 FROM group_members gm"),
            "{s}"
        );
        assert!(s.contains("gm.member_id = u.id"), "{s}");
    }

    #[test]
    fn group_allow_list_refuses_user_attributes() {
        for path in [
            AttrPath::new("userName"),
            AttrPath::new("emails"),
            AttrPath::with_sub("members", "display"),
            AttrPath::with_sub("members", "$ref"),
            AttrPath::with_sub("displayName", "x"),
            AttrPath {
                urn: Some(CORE_USER_URN.into()),
                attr: "displayName".into(),
                sub_attr: None,
            },
        ] {
            match sql_for(Resource::GROUP, &cmp(path.clone(), CompareOp::Eq, "x")) {
                Err(StoreError::Invalid(e)) => {
                    assert_eq!(e.scim_type, scim_core::ScimType::InvalidFilter, "{path}");
                    assert!(e.detail.contains("Group attributes"), "{}", e.detail);
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        // URN-qualified core Group attributes are fine.
        let urn = AttrPath {
            urn: Some(GROUP_URN.into()),
            attr: "displayName".into(),
            sub_attr: None,
        };
        assert!(sql_for(Resource::GROUP, &cmp(urn, CompareOp::Eq, "x")).is_ok());
    }

    #[test]
    fn patch_member_filters_allow_display() {
        let f = Filter::Or(
            Box::new(cmp(AttrPath::new("value"), CompareOp::Eq, "a")),
            Box::new(cmp(AttrPath::new("display"), CompareOp::Eq, "Bob")),
        );
        let mut b = SqlBuilder::new(Backend::Postgres);
        push_element_filter(&mut b, &PATCH_MEMBERS, &f).unwrap();
        assert!(
            b.sql().starts_with("(group_members.member_id = $1 OR ("),
            "{}",
            b.sql()
        );
        assert_eq!(b.binds()[1], Bind::Text("bob".into()));
        let mut b = SqlBuilder::new(Backend::Postgres);
        let bad = cmp(AttrPath::new("primary"), CompareOp::Eq, "x");
        match push_element_filter(&mut b, &PATCH_MEMBERS, &bad) {
            Err(StoreError::Invalid(e)) => {
                assert!(e.detail.contains("value, type, display"), "{}", e.detail)
            }
            other => panic!("{other:?}"),
        }
    }
}
