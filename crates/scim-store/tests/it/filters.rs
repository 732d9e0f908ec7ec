use std::collections::BTreeSet;

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use scim_core::filter::{parse_attr_path, parse_filter, AttrPath, CompValue, CompareOp, Filter};
use scim_core::ScimType;
use scim_store::testing::{backends, create_user, enable_sync, TestDb};
use scim_store::{list_users, ListQuery, Store, StoreError, UserRecord};

use crate::{after, attrs};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

struct Fixture {
    db: TestDb,
    alice: UserRecord,
    bob: UserRecord,
    #[allow(dead_code)]
    carol: UserRecord,
}

fn insert(store: &Store, v: serde_json::Value) -> UserRecord {
    let u = create_user(store, scim_store::OrgId::DEFAULT, attrs(v))
        .wait()
        .unwrap();
    // Distinct timestamps, so created order is insertion order.
    after(&u.last_modified);
    u
}

fn fixtures() -> Vec<Fixture> {
    backends()
        .into_iter()
        .map(|db| {
            let store = db.store().clone();
            enable_sync(&store, scim_store::OrgId::DEFAULT);
            let alice = insert(
                &store,
                json!({
                    "userName": "Alice@Example.com",
                    "externalId": "EXT-1",
                    "displayName": "Alice Liddell",
                    "title": "Chief Rabbit Chaser",
                    "name": {"familyName": "Liddell", "givenName": "Alice"},
                    "emails": [
                        {"value": "alice@example.com", "type": "work", "primary": true},
                        {"value": "ALICE@home.org", "type": "home"}
                    ],
                    "active": true,
                    ENT: {"department": "R&D", "manager": {"value": "MGR-1"}}
                }),
            );
            let bob = insert(
                &store,
                json!({
                    "userName": "bob@example.com",
                    "externalId": "ext-1",
                    "displayName": "Bob Builder",
                    "title": "Builder 100%_done",
                    "name": {"familyName": "Builder", "givenName": "Bob"},
                    "emails": [{"value": "bob@work.example", "type": "work"}],
                    "active": false,
                    ENT: {"department": "Sales"}
                }),
            );
            let carol = insert(
                &store,
                json!({
                    "userName": "carol*?[x]\\",
                    "name": {"familyName": "O'Hara"},
                    "active": true
                }),
            );
            Fixture {
                db,
                alice,
                bob,
                carol,
            }
        })
        .collect()
}

fn query(filter: Option<&Filter>) -> ListQuery<'_> {
    ListQuery {
        filter,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100,
    }
}

fn names_for(store: &Store, filter: &Filter) -> Result<BTreeSet<String>, StoreError> {
    let page = store.read(|c| list_users(c, scim_store::OrgId::DEFAULT, &query(Some(filter))))?;
    let names: BTreeSet<String> = page
        .items
        .iter()
        .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(page.total, names.len() as i64);
    Ok(names)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const A: &str = "Alice@Example.com";
const B: &str = "bob@example.com";
const C: &str = "carol*?[x]\\";

fn check(fx: &Fixture, cases: &[(String, &[&str])]) {
    for (text, expected) in cases {
        let filter = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got = names_for(fx.db.store(), &filter)
            .unwrap_or_else(|e| panic!("{} {text}: {e:?}", fx.db.backend()));
        assert_eq!(got, set(expected), "{}: {text}", fx.db.backend());
    }
}

fn cases(list: &[(&str, &'static [&'static str])]) -> Vec<(String, &'static [&'static str])> {
    list.iter().map(|(f, e)| ((*f).to_owned(), *e)).collect()
}

#[test]
fn string_operators_on_user_columns() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (r#"userName eq "alice@example.com""#, &[A]),
                (r#"USERNAME eq "ALICE@EXAMPLE.COM""#, &[A]),
                (
                    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com""#,
                    &[B],
                ),
                (r#"userName ne "alice@example.com""#, &[B, C]),
                (r#"userName co "EXAMPLE""#, &[A, B]),
                (r#"userName sw "BO""#, &[B]),
                (r#"userName ew ".COM""#, &[A, B]),
                (r#"userName gt "b""#, &[B, C]),
                (r#"userName ge "bob@example.com""#, &[B, C]),
                (r#"userName lt "bob""#, &[A]),
                (r#"userName le "BOB@example.com""#, &[A, B]),
                (r#"userName pr"#, &[A, B, C]),
                (r#"displayName co "builder""#, &[B]),
                (r#"displayName sw "ALICE""#, &[A]),
                (r#"displayName ew "LIDDELL""#, &[A]),
                (r#"displayName ne "bob builder""#, &[A, C]),
                (r#"displayName pr"#, &[A, B]),
                (r#"displayName gt "b""#, &[B]),
            ]),
        );
    }
}

#[test]
fn external_id_is_case_exact() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (r#"externalId eq "EXT-1""#, &[A]),
                (r#"externalId eq "ext-1""#, &[B]),
                (r#"externalId eq "Ext-1""#, &[]),
                (r#"externalId ne "EXT-1""#, &[B, C]),
                (r#"externalId co "XT""#, &[A]),
                (r#"externalId sw "e""#, &[B]),
                (r#"externalId ew "-1""#, &[A, B]),
                (r#"externalId lt "a""#, &[A]),
                (r#"externalId ge "a""#, &[B]),
                (r#"externalId pr"#, &[A, B]),
                (r#"not (externalId pr)"#, &[C]),
                (r#"externalId eq null"#, &[C]),
            ]),
        );
    }
}

#[test]
fn id_is_case_exact() {
    for fx in fixtures() {
        let id = &fx.alice.id;
        let upper = id.to_uppercase();
        check(
            &fx,
            &[
                (format!(r#"id eq "{id}""#), &[A]),
                (format!(r#"id eq "{upper}""#), &[]),
                (format!(r#"id ne "{id}""#), &[B, C]),
                (r#"id eq "not-a-uuid""#.to_owned(), &[]),
            ],
        );
    }
}

#[test]
fn single_valued_attributes_in_the_value_index() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (r#"title eq "chief rabbit chaser""#, &[A]),
                (r#"title co "RABBIT""#, &[A]),
                (r#"title sw "builder""#, &[B]),
                (r#"title ew "DONE""#, &[B]),
                (r#"title ne "builder 100%_done""#, &[A, C]),
                (r#"title gt "c""#, &[A]),
                (r#"title le "builder 100%_done""#, &[B]),
                (r#"title pr"#, &[A, B]),
                (r#"not (title pr)"#, &[C]),
                (r#"name.familyName eq "LIDDELL""#, &[A]),
                (r#"name.familyName sw "o'""#, &[C]),
                (r#"name.familyName gt "C""#, &[A, C]),
                (r#"name.familyName ne "liddell""#, &[B, C]),
                (r#"name.givenName pr"#, &[A, B]),
                (r#"name pr"#, &[A, B, C]),
                (r#"name[givenName eq "alice"]"#, &[A]),
                (r#"name[givenName pr and familyName sw "b"]"#, &[B]),
            ]),
        );
    }
}

#[test]
fn enterprise_attributes_need_their_urn() {
    for fx in fixtures() {
        check(
            &fx,
            &[
                (format!(r#"{ENT}:department eq "r&d""#), &[A]),
                (format!(r#"{ENT}:department co "AL""#), &[B]),
                (format!(r#"{ENT}:department ne "sales""#), &[A, C]),
                (format!(r#"{ENT}:department pr"#), &[A, B]),
                (format!(r#"{ENT}:department gt "s""#), &[B]),
                (format!(r#"{ENT}:manager.value eq "MGR-1""#), &[A]),
                // manager.value is caseExact (RFC 7643 erratum 8472).
                (format!(r#"{ENT}:manager.value eq "mgr-1""#), &[]),
                (format!(r#"{ENT}:manager pr"#), &[A]),
            ],
        );
        let bare = parse_filter(r#"department eq "r&d""#).unwrap();
        assert_invalid_filter(fx.db.store(), &bare);
    }
}

#[test]
fn multi_valued_attributes_and_value_paths() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (r#"emails.value eq "ALICE@HOME.ORG""#, &[A]),
                (r#"emails eq "bob@work.example""#, &[B]),
                (r#"emails co "example""#, &[A, B]),
                (r#"emails.value sw "alice@""#, &[A]),
                (r#"emails.value ew ".ORG""#, &[A]),
                (r#"emails.value ne "alice@example.com""#, &[B, C]),
                (r#"emails.type eq "WORK""#, &[A, B]),
                (r#"emails.type ne "work""#, &[C]),
                (r#"emails.primary eq true"#, &[A]),
                (r#"emails pr"#, &[A, B]),
                (r#"not (emails pr)"#, &[C]),
                (r#"emails.display pr"#, &[]),
                (
                    r#"emails[type eq "work" and value co "@example.com"]"#,
                    &[A],
                ),
                // Both conditions must hold for the SAME element.
                (r#"emails[type eq "home" and value co "example"]"#, &[]),
                (r#"emails[type eq "home" or primary eq true]"#, &[A]),
                (r#"emails[not (type eq "work")]"#, &[A]),
                (r#"emails[primary eq false]"#, &[A, B]),
                (r#"emails[type eq "work"] and not (active eq false)"#, &[A]),
                (r#"not (emails[type eq "home"])"#, &[B, C]),
                (r#"emails[value ew "example" and not (type pr)]"#, &[]),
            ]),
        );
    }
}

#[test]
fn booleans() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                ("active eq true", &[A, C]),
                ("active eq false", &[B]),
                ("active ne true", &[B]),
                (r#"active eq "False""#, &[B]),
                ("active pr", &[A, B, C]),
            ]),
        );
        for bad in [
            "active gt true",
            "active co true",
            r#"active eq "maybe""#,
            "emails.primary lt true",
        ] {
            assert_invalid_filter(fx.db.store(), &parse_filter(bad).unwrap());
        }
    }
}

fn shifted(stored: &str) -> String {
    // The same instant written with another offset and precision.
    let t = OffsetDateTime::parse(stored, &Rfc3339).unwrap();
    t.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap())
        .format(&Rfc3339)
        .unwrap()
}

#[test]
fn dates() {
    for fx in fixtures() {
        let b = &fx.bob.last_modified;
        let b2 = shifted(b);
        let created = shifted(&fx.bob.created);
        check(
            &fx,
            &[
                (format!(r#"meta.lastModified gt "{b}""#), &[C]),
                (format!(r#"meta.lastModified ge "{b2}""#), &[B, C]),
                (format!(r#"meta.lastModified lt "{b}""#), &[A]),
                (format!(r#"meta.lastModified le "{b}""#), &[A, B]),
                (format!(r#"meta.lastModified eq "{b2}""#), &[B]),
                (format!(r#"meta.lastModified ne "{b}""#), &[A, C]),
                (format!(r#"meta.created eq "{created}""#), &[B]),
                (
                    r#"meta.created gt "2000-01-01T00:00:00Z""#.into(),
                    &[A, B, C],
                ),
                ("meta.lastModified pr".into(), &[A, B, C]),
                (r#"meta.resourceType eq "User""#.into(), &[A, B, C]),
                (r#"meta.resourceType eq "Group""#.into(), &[]),
                (r#"meta.resourceType ne "Group""#.into(), &[A, B, C]),
            ],
        );
        for bad in [
            r#"meta.lastModified gt "yesterday""#,
            r#"meta.lastModified co "2026""#,
            "meta.created eq true",
        ] {
            assert_invalid_filter(fx.db.store(), &parse_filter(bad).unwrap());
        }
    }
}

#[test]
fn pattern_metacharacters_are_literal() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (r#"title co "%""#, &[B]),
                (r#"title co "_""#, &[B]),
                (r#"title co "100%_d""#, &[B]),
                (r#"title co "0%_""#, &[B]),
                (r#"title sw "%""#, &[]),
                (r#"title co "r_b""#, &[]),
                (r#"userName co "*""#, &[C]),
                (r#"userName co "?""#, &[C]),
                (r#"userName co "[""#, &[C]),
                (r#"userName co "[x]""#, &[C]),
                (r#"userName co "*?[x]\\""#, &[C]),
                (r#"userName ew "\\""#, &[C]),
                (r#"userName co "\\%""#, &[]),
                (r#"userName co "a*e""#, &[]),
                (r#"userName co "b?b""#, &[]),
                (r#"userName co "[a]""#, &[]),
                (r#"userName sw "carol*""#, &[C]),
            ]),
        );
    }
}

#[test]
fn logical_combinations() {
    for fx in fixtures() {
        check(
            &fx,
            &cases(&[
                (
                    r#"(userName sw "a" or userName sw "b") and not (active eq false)"#,
                    &[A],
                ),
                (
                    r#"userName sw "a" or userName sw "b" and active eq true"#,
                    &[A],
                ),
                (r#"not (userName sw "a" or userName sw "b")"#, &[C]),
                (r#"not (not (title pr))"#, &[A, B]),
                (r#"title pr and emails[type eq "work"]"#, &[A, B]),
                (r#"userName eq null"#, &[]),
                (r#"title ne null"#, &[A, B]),
            ]),
        );
    }
}

#[test]
fn hand_built_ast() {
    // The same checks without the parser: AST straight into the store.
    for fx in fixtures() {
        let store = fx.db.store();
        let f = Filter::Or(
            Box::new(Filter::Compare(
                AttrPath::with_sub("EMAILS", "VALUE"),
                CompareOp::Eq,
                CompValue::String("Bob@Work.Example".into()),
            )),
            Box::new(Filter::Not(Box::new(Filter::Present(AttrPath::new(
                "displayName",
            ))))),
        );
        assert_eq!(names_for(store, &f).unwrap(), set(&[B, C]));
        let f = Filter::ValuePath(
            AttrPath::new("emails"),
            Box::new(Filter::Compare(
                AttrPath::new("type"),
                CompareOp::Sw,
                CompValue::String("HO".into()),
            )),
        );
        assert_eq!(names_for(store, &f).unwrap(), set(&[A]));
        let f = Filter::Compare(
            AttrPath {
                urn: Some(ENT.to_lowercase()),
                attr: "DEPARTMENT".into(),
                sub_attr: None,
            },
            CompareOp::Eq,
            CompValue::String("SALES".into()),
        );
        assert_eq!(names_for(store, &f).unwrap(), set(&[B]));
        // A number against a string compares as its text (docs/SCIM.md,
        // "Leniency"): no title is "5".
        let f = Filter::Compare(
            AttrPath::new("title"),
            CompareOp::Eq,
            CompValue::Number(5.into()),
        );
        assert_eq!(names_for(store, &f).unwrap(), set(&[]));
    }
}

fn assert_invalid_filter(store: &Store, filter: &Filter) {
    match store.read(|c| list_users(c, scim_store::OrgId::DEFAULT, &query(Some(filter)))) {
        Err(StoreError::Invalid(e)) => {
            assert_eq!(e.scim_type, ScimType::InvalidFilter, "{filter:?}: {e}");
            assert!(!e.detail.is_empty());
        }
        other => panic!("{filter:?}: {other:?}"),
    }
    // count 0 goes through the same translation.
    let mut q = query(Some(filter));
    q.count = 0;
    assert!(matches!(
        store.read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q)),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn unknown_attributes_are_invalid_filter() {
    for fx in fixtures() {
        for text in [
            r#"password eq "x""#,
            r#"groups.type eq "direct""#,
            r#"emails.bogus eq "x""#,
            r#"nosuch pr"#,
            r#"urn:example:custom:1.0:User:department eq "x""#,
            r#"emails[bogus eq "x"]"#,
            r#"title[value eq "x"]"#,
            r#"name eq "x""#,
            r#"addresses eq "x""#,
            r#"meta.version eq "x""#,
        ] {
            let filter = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_invalid_filter(fx.db.store(), &filter);
        }
        let filter = parse_filter(r#"password eq "x""#).unwrap();
        let Err(StoreError::Invalid(e)) = fx
            .db
            .store()
            .read(|c| list_users(c, scim_store::OrgId::DEFAULT, &query(Some(&filter))))
        else {
            panic!("expected invalid");
        };
        assert!(
            e.detail.contains("\"password\" is not filterable"),
            "{}",
            e.detail
        );
        assert!(e.detail.contains("userName"), "{}", e.detail);
    }
}

fn sorted(store: &Store, by: &str, descending: bool) -> Vec<String> {
    let path = parse_attr_path(by).unwrap();
    let q = ListQuery {
        filter: None,
        sort_by: Some(&path),
        descending,
        start_index: 1,
        count: 10,
    };
    store
        .read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q))
        .unwrap()
        .items
        .iter()
        .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sorting() {
    for fx in fixtures() {
        let s = fx.db.store();
        let be = fx.db.backend();
        assert_eq!(sorted(s, "userName", false), [A, B, C], "{be}");
        assert_eq!(sorted(s, "userName", true), [C, B, A], "{be}");
        // Missing values last ascending, first descending.
        assert_eq!(sorted(s, "externalId", false), [A, B, C], "{be}");
        assert_eq!(sorted(s, "externalId", true), [C, B, A], "{be}");
        assert_eq!(sorted(s, "title", false), [B, A, C], "{be}");
        assert_eq!(sorted(s, "title", true), [C, A, B], "{be}");
        assert_eq!(sorted(s, "name.familyName", true), [C, A, B], "{be}");
        assert_eq!(sorted(s, "emails.value", false), [A, B, C], "{be}");
        assert_eq!(sorted(s, "emails", true), [C, B, A], "{be}");
        assert_eq!(sorted(s, "meta.lastModified", true), [C, B, A], "{be}");
        assert_eq!(sorted(s, "active", false), [B, A, C], "{be}");
        assert_eq!(
            sorted(s, &format!("{ENT}:department"), false),
            [A, B, C],
            "{be}"
        );
        let bad = parse_attr_path("password").unwrap();
        let q = ListQuery {
            filter: None,
            sort_by: Some(&bad),
            descending: false,
            start_index: 1,
            count: 10,
        };
        assert!(matches!(
            s.read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q)),
            Err(StoreError::Invalid(_))
        ));
    }
}

#[test]
fn paging() {
    for fx in fixtures() {
        let s = fx.db.store();
        let page = |filter: Option<&Filter>, start_index: i64, count: i64| {
            let q = ListQuery {
                filter,
                sort_by: None,
                descending: false,
                start_index,
                count,
            };
            let p = s
                .read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q))
                .unwrap();
            let names: Vec<String> = p
                .items
                .iter()
                .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
                .collect();
            (p.total, names)
        };
        assert_eq!(page(None, 1, 10), (3, vec![A.into(), B.into(), C.into()]));
        assert_eq!(page(None, 2, 1), (3, vec![B.into()]));
        // A full page: the total is counted, not inferred.
        assert_eq!(page(None, 1, 3), (3, vec![A.into(), B.into(), C.into()]));
        assert_eq!(page(None, 1, 2), (3, vec![A.into(), B.into()]));
        assert_eq!(page(None, i64::MAX, 2), (3, vec![]));
        assert_eq!(page(None, 3, 5), (3, vec![C.into()]));
        assert_eq!(page(None, 10, 5), (3, vec![]));
        assert_eq!(page(None, 1, 0), (3, vec![]));
        assert_eq!(page(None, 0, 1), (3, vec![A.into()]));
        assert_eq!(page(None, -5, -1), (3, vec![]));
        let f = parse_filter(r#"userName co "example""#).unwrap();
        assert_eq!(page(Some(&f), 2, 1), (2, vec![B.into()]));
        assert_eq!(page(Some(&f), 5, 1), (2, vec![]));
        assert_eq!(page(Some(&f), 1, 0), (2, vec![]));
        let none = parse_filter(r#"userName eq "nobody""#).unwrap();
        assert_eq!(page(Some(&none), 1, 10), (0, vec![]));
        // Records come back whole.
        let q = query(None);
        let all = s
            .read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q))
            .unwrap();
        assert_eq!(all.items[1], fx.bob);
    }
}
