//! The schemas of the SCIM document: User, Group, the Enterprise User
//! extension and resource metadata are built from `scim_core::schema`, the
//! very descriptions that drive scimd's request handling and its
//! `/Schemas` endpoint (RFC 7643 §7), so the document cannot drift from
//! what the server accepts and returns. The message schemas (ListResponse,
//! SearchRequest, PatchOp, Error) follow RFC 7644 §3.4.2, §3.4.3, §3.5.2
//! and §3.12.

use std::borrow::Cow;

use scim_core::schema::{
    AttrType, AttributeDef, Mutability, COMMON_ATTRIBUTES, ENTERPRISE_USER, ENTERPRISE_USER_SCHEMA,
    ERROR_SCHEMA, GROUP_CORE, GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA, USER_CORE, USER_SCHEMA,
};
use serde_json::json;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Ref, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The `scimType` values of RFC 7644 §3.12 that scimd sends.
pub const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
];

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn string_array(description: &str, example: serde_json::Value) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .examples([example])
        .into()
}

/// The JSON Schema of one attribute (RFC 7643 §2.3 data types).
fn attribute(a: &AttributeDef) -> RefOr<Schema> {
    let mut s = ObjectBuilder::new().description(Some(a.description));
    s = match a.ty {
        AttrType::String => s.schema_type(Type::String),
        AttrType::Boolean => s.schema_type(Type::Boolean),
        AttrType::Decimal => s.schema_type(Type::Number),
        AttrType::Integer => s.schema_type(Type::Integer),
        AttrType::DateTime => s
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        AttrType::Binary => s.schema_type(Type::String).content_encoding("base64"),
        AttrType::Reference => s
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uri-reference".into()))),
        AttrType::Complex => {
            let mut o = s.schema_type(Type::Object);
            for sub in a.sub_attributes {
                o = o.property(sub.name, attribute(sub));
            }
            o
        }
    };
    if !a.canonical_values.is_empty() {
        s = s.examples(a.canonical_values.iter().map(|v| json!(v)));
    }
    s = match a.mutability {
        Mutability::ReadOnly => s.read_only(Some(true)),
        Mutability::WriteOnly => s.write_only(Some(true)),
        Mutability::ReadWrite | Mutability::Immutable => s,
    };
    if a.multi_valued {
        ArrayBuilder::new()
            .items(s.description(None::<String>))
            .description(Some(a.description))
            .into()
    } else {
        s.into()
    }
}

fn common(name: &str) -> Option<&'static AttributeDef> {
    COMMON_ATTRIBUTES.iter().find(|a| a.name == name)
}

/// `schemas`, `id`, `externalId` and `meta` (RFC 7643 §3, §3.1).
fn with_common(mut o: ObjectBuilder, schemas: serde_json::Value) -> ObjectBuilder {
    o = o.property(
        "schemas",
        string_array("The schema URNs of the resource (RFC 7643 §3).", schemas),
    );
    for name in ["id", "externalId"] {
        if let Some(a) = common(name) {
            o = o.property(name, attribute(a));
        }
    }
    o.property("meta", reference("Meta"))
}

/// Resource metadata (RFC 7643 §3.1).
fn meta_schema() -> RefOr<Schema> {
    match common("meta") {
        Some(meta) => attribute(meta),
        None => ObjectBuilder::new().schema_type(Type::Object).into(),
    }
}

fn user_schema() -> RefOr<Schema> {
    user_schema_with(&[])
}

/// The component name of a custom extension's schema.
fn custom_component(schema: &scim_core::schema::Schema) -> String {
    format!("Extension_{}", schema.name)
}

/// The User, with the custom extensions `custom` under their URNs.
fn user_schema_with(custom: &[&scim_core::schema::Schema]) -> RefOr<Schema> {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A User (RFC 7643 §4.1) with the optional Enterprise User extension (§4.3). Attribute names are case-insensitive (RFC 7643 §2.1); `password` is accepted and never returned.",
        ));
    o = with_common(o, json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    for a in USER_CORE.attributes {
        o = o.property(a.name, attribute(a));
        if a.required {
            o = o.required(a.name);
        }
    }
    o = o.property(ENTERPRISE_USER_SCHEMA, reference("EnterpriseUser"));
    for schema in custom {
        o = o.property(schema.id, reference(&custom_component(schema)));
    }
    o.into()
}

/// The components a set of custom schema extensions changes: the User,
/// with each extension under its URN, and each extension's own schema
/// (`Extension_<Name>`), built like the Enterprise User's.
pub fn extension_components(custom: &[&scim_core::schema::Schema]) -> Vec<(String, RefOr<Schema>)> {
    let mut out = vec![("User".to_owned(), user_schema_with(custom))];
    for schema in custom {
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "The custom extension {} (defined at run time; RFC 7643 §3.3), under its URN in a User. {}",
                schema.id, schema.description
            )));
        for a in schema.attributes {
            o = o.property(a.name, attribute(a));
        }
        out.push((custom_component(schema), o.into()));
    }
    out
}

fn enterprise_schema() -> RefOr<Schema> {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The Enterprise User extension (RFC 7643 §4.3), under its URN in a User.",
        ));
    for a in ENTERPRISE_USER.attributes {
        o = o.property(a.name, attribute(a));
    }
    o.into()
}

fn group_schema() -> RefOr<Schema> {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A Group (RFC 7643 §4.2). `members` holds Users and Groups by id; GET /Groups?excludedAttributes=members leaves them out.",
        ));
    o = with_common(o, json!([GROUP_SCHEMA]));
    for a in GROUP_CORE.attributes {
        o = o.property(a.name, attribute(a));
        if a.required {
            o = o.required(a.name);
        }
    }
    o.into()
}

fn list_schema(item: Option<&str>, description: &str) -> RefOr<Schema> {
    let items: RefOr<Schema> = match item {
        Some(name) => reference(name),
        None => ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A resource, schema or resource type"))
            .into(),
    };
    let int = |d: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .description(Some(d))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "schemas",
            string_array(
                "`[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"]`",
                json!([LIST_RESPONSE_SCHEMA]),
            ),
        )
        .property("totalResults", int("Matches in total"))
        .property(
            "startIndex",
            int("1-based index of the first result (index paging only)"),
        )
        .property("itemsPerPage", int("Results in this page"))
        .property(
            "nextCursor",
            ObjectBuilder::new().schema_type(Type::String).description(Some(
                "With cursor paging (RFC 9865): the cursor of the next page; absent on the last page",
            )),
        )
        .property(
            "previousCursor",
            ObjectBuilder::new().schema_type(Type::String).description(Some(
                "With cursor paging (RFC 9865): the cursor of the previous page; absent on the first page",
            )),
        )
        .property(
            "Resources",
            ArrayBuilder::new()
                .items(items)
                .description(Some("The results of this page")),
        )
        .required("schemas")
        .required("totalResults")
        .required("Resources")
        .into()
}

fn patch_schema() -> RefOr<Schema> {
    let operation = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "One operation (RFC 7644 §3.5.2.1–3). `op` is matched case-insensitively (Entra sends `Replace`, `Add`). Without `path`, `value` is an object of attributes to add or replace; its keys are paths: dotted (`name.givenName`), URN-qualified, or value paths (`emails[type eq \"work\"].value`), each applied as the same `path` would be (Entra's aadOptscim062020 dialect). Unknown plain keys and readOnly ones are ignored, as in PUT; a value-path key that cannot be applied is an error naming it.",
        ))
        .property(
            "op",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(
                    "^([Aa][Dd][Dd]|[Rr][Ee][Mm][Oo][Vv][Ee]|[Rr][Ee][Pp][Ll][Aa][Cc][Ee])$",
                ))
                .examples([json!("add"), json!("remove"), json!("replace")]),
        )
        .property(
            "path",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "An attribute path (RFC 7644 §3.5.2), e.g. `emails[type eq \"work\"].value` or `members[value eq \"…\"]`; required for remove",
                )),
        )
        .property(
            "value",
            ObjectBuilder::new().description(Some(
                "The value: any JSON type; for add/replace without `path`, an object of attributes. Booleans sent as \"True\"/\"False\" (Entra's default dialect) are accepted.",
            )),
        )
        .required("op");
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("A PATCH request (RFC 7644 §3.5.2)."))
        .property(
            "schemas",
            string_array(
                "`[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"]`",
                json!([PATCH_OP_SCHEMA]),
            ),
        )
        .property(
            "Operations",
            ArrayBuilder::new()
                .items(operation)
                .description(Some("Applied in order, all or nothing")),
        )
        .required("Operations")
        .into()
}

fn search_schema() -> RefOr<Schema> {
    let string = |d: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(d))
    };
    let int = |d: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some(d))
    };
    let strings = |d: &str| {
        ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(d))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("A query sent with POST (RFC 7644 §3.4.3)."))
        .property(
            "schemas",
            string_array(
                "`[\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"]`",
                json!([SEARCH_REQUEST_SCHEMA]),
            ),
        )
        .property("filter", string("A filter (RFC 7644 §3.4.2.2)"))
        .property("sortBy", string("The attribute to sort by"))
        .property(
            "sortOrder",
            string("`ascending` (default) or `descending`")
                .enum_values(Some(["ascending", "descending"])),
        )
        .property("startIndex", int("1-based index of the first result"))
        .property(
            "cursor",
            string("Cursor pagination (RFC 9865): empty for the first page, then a nextCursor or previousCursor; not combined with startIndex"),
        )
        .property("count", int("Page size, up to the max_page_size setting"))
        .property("attributes", strings("Attributes to return"))
        .property("excludedAttributes", strings("Attributes to leave out"))
        .into()
}

fn error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "An error (RFC 7644 §3.12), sent as application/scim+json. `status` is the HTTP status as a string.",
        ))
        .property(
            "schemas",
            string_array(
                "`[\"urn:ietf:params:scim:api:messages:2.0:Error\"]`",
                json!([ERROR_SCHEMA]),
            ),
        )
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-5][0-9][0-9]$"))
                .description(Some("The HTTP status code, as a string")),
        )
        .property(
            "scimType",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(SCIM_TYPES.iter().copied()))
                .description(Some("The kind of error (400 and 409 only)")),
        )
        .property(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("What went wrong and what to fix")),
        )
        .required("schemas")
        .required("status")
        .required("detail")
        .into()
}

/// Every component schema of the SCIM document, by name.
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    vec![
        ("Meta".into(), meta_schema()),
        ("User".into(), user_schema()),
        ("EnterpriseUser".into(), enterprise_schema()),
        ("Group".into(), group_schema()),
        (
            "ListResponse".into(),
            list_schema(None, "A list (RFC 7644 §3.4.2): schemas or resource types"),
        ),
        (
            "UserListResponse".into(),
            list_schema(Some("User"), "A page of Users (RFC 7644 §3.4.2)"),
        ),
        (
            "GroupListResponse".into(),
            list_schema(Some("Group"), "A page of Groups (RFC 7644 §3.4.2)"),
        ),
        (
            "ResourceListResponse".into(),
            list_schema(None, "A page of Users then Groups (RFC 7644 §3.4.3)"),
        ),
        ("PatchOp".into(), patch_schema()),
        ("SearchRequest".into(), search_schema()),
        ("Error".into(), error_schema()),
    ]
}

/// Names a component of [`components`] for `#[utoipa::path]` bodies.
macro_rules! component {
    ($ty:ident, $name:literal) => {
        #[doc = concat!("The `", $name, "` schema (see the module docs).")]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                components()
                    .into_iter()
                    .find(|(n, _)| n == $name)
                    .map(|(_, s)| s)
                    .unwrap_or_else(|| ObjectBuilder::new().into())
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

component!(User, "User");
component!(Group, "Group");
component!(ListResponse, "ListResponse");
component!(UserListResponse, "UserListResponse");
component!(GroupListResponse, "GroupListResponse");
component!(ResourceListResponse, "ResourceListResponse");
component!(PatchOp, "PatchOp");
component!(SearchRequest, "SearchRequest");
