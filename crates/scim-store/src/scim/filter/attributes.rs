//! The allow-list: the attributes the store can filter and sort on, where
//! each one lives (a column of `users` or `groups`, rows of `user_values`
//! or `group_members`) and how it compares.

/// The core User schema URN (RFC 7643 §4.1), allowed as a prefix.
pub(crate) const CORE_USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN (RFC 7643 §4.2), allowed as a prefix.
pub(crate) const GROUP_URN: &str = scim_core::schema::GROUP_SCHEMA;
/// The enterprise User extension URN (RFC 7643 §4.3).
pub(crate) const ENTERPRISE_USER_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Single-valued core string attributes kept in `user_values`:
/// (canonical name, caseExact per RFC 7643 §4.1.1 / §8.7.1).
pub(super) const CORE_SINGLE: &[(&str, bool)] = &[
    ("nickName", false),
    ("profileUrl", false),
    ("title", false),
    ("userType", false),
    ("preferredLanguage", false),
    ("locale", false),
    ("timezone", false),
];
/// Sub-attributes of `name` (RFC 7643 §4.1.1), all caseExact false.
pub(super) const NAME_SUBS: &[&str] = &[
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
/// Single-valued enterprise string attributes (RFC 7643 §4.3).
pub(super) const ENTERPRISE_SINGLE: &[&str] = &[
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
    pub(super) fn column(self) -> &'static str {
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

/// A column of the resource's own table (or of an element table), with how
/// it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// The SQL expression (trusted text, never client input).
    pub(super) sql: &'static str,
    /// Whether it may be NULL (then comparisons get an `IS NOT NULL` guard).
    pub(super) nullable: bool,
    pub(super) kind: Kind,
    /// Whether its PostgreSQL index is on `md5(column)`, so that equality
    /// compares the hashes too (`SqlBuilder::push_hashed_eq`).
    pub(super) hashed: bool,
}

pub(super) const fn col(sql: &'static str, nullable: bool, kind: Kind) -> Column {
    Column {
        sql,
        nullable,
        kind,
        hashed: false,
    }
}

/// A client-filled text column indexed by its hash on PostgreSQL
/// (migration `20261206000000_bounded_index_keys`).
pub(super) const fn hashed(sql: &'static str, nullable: bool, kind: Kind) -> Column {
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
    pub(super) name: &'static str,
    pub(super) column: Column,
}

/// A multi-valued attribute kept as rows of another table (a group's
/// `members`, a user's `groups`): filters become a subquery on that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relation {
    /// The attribute's canonical name.
    pub(super) name: &'static str,
    /// The subquery's `FROM` (trusted text).
    pub(super) from: &'static str,
    /// The subquery column holding the owning resource's id.
    pub(super) owner_key: &'static str,
    /// A condition every row of the subquery must meet.
    pub(super) base_cond: &'static str,
    /// The sub-attributes that may be filtered on.
    pub(super) subs: &'static [RelSub],
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
pub(super) const USER_GROUPS: Relation = Relation {
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

/// The kind of comparison a column supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Text compared after lowering the literal (caseExact false).
    TextCi,
    /// Text compared as given (caseExact true).
    TextExact,
    /// A boolean.
    Bool,
    /// A dateTime in the fixed stored form.
    Date,
}
