//! Static descriptions of the schemas scimd implements: the core User
//! (RFC 7643 §4.1) with the Enterprise User extension (RFC 7643 §4.3), and
//! the core Group (RFC 7643 §4.2), with the attribute characteristics of
//! RFC 7643 §2.2 and §7, plus the common attributes of RFC 7643 §3.1.
//!
//! These descriptions drive everything schema-aware in scimd: request
//! normalisation, PATCH, projection, filter attribute resolution, and the
//! `/Schemas` and `/ResourceTypes` discovery documents (RFC 7644 §4).

use serde_json::{json, Map, Value};

/// The core User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The Enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The list response message (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PATCH request message (RFC 7644 §3.5.2).
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The search request message (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// The error response message (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The service provider configuration schema (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The resource type schema (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The schema of schema representations (RFC 7643 §7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The most values one resource may hold in a multi-valued attribute that
/// clients write (`emails`, `phoneNumbers`, `roles`, …), and the most one
/// request may give it. Group `members` is not capped: the store applies
/// membership changes row by row (`crate::members`).
///
/// A person has a handful of addresses of each kind; identity providers
/// send one value per `type`. The cap keeps every request's work on these
/// attributes small, whatever its size: a PATCH of 45,000 `emails` is
/// refused before any work proportional to it is done twice (docs/SCIM.md).
pub const MAX_VALUES: usize = 100;

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// A Unicode string (§2.3.1).
    String,
    /// `true` or `false` (§2.3.2).
    Boolean,
    /// A real number (§2.3.3).
    Decimal,
    /// A whole number (§2.3.4).
    Integer,
    /// An RFC 3339 date-time string (§2.3.5).
    DateTime,
    /// Base64-encoded binary (§2.3.6).
    Binary,
    /// A URI reference to a resource (§2.3.7).
    Reference,
    /// A set of sub-attributes (§2.3.8).
    Complex,
}

impl AttrType {
    /// The keyword used in schema representations (RFC 7643 §7 `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// When an attribute may be written (RFC 7643 §7 `mutability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// May be updated and read at any time.
    ReadWrite,
    /// May be set at creation (or added when unassigned), never changed.
    Immutable,
    /// May be written but is never returned.
    WriteOnly,
}

impl Mutability {
    /// The keyword used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned (RFC 7643 §7 `returned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded, or unless `attributes` omits it.
    Default,
    /// Returned only when named in `attributes`.
    Request,
}

impl Returned {
    /// The keyword used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// How unique an attribute's value is (RFC 7643 §7 `uniqueness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uniqueness {
    /// No uniqueness is enforced.
    None,
    /// Unique within this service provider.
    Server,
    /// Globally unique.
    Global,
}

impl Uniqueness {
    /// The keyword used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute of a schema, with the characteristics of RFC 7643 §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    /// The attribute name, in canonical case.
    pub name: &'static str,
    /// The data type.
    pub ty: AttrType,
    /// Whether the value is an array.
    pub multi_valued: bool,
    /// A human-readable description.
    pub description: &'static str,
    /// Whether a value must be present.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// When the attribute may be written.
    pub mutability: Mutability,
    /// When the attribute is returned.
    pub returned: Returned,
    /// How unique the value is.
    pub uniqueness: Uniqueness,
    /// Suggested values (advertised, never enforced: Entra sends its own).
    pub canonical_values: &'static [&'static str],
    /// For references: the resource types referred to (`User`, `Group`,
    /// `external`, `uri`).
    pub reference_types: &'static [&'static str],
    /// For complex attributes: the sub-attributes.
    pub sub_attributes: &'static [AttributeDef],
    /// For multi-valued attributes: the most values a resource may hold
    /// ([`MAX_VALUES`]), advertised in the `/Schemas` description; `None`
    /// for no cap.
    pub max_values: Option<usize>,
    /// Whether `canonical_values` are enforced on write: true for the
    /// attributes of custom extensions (`crate::extensions`), whose
    /// administrator chose the values; false for the built-in schemas,
    /// whose values identity providers extend with their own.
    pub canonical_enforced: bool,
}

impl AttributeDef {
    /// A single-valued, optional, case-insensitive, readWrite, default,
    /// non-unique attribute of type `ty`: RFC 7643 §2.2's defaults.
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            max_values: None,
            canonical_enforced: false,
        }
    }

    const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }

    const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::Boolean, description)
    }

    const fn reference(
        name: &'static str,
        types: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        let mut a = Self::new(name, AttrType::Reference, description);
        a.reference_types = types;
        a
    }

    const fn complex(
        name: &'static str,
        subs: &'static [AttributeDef],
        description: &'static str,
    ) -> Self {
        let mut a = Self::new(name, AttrType::Complex, description);
        a.sub_attributes = subs;
        a
    }

    /// Multi-valued, holding at most [`MAX_VALUES`] values.
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self.max_values = Some(MAX_VALUES);
        self
    }

    /// Without a cap on the number of values.
    const fn uncapped(mut self) -> Self {
        self.max_values = None;
        self
    }

    const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }

    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }

    const fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }

    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// The sub-attribute called `name` (case-insensitive, RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.sub_attributes, name)
    }

    /// The RFC 7643 §7 JSON representation of this attribute.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.ty.as_str()));
        m.insert("multiValued".into(), json!(self.multi_valued));
        let description = match self.max_values {
            Some(max) => format!("{} At most {max} values.", self.description),
            None => self.description.to_string(),
        };
        m.insert("description".into(), json!(description));
        m.insert("required".into(), json!(self.required));
        if !self.canonical_values.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        m.insert("caseExact".into(), json!(self.case_exact));
        m.insert("mutability".into(), json!(self.mutability.as_str()));
        m.insert("returned".into(), json!(self.returned.as_str()));
        m.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        if self.ty == AttrType::Reference {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if self.ty == AttrType::Complex {
            let subs: Vec<Value> = self.sub_attributes.iter().map(|s| s.to_json()).collect();
            m.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(m)
    }
}

/// Finds an attribute by name, case-insensitively (RFC 7643 §2.1).
fn find_attr(list: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    list.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A schema: a named set of attributes (RFC 7643 §7).
#[derive(Debug, PartialEq, Eq)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    /// The human-readable name.
    pub name: &'static str,
    /// A human-readable description.
    pub description: &'static str,
    /// The top-level attributes.
    pub attributes: &'static [AttributeDef],
}

impl Schema {
    /// The top-level attribute called `name` (case-insensitive).
    pub fn attr(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.attributes, name)
    }
}

/// An extension schema attached to a resource type (RFC 7643 §6
/// `schemaExtensions`).
#[derive(Debug)]
pub struct SchemaExtension {
    /// The extension schema.
    pub schema: &'static Schema,
    /// Whether every resource of the type must carry the extension.
    pub required: bool,
}

/// A resource type: its endpoint, core schema and extensions (RFC 7643 §6).
#[derive(Debug)]
pub struct ResourceType {
    /// The resource type name (`User`, `Group`), also its id.
    pub name: &'static str,
    /// The endpoint relative to the base URL (`/Users`).
    pub endpoint: &'static str,
    /// A human-readable description.
    pub description: &'static str,
    /// The core schema.
    pub schema: &'static Schema,
    /// The extension schemas.
    pub extensions: &'static [SchemaExtension],
}

const fn read_only(a: AttributeDef) -> AttributeDef {
    a.mutability(Mutability::ReadOnly)
}

/// The common attributes every resource has (RFC 7643 §3.1). They are not
/// part of any schema's `/Schemas` representation (by convention, as in
/// RFC 7643 §8.7.1), but filters, sorting and projection resolve them.
pub static COMMON_ATTRIBUTES: &[AttributeDef] = &[
    read_only(AttributeDef::string(
        "id",
        "A unique identifier for the resource, assigned by the service provider.",
    ))
    .case_exact()
    .returned(Returned::Always)
    .unique(Uniqueness::Server),
    AttributeDef::string(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    read_only(AttributeDef::complex(
        "meta",
        META_SUBS,
        "Resource metadata maintained by the service provider.",
    )),
];

static META_SUBS: &[AttributeDef] = &[
    read_only(AttributeDef::string(
        "resourceType",
        "The name of the resource type of the resource.",
    ))
    .case_exact(),
    read_only(AttributeDef::new(
        "created",
        AttrType::DateTime,
        "When the resource was added to the service provider.",
    )),
    read_only(AttributeDef::new(
        "lastModified",
        AttrType::DateTime,
        "When the resource was last modified.",
    )),
    read_only(AttributeDef::reference(
        "location",
        &["uri"],
        "The URI of the resource.",
    ))
    .case_exact(),
    read_only(AttributeDef::string(
        "version",
        "The version (ETag) of the resource.",
    ))
    .case_exact(),
];

/// `value`, `display`, `type` and `primary`: the sub-attributes of the
/// multi-valued attributes of RFC 7643 §2.4 with a string value.
macro_rules! multi_subs {
    ($value_desc:expr, $types:expr) => {
        &[
            AttributeDef::string("value", $value_desc),
            AttributeDef::string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            AttributeDef::string("type", "A label indicating the attribute's function.")
                .canonical($types),
            AttributeDef::boolean(
                "primary",
                "Indicates the 'primary' or preferred attribute value for this attribute.",
            ),
        ]
    };
}

static NAME_SUBS: &[AttributeDef] = &[
    AttributeDef::string(
        "formatted",
        "The full name, including all middle names, titles and suffixes, formatted for display.",
    ),
    AttributeDef::string("familyName", "The family name of the User, or last name."),
    AttributeDef::string("givenName", "The given name of the User, or first name."),
    AttributeDef::string("middleName", "The middle name(s) of the User."),
    AttributeDef::string(
        "honorificPrefix",
        "The honorific prefix(es) of the User, or title (e.g. 'Ms.').",
    ),
    AttributeDef::string(
        "honorificSuffix",
        "The honorific suffix(es) of the User, or suffix (e.g. 'III').",
    ),
];

static EMAIL_SUBS: &[AttributeDef] =
    multi_subs!("Email address for the User.", &["work", "home", "other"]);
static PHONE_SUBS: &[AttributeDef] = multi_subs!(
    "Phone number of the User.",
    &["work", "home", "mobile", "fax", "pager", "other"]
);
static IMS_SUBS: &[AttributeDef] = multi_subs!(
    "Instant messaging address for the User.",
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
);
static PHOTO_SUBS: &[AttributeDef] = &[
    AttributeDef::reference("value", &["external"], "URL of a photo of the User.").case_exact(),
    AttributeDef::string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    AttributeDef::string("type", "A label indicating the attribute's function.")
        .canonical(&["photo", "thumbnail"]),
    AttributeDef::boolean("primary", "Indicates the 'primary' or preferred photo."),
];
static ADDRESS_SUBS: &[AttributeDef] = &[
    AttributeDef::string(
        "formatted",
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    AttributeDef::string("streetAddress", "The full street address component."),
    AttributeDef::string("locality", "The city or locality component."),
    AttributeDef::string("region", "The state or region component."),
    AttributeDef::string("postalCode", "The zip code or postal code component."),
    AttributeDef::string("country", "The country name component."),
    AttributeDef::string("type", "A label indicating the attribute's function.")
        .canonical(&["work", "home", "other"]),
    AttributeDef::boolean("primary", "Indicates the 'primary' or preferred address."),
];
static USER_GROUP_SUBS: &[AttributeDef] = &[
    read_only(AttributeDef::string(
        "value",
        "The identifier of the User's group.",
    ))
    .case_exact(),
    read_only(AttributeDef::reference(
        "$ref",
        &["User", "Group"],
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    ))
    .case_exact(),
    read_only(AttributeDef::string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    )),
    read_only(AttributeDef::string(
        "type",
        "A label indicating the attribute's function, e.g. 'direct' or 'indirect'.",
    ))
    .canonical(&["direct", "indirect"]),
];
static ENTITLEMENT_SUBS: &[AttributeDef] = multi_subs!("The value of an entitlement.", &[]);
static ROLE_SUBS: &[AttributeDef] = multi_subs!("The value of a role.", &[]);
static X509_SUBS: &[AttributeDef] = &[
    AttributeDef::new(
        "value",
        AttrType::Binary,
        "The value of an X.509 certificate.",
    )
    .case_exact(),
    AttributeDef::string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    AttributeDef::string("type", "A label indicating the attribute's function."),
    AttributeDef::boolean(
        "primary",
        "Indicates the 'primary' or preferred certificate.",
    ),
];

static USER_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::string(
        "userName",
        "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.",
    )
    .required()
    .unique(Uniqueness::Server),
    AttributeDef::complex("name", NAME_SUBS, "The components of the user's real name."),
    AttributeDef::string("displayName", "The name of the User, suitable for display to end-users."),
    AttributeDef::string("nickName", "The casual way to address the user in real life."),
    AttributeDef::reference("profileUrl", &["external"], "A fully qualified URL pointing to a page representing the User's online profile."),
    AttributeDef::string("title", "The user's title, such as \"Vice President\"."),
    AttributeDef::string("userType", "Used to identify the relationship between the organization and the user."),
    AttributeDef::string("preferredLanguage", "Indicates the User's preferred written or spoken language (RFC 7231 Accept-Language format)."),
    AttributeDef::string("locale", "Used to indicate the User's default location for localization purposes."),
    AttributeDef::string("timezone", "The User's time zone in the 'Olson' time zone database format."),
    AttributeDef::boolean("active", "A Boolean value indicating the User's administrative status."),
    AttributeDef::string("password", "The User's cleartext password, used to set or replace it; never returned.")
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
    AttributeDef::complex("emails", EMAIL_SUBS, "Email addresses for the user.").multi(),
    AttributeDef::complex("phoneNumbers", PHONE_SUBS, "Phone numbers for the User.").multi(),
    AttributeDef::complex("ims", IMS_SUBS, "Instant messaging addresses for the User.").multi(),
    AttributeDef::complex("photos", PHOTO_SUBS, "URLs of photos of the User.").multi(),
    AttributeDef::complex("addresses", ADDRESS_SUBS, "A physical mailing address for this User.").multi(),
    read_only(AttributeDef::complex("groups", USER_GROUP_SUBS, "A list of groups to which the user belongs.")).multi().uncapped(),
    AttributeDef::complex("entitlements", ENTITLEMENT_SUBS, "A list of entitlements for the User.").multi(),
    AttributeDef::complex("roles", ROLE_SUBS, "A list of roles for the User.").multi(),
    AttributeDef::complex("x509Certificates", X509_SUBS, "A list of certificates issued to the User.").multi(),
];

static MANAGER_SUBS: &[AttributeDef] = &[
    AttributeDef::string(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    )
    .case_exact(),
    AttributeDef::reference(
        "$ref",
        &["User"],
        "The URI of the SCIM resource representing the User's manager.",
    )
    .case_exact(),
    read_only(AttributeDef::string(
        "displayName",
        "The displayName of the User's manager.",
    )),
];

static ENTERPRISE_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::string(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person by the organization.",
    ),
    AttributeDef::string("costCenter", "Identifies the name of a cost center."),
    AttributeDef::string("organization", "Identifies the name of an organization."),
    AttributeDef::string("division", "Identifies the name of a division."),
    AttributeDef::string("department", "Identifies the name of a department."),
    AttributeDef::complex("manager", MANAGER_SUBS, "The User's manager."),
];

static MEMBER_SUBS: &[AttributeDef] = &[
    AttributeDef::string("value", "Identifier of the member of this Group.")
        .case_exact()
        .mutability(Mutability::Immutable),
    AttributeDef::reference(
        "$ref",
        &["User", "Group"],
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .case_exact()
    .mutability(Mutability::Immutable),
    AttributeDef::string(
        "type",
        "A label indicating the type of resource, e.g. 'User' or 'Group'.",
    )
    .canonical(&["User", "Group"])
    .mutability(Mutability::Immutable),
    read_only(AttributeDef::string(
        "display",
        "A human-readable name for the member, filled in by the service provider.",
    )),
];

static GROUP_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::string("displayName", "A human-readable name for the Group.").required(),
    AttributeDef::complex("members", MEMBER_SUBS, "A list of members of the Group.")
        .multi()
        .uncapped(),
];

/// The core User schema (RFC 7643 §4.1, §8.7.1).
pub static USER_CORE: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};

/// The Enterprise User extension (RFC 7643 §4.3, §8.7.1).
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRIBUTES,
};

/// The core Group schema (RFC 7643 §4.2, §8.7.1).
pub static GROUP_CORE: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

/// Every resource schema scimd serves at `/Schemas`.
pub static SCHEMAS: &[&Schema] = &[&USER_CORE, &ENTERPRISE_USER, &GROUP_CORE];

/// The User resource type: core User plus the optional Enterprise User
/// extension (RFC 7643 §6, §8.6).
pub static USER: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_CORE,
    extensions: &[SchemaExtension {
        schema: &ENTERPRISE_USER,
        required: false,
    }],
};

/// The Group resource type (RFC 7643 §6, §8.6).
pub static GROUP: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_CORE,
    extensions: &[],
};

/// Every resource type scimd serves at `/ResourceTypes`.
pub static RESOURCE_TYPES: &[&ResourceType] = &[&USER, &GROUP];

/// The schema with this URN (case-insensitive), if scimd serves it.
pub fn find_schema(id: &str) -> Option<&'static Schema> {
    SCHEMAS
        .iter()
        .copied()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

/// An attribute (and optionally a sub-attribute) resolved against a
/// resource type's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedAttr {
    /// The schema the attribute belongs to (the core schema for the common
    /// attributes of RFC 7643 §3.1).
    pub schema: &'static Schema,
    /// The top-level attribute.
    pub attr: &'static AttributeDef,
    /// The sub-attribute, if the path named one.
    pub sub: Option<&'static AttributeDef>,
}

impl ResolvedAttr {
    /// The most specific attribute named: the sub-attribute if any.
    pub fn target(&self) -> &'static AttributeDef {
        self.sub.unwrap_or(self.attr)
    }

    /// Whether string comparison on the target is case-sensitive.
    pub fn case_exact(&self) -> bool {
        self.target().case_exact
    }

    /// The target's data type.
    pub fn ty(&self) -> AttrType {
        self.target().ty
    }

    /// Whether the attribute belongs to an extension schema, and so lives
    /// under the extension URN key in the canonical resource form.
    pub fn is_extension(&self) -> bool {
        !std::ptr::eq(self.schema, &USER_CORE) && !std::ptr::eq(self.schema, &GROUP_CORE)
    }

    /// The path in canonical case: `name.givenName`, or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`
    /// for extension attributes.
    pub fn canonical_path(&self) -> String {
        let mut out = String::new();
        if self.is_extension() {
            out.push_str(self.schema.id);
            out.push(':');
        }
        out.push_str(self.attr.name);
        if let Some(sub) = self.sub {
            out.push('.');
            out.push_str(sub.name);
        }
        out
    }
}

impl ResourceType {
    /// The extension schema with this URN (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(urn))
            .map(|e| e.schema)
    }

    /// The core schema followed by the extension schemas.
    pub fn schemas(&self) -> impl Iterator<Item = &'static Schema> + '_ {
        std::iter::once(self.schema).chain(self.extensions.iter().map(|e| e.schema))
    }

    /// Resolves `[urn:]attr[.sub]` against this resource type, with
    /// case-insensitive names (RFC 7643 §2.1).
    ///
    /// `urn` may be the core schema URN (the same as `None`) or an
    /// extension URN; an unknown URN resolves to nothing. Unqualified names
    /// find only core and common attributes: extension attributes need
    /// their URN (RFC 7644 §3.10).
    pub fn resolve(
        &self,
        urn: Option<&str>,
        attr: &str,
        sub_attr: Option<&str>,
    ) -> Option<ResolvedAttr> {
        let (schema, def) = match urn {
            Some(u) if !u.eq_ignore_ascii_case(self.schema.id) => {
                let ext = self.extension(u)?;
                (ext, ext.attr(attr)?)
            }
            _ => (
                self.schema,
                find_attr(COMMON_ATTRIBUTES, attr).or_else(|| self.schema.attr(attr))?,
            ),
        };
        let sub = match sub_attr {
            None => None,
            Some(s) => Some(def.sub(s)?),
        };
        Some(ResolvedAttr {
            schema,
            attr: def,
            sub,
        })
    }

    /// [`ResourceType::resolve`] on a parsed attribute path.
    pub fn resolve_path(&self, p: &crate::filter::AttrPath) -> Option<ResolvedAttr> {
        self.resolve(p.urn.as_deref(), &p.attr, p.sub_attr.as_deref())
    }

    /// Splits a written attribute path (`name.givenName`,
    /// `urn:…:enterprise:2.0:User:manager.value`) into its schema URN and
    /// the rest, matching the URN against this type's schemas
    /// case-insensitively. The URN itself contains dots (`2.0`), so it
    /// must be recognised before the rest is split on `.`.
    ///
    /// Returns `None` for a path with an unknown `urn:` prefix.
    pub fn split_urn<'a>(&self, path: &'a str) -> Option<(Option<&'static Schema>, &'a str)> {
        if !path
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            return Some((None, path));
        }
        for schema in self.schemas() {
            let n = schema.id.len();
            if path.len() > n
                && path.is_char_boundary(n)
                && path[..n].eq_ignore_ascii_case(schema.id)
                && path.as_bytes()[n] == b':'
            {
                return Some((Some(schema), &path[n + 1..]));
            }
        }
        None
    }

    /// Resolves a written attribute path (`userName`, `name.givenName`,
    /// `urn:…:enterprise:2.0:User:manager.value`) without the filter
    /// parser: the form used by the keys of a path-less PATCH value and by
    /// `resource::Projection::includes`.
    pub fn resolve_str(&self, path: &str) -> Option<ResolvedAttr> {
        let (schema, rest) = self.split_urn(path)?;
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        self.resolve(schema.map(|s| s.id), attr, sub)
    }
}

fn meta_json(resource_type: &str, location: String) -> Value {
    json!({ "resourceType": resource_type, "location": location })
}

/// The RFC 7643 §7 representation of a schema, as served at
/// `{location_base}/Schemas/{id}`. `location_base` is the service's base
/// URL (a trailing `/` is ignored).
pub fn schema_json(schema: &Schema, location_base: &str) -> Value {
    let base = location_base.trim_end_matches('/');
    let attributes: Vec<Value> = schema.attributes.iter().map(|a| a.to_json()).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": attributes,
        "meta": meta_json("Schema", format!("{base}/Schemas/{}", schema.id)),
    })
}

/// The RFC 7643 §6 representation of a resource type, as served at
/// `{location_base}/ResourceTypes/{name}`.
pub fn resource_type_json(rt: &ResourceType, location_base: &str) -> Value {
    let base = location_base.trim_end_matches('/');
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|e| json!({ "schema": e.schema.id, "required": e.required }))
        .collect();
    let mut m = Map::new();
    m.insert("schemas".into(), json!([RESOURCE_TYPE_SCHEMA]));
    m.insert("id".into(), json!(rt.name));
    m.insert("name".into(), json!(rt.name));
    m.insert("endpoint".into(), json!(rt.endpoint));
    m.insert("description".into(), json!(rt.description));
    m.insert("schema".into(), json!(rt.schema.id));
    if !extensions.is_empty() {
        m.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    m.insert(
        "meta".into(),
        meta_json("ResourceType", format!("{base}/ResourceTypes/{}", rt.name)),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// `(urn, attr, sub, expected canonical path)`.
    type ResolveCase<'a> = (Option<&'a str>, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn resolves_case_insensitively() {
        let cases: &[ResolveCase] = &[
            (None, "USERNAME", None, Some("userName")),
            (None, "name", Some("GIVENNAME"), Some("name.givenName")),
            (
                Some(USER_SCHEMA),
                "emails",
                Some("value"),
                Some("emails.value"),
            ),
            (
                Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
                "userName",
                None,
                Some("userName"),
            ),
            (
                Some(ENTERPRISE_USER_SCHEMA),
                "Department",
                None,
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            ),
            (
                Some(ENTERPRISE_USER_SCHEMA),
                "manager",
                Some("value"),
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            ),
            (
                None,
                "meta",
                Some("lastModified"),
                Some("meta.lastModified"),
            ),
            (None, "id", None, Some("id")),
            (None, "externalId", None, Some("externalId")),
            // Extension attributes need their URN.
            (None, "department", None, None),
            (Some("urn:example:unknown"), "userName", None, None),
            (None, "userName", Some("x"), None),
            (None, "nope", None, None),
            (Some(ENTERPRISE_USER_SCHEMA), "userName", None, None),
        ];
        for (urn, attr, sub, want) in cases {
            let got = USER.resolve(*urn, attr, *sub).map(|r| r.canonical_path());
            assert_eq!(got.as_deref(), *want, "{urn:?} {attr} {sub:?}");
        }
        assert!(GROUP.resolve(None, "members", Some("VALUE")).is_some());
        assert!(GROUP.resolve(None, "userName", None).is_none());
        assert!(GROUP
            .resolve(Some(ENTERPRISE_USER_SCHEMA), "department", None)
            .is_none());
    }

    #[test]
    fn resolved_characteristics() {
        let id = USER.resolve(None, "id", None).unwrap();
        assert!(id.case_exact());
        assert_eq!(id.attr.returned, Returned::Always);
        assert!(!id.is_extension());
        let un = USER.resolve(None, "userName", None).unwrap();
        assert!(!un.case_exact());
        assert!(un.attr.required);
        assert_eq!(un.attr.uniqueness, Uniqueness::Server);
        let dept = USER
            .resolve(Some(ENTERPRISE_USER_SCHEMA), "department", None)
            .unwrap();
        assert!(dept.is_extension());
        assert_eq!(dept.ty(), AttrType::String);
        let lm = USER.resolve(None, "meta", Some("lastModified")).unwrap();
        assert_eq!(lm.ty(), AttrType::DateTime);
        let pw = USER.resolve(None, "password", None).unwrap();
        assert_eq!(pw.attr.returned, Returned::Never);
        assert_eq!(pw.attr.mutability, Mutability::WriteOnly);
        let primary = USER.resolve(None, "emails", Some("primary")).unwrap();
        assert_eq!(primary.ty(), AttrType::Boolean);
        let groups = USER.resolve(None, "groups", None).unwrap();
        assert_eq!(groups.attr.mutability, Mutability::ReadOnly);
        assert!(groups.attr.multi_valued);
    }

    #[test]
    fn resolves_written_paths() {
        let cases: &[(&str, Option<&str>)] = &[
            ("name.familyName", Some("name.familyName")),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            ),
            (
                "URN:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeeNumber",
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                Some("userName"),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                None,
            ),
            ("urn:nope:x", None),
            ("ur", None),
            ("", None),
            ("emails.value.extra", None),
        ];
        for (path, want) in cases {
            let got = USER.resolve_str(path).map(|r| r.canonical_path());
            assert_eq!(got.as_deref(), *want, "{path}");
        }
    }

    #[test]
    fn schema_json_has_all_characteristics() {
        let v = schema_json(&USER_CORE, "https://example.com/scim/v2/");
        assert_eq!(v["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(v["id"], USER_SCHEMA);
        assert_eq!(v["meta"]["resourceType"], "Schema");
        assert_eq!(
            v["meta"]["location"],
            format!("https://example.com/scim/v2/Schemas/{USER_SCHEMA}")
        );
        let attrs = v["attributes"].as_array().unwrap();
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(user_name["returned"], "default");
        assert_eq!(user_name["multiValued"], false);
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        // The cap on values is advertised where RFC 7643 §7 leaves room.
        assert_eq!(
            emails["description"],
            format!("Email addresses for the user. At most {MAX_VALUES} values.")
        );
        let subs = emails["subAttributes"].as_array().unwrap();
        let ty = subs.iter().find(|a| a["name"] == "type").unwrap();
        assert_eq!(ty["canonicalValues"], json!(["work", "home", "other"]));
        let pw = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(pw["returned"], "never");
        assert_eq!(pw["mutability"], "writeOnly");
        let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
        let gref = groups["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "$ref")
            .unwrap();
        assert_eq!(gref["referenceTypes"], json!(["User", "Group"]));
        // Common attributes are not advertised as schema attributes.
        assert!(attrs
            .iter()
            .all(|a| a["name"] != "id" && a["name"] != "meta"));
        for name in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(attrs.iter().any(|a| a["name"] == name), "{name}");
        }

        let ent = schema_json(&ENTERPRISE_USER, "https://x");
        let manager = ent["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "manager")
            .unwrap();
        assert_eq!(manager["type"], "complex");
        assert_eq!(manager["subAttributes"][2]["name"], "displayName");
        assert_eq!(manager["subAttributes"][2]["mutability"], "readOnly");

        let group = schema_json(&GROUP_CORE, "https://x");
        assert_eq!(group["attributes"][0]["name"], "displayName");
        // Group members are not capped, nor are a user's groups.
        assert_eq!(
            group["attributes"][1]["description"],
            "A list of members of the Group."
        );
        let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
        assert!(!groups["description"].as_str().unwrap().contains("At most"));
        assert_eq!(group["attributes"][0]["required"], true);
        assert_eq!(
            group["attributes"][1]["subAttributes"][0]["mutability"],
            "immutable"
        );
    }

    #[test]
    fn resource_type_json_follows_section_6() {
        let v = resource_type_json(&USER, "https://example.com/v2");
        assert_eq!(
            v,
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER_SCHEMA,
                "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
                "meta": {"resourceType": "ResourceType", "location": "https://example.com/v2/ResourceTypes/User"},
            })
        );
        let g = resource_type_json(&GROUP, "https://example.com/v2");
        assert_eq!(g["endpoint"], "/Groups");
        assert!(g.get("schemaExtensions").is_none());
        assert_eq!(
            find_schema(&GROUP_SCHEMA.to_uppercase()).unwrap().name,
            "Group"
        );
        assert!(find_schema("urn:x").is_none());
    }
}
