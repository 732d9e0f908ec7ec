#![allow(clippy::unwrap_used, clippy::expect_used)]
use scim_core::filter::{AttrPath, CompValue, CompareOp, Filter};

use crate::db::connection::Backend;
use crate::db::sql::{Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::attributes::{CORE_USER_URN, GROUP_URN, PATCH_MEMBERS};
use crate::scim::filter::resolve::Resource;
use crate::scim::filter::sort::push_sort_key;
use crate::scim::filter::translate::{push_element_filter, push_filter};

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
