//! The resource a filter or sort key runs over ([`Resource`]: its table,
//! its organization, its allow-list) and the resolution of an attribute
//! path against it ([`resolve`]): a column, rows of another table, or
//! `invalidFilter`.

use scim_core::filter::{AttrPath, Filter};
use scim_core::schema::{AttrType, ResourceType};
use scim_core::ScimError;

use crate::db::org::OrgId;
use crate::db::sql::{Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::attributes::{
    col, hashed, Column, ElemCol, Kind, MultiAttr, RelSub, Relation, SingleLeaf, CORE_SINGLE,
    CORE_USER_URN, ENTERPRISE_SINGLE, ENTERPRISE_USER_URN, GROUP_MEMBERS, GROUP_URN,
    MANAGER_VALUE_ATTR, MULTI_ATTRS, NAME_SUBS, USER_GROUPS,
};

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

    pub(super) fn id_column(self) -> &'static str {
        match self {
            Resource::User(..) => "u.id",
            Resource::Group(_) => "g.id",
        }
    }

    pub(super) fn created_column(self) -> &'static str {
        match self {
            Resource::User(..) => "u.created",
            Resource::Group(_) => "g.created",
        }
    }

    /// `meta.resourceType` (RFC 7643 §3.1).
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Resource::User(..) => "User",
            Resource::Group(_) => "Group",
        }
    }
}

/// What an attribute path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
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
    pub(super) attr: String,
    pub(super) ty: AttrType,
    pub(super) case_exact: bool,
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

/// How to rebuild `outer.inner` paths for `name[givenName eq "x"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathPrefix {
    pub(super) urn: Option<String>,
    pub(super) attr: String,
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
pub(super) fn resolve(res: Resource, path: &AttrPath) -> Result<Field, StoreError> {
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
