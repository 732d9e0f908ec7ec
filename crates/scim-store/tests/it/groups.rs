use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use scim_core::filter::{parse_attr_path, parse_filter};
use scim_core::ScimType;
use scim_store::testing::{backends, create_user, enable_sync, TestDb};
use scim_store::{
    add_members, delete_group, delete_user, find_group, groups_of_users, insert_group,
    list_group_members, list_groups, list_users, remove_all_members, remove_members,
    remove_members_matching, replace_members, touch_group, update_group, update_user, DbConnection,
    GroupRecord, ListQuery, MemberRef, MemberType, MembersChanged, PasswordChange, Store,
    StoreError, UserRecord,
};

use crate::{attrs, user};

fn group(name: &str) -> Map<String, Value> {
    attrs(json!({ "displayName": name }))
}

fn typed(id: &str, t: MemberType) -> MemberRef {
    MemberRef {
        value: id.to_owned(),
        member_type: Some(t),
    }
}

fn untyped(id: &str) -> MemberRef {
    MemberRef {
        value: id.to_owned(),
        member_type: None,
    }
}

fn new_user(store: &Store, name: &str, display: Option<&str>) -> UserRecord {
    let mut a = user(name);
    if let Some(d) = display {
        a.insert("displayName".into(), json!(d));
    }
    create_user(store, scim_store::OrgId::DEFAULT, a)
        .wait()
        .unwrap()
}

fn new_group(store: &Store, name: &str, members: &[MemberRef]) -> GroupRecord {
    store
        .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &group(name), members))
        .unwrap()
}

fn member_ids(store: &Store, group_id: &str) -> Vec<String> {
    store
        .read(|c| list_group_members(c, group_id))
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .collect()
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

fn sorted_ids(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn version(store: &Store, id: &str) -> i64 {
    store
        .read(|c| find_group(c, scim_store::OrgId::DEFAULT, id))
        .unwrap()
        .unwrap()
        .version
}

/// Runs a COUNT(*) query written by the test.
fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<N> = diesel::sql_query(sql).load(conn).unwrap();
    rows[0].n
}

fn membership_rows(store: &Store) -> i64 {
    store
        .read(|c| Ok(count(c, "SELECT COUNT(*) AS n FROM group_members")))
        .unwrap()
}

fn expect_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, scim_type: ScimType) -> String {
    match r {
        Err(StoreError::Invalid(e)) => {
            assert_eq!(e.scim_type, scim_type, "{e}");
            e.detail
        }
        other => panic!("expected Invalid({scim_type:?}), got {other:?}"),
    }
}

#[test]
fn crud_round_trip() {
    for db in backends() {
        let store = db.store();
        let a = attrs(json!({
            "displayName": "Engineering",
            "externalId": "E-1",
            // Members in the attributes are ignored: they are an argument.
            "members": [{"value": "not-stored"}]
        }));
        let created = store
            .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &a, &[]))
            .unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(created.created, created.last_modified);
        assert!(uuid::Uuid::parse_str(&created.id).is_ok());
        assert!(!created.attrs.contains_key("members"));
        assert_eq!(created.attrs["externalId"], "E-1");

        let found = store
            .read(|c| find_group(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .unwrap();
        assert_eq!(found, created);
        assert!(member_ids(store, &created.id).is_empty());

        let changed = attrs(json!({"displayName": "Engineering (all)"}));
        let updated = store
            .write(|c| update_group(c, scim_store::OrgId::DEFAULT, &created.id, 1, &changed))
            .unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.created, created.created);
        assert!(updated.last_modified >= created.last_modified);
        let found = store
            .read(|c| find_group(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .unwrap();
        assert_eq!(found.attrs["displayName"], "Engineering (all)");
        assert!(!found.attrs.contains_key("externalId"));
        assert_eq!(found, updated);

        // touch: bumps version and lastModified, optionally guarded.
        let touched = store
            .write(|c| touch_group(c, scim_store::OrgId::DEFAULT, &created.id, None))
            .unwrap();
        assert_eq!(touched.version, 3);
        assert!(touched.last_modified >= updated.last_modified);
        assert!(matches!(
            store.write(|c| touch_group(c, scim_store::OrgId::DEFAULT, &created.id, Some(2))),
            Err(StoreError::PreconditionFailed)
        ));
        assert_eq!(
            store
                .write(|c| touch_group(c, scim_store::OrgId::DEFAULT, &created.id, Some(3)))
                .unwrap()
                .version,
            4
        );

        // Stale versions.
        assert!(matches!(
            store.write(|c| update_group(c, scim_store::OrgId::DEFAULT, &created.id, 1, &changed)),
            Err(StoreError::PreconditionFailed)
        ));
        assert!(matches!(
            store.write(|c| delete_group(c, scim_store::OrgId::DEFAULT, &created.id, Some(1))),
            Err(StoreError::PreconditionFailed)
        ));
        store
            .write(|c| delete_group(c, scim_store::OrgId::DEFAULT, &created.id, Some(4)))
            .unwrap();
        assert!(store
            .read(|c| find_group(c, scim_store::OrgId::DEFAULT, &created.id))
            .unwrap()
            .is_none());

        for id in [
            created.id.as_str(),
            "not-a-uuid",
            "",
            "'; DROP TABLE groups; --",
        ] {
            assert!(store
                .read(|c| find_group(c, scim_store::OrgId::DEFAULT, id))
                .unwrap()
                .is_none());
            assert!(matches!(
                store.write(|c| update_group(c, scim_store::OrgId::DEFAULT, id, 1, &group("x"))),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| touch_group(c, scim_store::OrgId::DEFAULT, id, None)),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| touch_group(c, scim_store::OrgId::DEFAULT, id, Some(1))),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_group(c, scim_store::OrgId::DEFAULT, id, None)),
                Err(StoreError::NotFound)
            ));
            assert!(matches!(
                store.write(|c| delete_group(c, scim_store::OrgId::DEFAULT, id, Some(1))),
                Err(StoreError::NotFound)
            ));
        }

        // displayName is required.
        for bad in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": 3}),
        ] {
            let r = store
                .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &attrs(bad.clone()), &[]));
            expect_invalid(r, ScimType::InvalidValue);
        }
    }
}

#[test]
fn display_names_are_unique_case_insensitively() {
    for db in backends() {
        let store = db.store();
        new_group(store, "Straße Team", &[]);
        match store
            .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &group("STRASSE TEAM"), &[]))
        {
            // Rust's to_lowercase does not fold ß to ss: a different name.
            Ok(_) => {}
            other => panic!("{other:?}"),
        }
        match store
            .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &group("straße team"), &[]))
        {
            Err(StoreError::Conflict(msg)) => {
                assert!(msg.contains("straße team"), "{msg}")
            }
            other => panic!("{}: {other:?}", db.backend()),
        }
        let other = new_group(store, "Other", &[]);
        assert!(matches!(
            store.write(|c| update_group(
                c,
                scim_store::OrgId::DEFAULT,
                &other.id,
                1,
                &group("STRAßE team")
            )),
            Err(StoreError::Conflict(_))
        ));
        // Changing only the case of one's own name is fine.
        store
            .write(|c| update_group(c, scim_store::OrgId::DEFAULT, &other.id, 1, &group("OTHER")))
            .unwrap();
    }
}

#[test]
fn racing_inserts_of_one_display_name_have_one_winner() {
    for db in backends() {
        let store = db.store().clone();
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let store = store.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let name = if i % 2 == 0 { "Racers" } else { "RACERS" };
                    barrier.wait();
                    store.write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &group(name), &[]))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{}: {results:?}",
            db.backend()
        );
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
            }
        }
        let page = store
            .read(|c| list_groups(c, scim_store::OrgId::DEFAULT, &all_groups_query()))
            .unwrap();
        assert_eq!(page.total, 1);
    }
}

#[test]
fn adding_and_removing_members() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", Some("Alice A."));
        let bob = new_user(store, "bob", None);
        let carol = new_user(store, "carol", Some("Carol"));
        let g = new_group(store, "Team", &[typed(&alice.id, MemberType::User)]);
        assert_eq!(member_ids(store, &g.id), vec![alice.id.clone()]);

        // Adding: idempotent, duplicates in one request collapse, type optional.
        let added = store
            .write(|c| {
                add_members(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &g.id,
                    &[
                        untyped(&alice.id),
                        untyped(&bob.id),
                        typed(&bob.id, MemberType::User),
                    ],
                )
            })
            .unwrap();
        // The member ids that changed, each once.
        assert_eq!(added.added, vec![bob.id.clone()]);
        assert_eq!(
            store
                .write(|c| add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped(&bob.id)]))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            store
                .write(|c| add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[]))
                .unwrap()
                .len(),
            0,
            "an empty add is a no-op"
        );
        assert_eq!(
            member_ids(store, &g.id),
            sorted(&[&alice.id, &bob.id]),
            "{}",
            db.backend()
        );

        // Removing: a non-member is not an error.
        assert_eq!(
            store
                .write(|c| remove_members(c, &g.id, &[bob.id.clone(), carol.id.clone()]))
                .unwrap()
                .removed,
            vec![bob.id.clone()]
        );
        assert_eq!(
            store
                .write(|c| remove_members(c, &g.id, &["nobody".to_owned()]))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(member_ids(store, &g.id), vec![alice.id.clone()]);

        // Replace validates, then swaps the whole set.
        let n = store
            .write(|c| {
                replace_members(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &g.id,
                    &[untyped(&bob.id), untyped(&carol.id)],
                )
            })
            .unwrap();
        // Alice was replaced by Bob and Carol.
        assert_eq!(sorted_ids(n.added), sorted(&[&bob.id, &carol.id]));
        assert_eq!(n.removed, vec![alice.id.clone()]);
        assert_eq!(member_ids(store, &g.id), sorted(&[&bob.id, &carol.id]));
        let r = store
            .write(|c| replace_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped("ghost")]));
        expect_invalid(r, ScimType::InvalidValue);
        assert_eq!(member_ids(store, &g.id), sorted(&[&bob.id, &carol.id]));

        // Remove all.
        assert_eq!(
            store.write(|c| remove_all_members(c, &g.id)).unwrap().len(),
            2
        );
        assert!(member_ids(store, &g.id).is_empty());
        assert_eq!(
            store.write(|c| remove_all_members(c, &g.id)).unwrap().len(),
            0
        );

        // Adding to a group that does not exist.
        assert!(matches!(
            store.write(|c| add_members(
                c,
                scim_store::OrgId::DEFAULT,
                "no-such-group",
                &[untyped(&bob.id)]
            )),
            Err(StoreError::NotFound)
        ));
    }
}

#[test]
fn unknown_members_are_refused_and_nothing_is_applied() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", None);
        let bob = new_user(store, "bob", None);
        let g = new_group(store, "Team", &[untyped(&alice.id)]);
        let other = new_group(store, "Other", &[]);

        // A valid add earlier in the same write, and a valid id in the same
        // call: the error rolls all of it back.
        let r: Result<MembersChanged, StoreError> = store.write(|c| {
            remove_members(c, &g.id, std::slice::from_ref(&alice.id))?;
            add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped(&bob.id)])?;
            let n = add_members(
                c,
                scim_store::OrgId::DEFAULT,
                &g.id,
                &[untyped(&bob.id), untyped("ghost-1"), untyped("ghost-2")],
            )?;
            touch_group(c, scim_store::OrgId::DEFAULT, &g.id, None)?;
            Ok(n)
        });
        let detail = expect_invalid(r, ScimType::InvalidValue);
        assert!(
            detail.contains("member \"ghost-1\" is not an existing User or Group"),
            "{detail}"
        );
        assert!(detail.contains("\"ghost-2\""), "{detail}");
        assert!(!detail.contains(&bob.id), "{detail}");
        assert_eq!(member_ids(store, &g.id), vec![alice.id.clone()]);
        assert_eq!(version(store, &g.id), 1);

        // Existing, but not of the given type.
        let detail = expect_invalid(
            store.write(|c| {
                add_members(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &g.id,
                    &[typed(&bob.id, MemberType::Group)],
                )
            }),
            ScimType::InvalidValue,
        );
        assert!(detail.contains(&bob.id), "{detail}");
        expect_invalid(
            store.write(|c| {
                add_members(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &g.id,
                    &[typed(&other.id, MemberType::User)],
                )
            }),
            ScimType::InvalidValue,
        );
        // Empty ids, and a group inside itself.
        expect_invalid(
            store.write(|c| add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped("")])),
            ScimType::InvalidValue,
        );
        let detail = expect_invalid(
            store.write(|c| add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped(&g.id)])),
            ScimType::InvalidValue,
        );
        assert!(detail.contains("itself"), "{detail}");
        // Many unknown ids: the message stays short.
        let many: Vec<MemberRef> = (0..600).map(|i| untyped(&format!("ghost-{i}"))).collect();
        let detail = expect_invalid(
            store.write(|c| add_members(c, scim_store::OrgId::DEFAULT, &g.id, &many)),
            ScimType::InvalidValue,
        );
        assert!(detail.contains("and 590 more"), "{detail}");
        // Creating a group with an unknown member creates nothing.
        expect_invalid(
            store.write(|c| {
                insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &group("Doomed"),
                    &[untyped("ghost")],
                )
            }),
            ScimType::InvalidValue,
        );
        assert_eq!(
            store
                .read(|c| list_groups(c, scim_store::OrgId::DEFAULT, &all_groups_query()))
                .unwrap()
                .total,
            2
        );
        assert_eq!(member_ids(store, &g.id), vec![alice.id.clone()]);
    }
}

#[test]
fn members_carry_their_current_display_and_type() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", Some("Alice A."));
        let bob = new_user(store, "bob", None);
        let inner = new_group(store, "Inner", &[untyped(&bob.id)]);
        let outer = new_group(
            store,
            "Outer",
            &[untyped(&alice.id), untyped(&bob.id), untyped(&inner.id)],
        );
        let members = store.read(|c| list_group_members(c, &outer.id)).unwrap();
        assert_eq!(members.len(), 3);
        let by_id = |id: &str| members.iter().find(|m| m.value == id).unwrap().clone();
        assert_eq!(by_id(&alice.id).member_type, MemberType::User);
        assert_eq!(by_id(&alice.id).display.as_deref(), Some("Alice A."));
        assert_eq!(by_id(&bob.id).display, None);
        assert_eq!(by_id(&inner.id).member_type, MemberType::Group);
        assert_eq!(by_id(&inner.id).display.as_deref(), Some("Inner"));
        let ids: Vec<String> = members.iter().map(|m| m.value.clone()).collect();
        assert_eq!(
            ids,
            sorted(&[&alice.id, &bob.id, &inner.id]),
            "ordered by id"
        );

        // Renames show up without touching the memberships.
        let mut renamed = user("alice");
        renamed.insert("displayName".into(), json!("Alice Liddell"));
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &alice.id,
                    1,
                    &renamed,
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        store
            .write(|c| {
                update_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &inner.id,
                    1,
                    &group("Inner Circle"),
                )
            })
            .unwrap();
        let mut bob_named = user("bob");
        bob_named.insert("displayName".into(), json!("Bob"));
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &bob.id,
                    1,
                    &bob_named,
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        let members = store.read(|c| list_group_members(c, &outer.id)).unwrap();
        let display = |id: &str| {
            members
                .iter()
                .find(|m| m.value == id)
                .unwrap()
                .display
                .clone()
        };
        assert_eq!(display(&alice.id).as_deref(), Some("Alice Liddell"));
        assert_eq!(display(&bob.id).as_deref(), Some("Bob"));
        assert_eq!(display(&inner.id).as_deref(), Some("Inner Circle"));
        // Removing the displayName clears display.
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &alice.id,
                    2,
                    &user("alice"),
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        let members = store.read(|c| list_group_members(c, &outer.id)).unwrap();
        assert_eq!(
            members
                .iter()
                .find(|m| m.value == alice.id)
                .unwrap()
                .display,
            None
        );
        // A missing group has no members.
        assert!(store
            .read(|c| list_group_members(c, "nope"))
            .unwrap()
            .is_empty());
    }
}

#[test]
fn removing_members_by_value_filter() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let a = new_user(store, "a", Some("Alpha"));
        let b = new_user(store, "b", Some("Beta"));
        let c_ = new_user(store, "c", Some("Gamma"));
        let sub = new_group(store, "Sub", &[]);
        let everyone = [
            untyped(&a.id),
            untyped(&b.id),
            untyped(&c_.id),
            untyped(&sub.id),
        ];
        let g = new_group(store, "G", &everyone);
        let remove = |text: &str| {
            let f = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            store
                .write(|c| remove_members_matching(c, &g.id, &f))
                .map(|changed| changed.len())
        };
        let reset = || {
            store
                .write(|c| replace_members(c, scim_store::OrgId::DEFAULT, &g.id, &everyone))
                .unwrap();
        };

        let text = format!(r#"value eq "{}" or value eq "{}""#, a.id, b.id);
        assert_eq!(remove(&text).unwrap(), 2);
        assert_eq!(member_ids(store, &g.id), sorted(&[&c_.id, &sub.id]));
        // Nothing matching is not an error.
        assert_eq!(remove(&text).unwrap(), 0);
        reset();
        // value is caseExact.
        assert_eq!(
            remove(&format!(r#"value eq "{}""#, a.id.to_uppercase())).unwrap(),
            0
        );
        // type compares case-insensitively.
        assert_eq!(remove(r#"type eq "group""#).unwrap(), 1);
        assert_eq!(member_ids(store, &g.id).len(), 3);
        reset();
        // display is the member's current displayName, case-insensitive.
        assert_eq!(remove(r#"display eq "beta""#).unwrap(), 1);
        assert_eq!(
            remove(r#"display sw "GAM" or display eq "Sub""#).unwrap(),
            2
        );
        assert_eq!(member_ids(store, &g.id), vec![a.id.clone()]);
        reset();
        assert_eq!(
            remove(&format!(r#"type eq "User" and not (value eq "{}")"#, a.id)).unwrap(),
            2
        );
        assert_eq!(member_ids(store, &g.id), sorted(&[&a.id, &sub.id]));
        // Only members' sub-attributes are allowed.
        for bad in [
            r#"primary eq true"#,
            r#"members.value eq "x""#,
            r#"userName eq "a""#,
        ] {
            expect_invalid(remove(bad), ScimType::InvalidFilter);
        }
        // Other groups are untouched.
        let other = new_group(store, "Other", &[untyped(&a.id)]);
        reset();
        assert_eq!(remove(&format!(r#"value eq "{}""#, a.id)).unwrap(), 1);
        assert_eq!(member_ids(store, &other.id), vec![a.id.clone()]);
    }
}

#[test]
fn deleting_a_user_removes_its_memberships() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", None);
        let bob = new_user(store, "bob", None);
        let g1 = new_group(store, "G1", &[untyped(&alice.id), untyped(&bob.id)]);
        let g2 = new_group(store, "G2", &[untyped(&alice.id)]);
        let g3 = new_group(store, "G3", &[untyped(&bob.id)]);
        // Suspending keeps memberships.
        let mut suspended = user("alice");
        suspended.insert("active".into(), json!(false));
        store
            .write(|c| {
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &alice.id,
                    1,
                    &suspended,
                    PasswordChange::Keep,
                )
            })
            .unwrap();
        assert_eq!(member_ids(store, &g2.id), vec![alice.id.clone()]);

        store
            .write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &alice.id, None))
            .unwrap();
        assert_eq!(member_ids(store, &g1.id), vec![bob.id.clone()]);
        assert!(member_ids(store, &g2.id).is_empty());
        assert_eq!(version(store, &g1.id), 2);
        assert_eq!(version(store, &g2.id), 2);
        assert_eq!(version(store, &g3.id), 1, "{}", db.backend());
        assert_eq!(membership_rows(store), 2);

        // A failed (stale) delete changes nothing.
        assert!(matches!(
            store.write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &bob.id, Some(9))),
            Err(StoreError::PreconditionFailed)
        ));
        assert_eq!(membership_rows(store), 2);
    }
}

#[test]
fn deleting_a_group_removes_its_rows_in_both_directions() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", None);
        let child = new_group(store, "Child", &[untyped(&alice.id)]);
        let parent = new_group(store, "Parent", &[untyped(&child.id), untyped(&alice.id)]);
        let grand = new_group(store, "Grand", &[untyped(&parent.id)]);
        let unrelated = new_group(store, "Unrelated", &[untyped(&alice.id)]);
        assert_eq!(membership_rows(store), 5);

        store
            .write(|c| delete_group(c, scim_store::OrgId::DEFAULT, &parent.id, None))
            .unwrap();
        // Its own member rows (cascade) and its membership in Grand.
        assert_eq!(membership_rows(store), 2, "{}", db.backend());
        assert!(member_ids(store, &grand.id).is_empty());
        assert_eq!(version(store, &grand.id), 2);
        assert_eq!(member_ids(store, &child.id), vec![alice.id.clone()]);
        assert_eq!(version(store, &child.id), 1);
        assert_eq!(version(store, &unrelated.id), 1);

        // A child deleted: its parents lose it.
        let p2 = new_group(store, "P2", &[untyped(&child.id)]);
        store
            .write(|c| delete_group(c, scim_store::OrgId::DEFAULT, &child.id, Some(1)))
            .unwrap();
        assert!(member_ids(store, &p2.id).is_empty());
        assert_eq!(version(store, &p2.id), 2);
        assert_eq!(membership_rows(store), 1);
    }
}

#[test]
fn groups_of_users_is_one_lookup_for_a_page() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", None);
        let bob = new_user(store, "bob", None);
        let carol = new_user(store, "carol", None);
        let zeta = new_group(store, "zeta", &[untyped(&alice.id), untyped(&bob.id)]);
        let alpha = new_group(store, "Alpha", &[untyped(&alice.id)]);
        // A group-in-group membership is not a user's membership.
        new_group(store, "Nest", &[untyped(&alpha.id)]);
        let ids = [
            alice.id.as_str(),
            bob.id.as_str(),
            carol.id.as_str(),
            alice.id.as_str(),
            "unknown",
        ];
        let map = store.read(|c| groups_of_users(c, &ids)).unwrap();
        assert_eq!(map.len(), 4);
        let refs = |id: &str| {
            map[id]
                .iter()
                .map(|g| (g.value.clone(), g.display.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            refs(&alice.id),
            vec![
                (alpha.id.clone(), "Alpha".to_owned()),
                (zeta.id.clone(), "zeta".to_owned())
            ],
            "ordered by displayName, case-insensitively"
        );
        assert_eq!(refs(&bob.id), vec![(zeta.id.clone(), "zeta".to_owned())]);
        assert!(map[carol.id.as_str()].is_empty());
        assert!(map["unknown"].is_empty());
        assert!(store.read(|c| groups_of_users(c, &[])).unwrap().is_empty());
        // More ids than one IN list holds.
        let many: Vec<String> = (0..1200).map(|i| format!("x-{i}")).collect();
        let mut refs_many: Vec<&str> = many.iter().map(String::as_str).collect();
        refs_many.push(&bob.id);
        let map = store.read(|c| groups_of_users(c, &refs_many)).unwrap();
        assert_eq!(map.len(), 1201);
        assert_eq!(map[bob.id.as_str()].len(), 1);
    }
}

fn all_groups_query<'a>() -> ListQuery<'a> {
    ListQuery {
        filter: None,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100,
    }
}

fn group_names(store: &Store, text: &str) -> Result<BTreeSet<String>, StoreError> {
    let f = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let q = ListQuery {
        filter: Some(&f),
        ..all_groups_query()
    };
    let page = store.read(|c| list_groups(c, scim_store::OrgId::DEFAULT, &q))?;
    assert_eq!(page.total, page.items.len() as i64, "{text}");
    for g in &page.items {
        assert!(!g.attrs.contains_key("members"));
    }
    Ok(page
        .items
        .into_iter()
        .map(|g| g.attrs["displayName"].as_str().unwrap().to_owned())
        .collect())
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn filtering_groups_and_users_by_membership() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let alice = new_user(store, "alice", None);
        let bob = new_user(store, "bob", None);
        let eng = store
            .write(|c| {
                insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &attrs(json!({"displayName": "Engineering", "externalId": "E-1"})),
                    &[untyped(&alice.id)],
                )
            })
            .unwrap();
        let mgrs = store
            .write(|c| {
                insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &attrs(json!({"displayName": "Engineering Managers", "externalId": "e-1"})),
                    &[untyped(&bob.id)],
                )
            })
            .unwrap();
        new_group(store, "Sales", &[untyped(&alice.id), untyped(&eng.id)]);
        new_group(store, "Empty 100%", &[]);

        let cases: Vec<(String, BTreeSet<String>)> = vec![
            (
                r#"displayName eq "engineering""#.into(),
                set(&["Engineering"]),
            ),
            (
                r#"DISPLAYNAME co "NEER""#.into(),
                set(&["Engineering", "Engineering Managers"]),
            ),
            (
                r#"displayName sw "eng""#.into(),
                set(&["Engineering", "Engineering Managers"]),
            ),
            (r#"displayName ew "0%""#.into(), set(&["Empty 100%"])),
            (r#"displayName co "%""#.into(), set(&["Empty 100%"])),
            (r#"externalId eq "E-1""#.into(), set(&["Engineering"])),
            (
                r#"externalId eq "e-1""#.into(),
                set(&["Engineering Managers"]),
            ),
            (
                r#"externalId pr"#.into(),
                set(&["Engineering", "Engineering Managers"]),
            ),
            (
                format!(r#"members[value eq "{}"]"#, alice.id),
                set(&["Engineering", "Sales"]),
            ),
            (
                format!(r#"members.value eq "{}""#, bob.id),
                set(&["Engineering Managers"]),
            ),
            (format!(r#"members eq "{}""#, eng.id), set(&["Sales"])),
            (r#"members[type eq "Group"]"#.into(), set(&["Sales"])),
            (
                r#"members.type eq "user""#.into(),
                set(&["Engineering", "Engineering Managers", "Sales"]),
            ),
            (r#"not (members pr)"#.into(), set(&["Empty 100%"])),
            (
                format!(r#"members.value ne "{}""#, alice.id),
                set(&["Engineering Managers", "Empty 100%"]),
            ),
            (
                format!(
                    r#"members[value eq "{}" or value eq "{}"] and displayName sw "Eng""#,
                    alice.id, bob.id
                ),
                set(&["Engineering", "Engineering Managers"]),
            ),
            (
                format!(r#"id eq "{}""#, mgrs.id),
                set(&["Engineering Managers"]),
            ),
            (
                r#"meta.resourceType eq "Group""#.into(),
                set(&["Engineering", "Engineering Managers", "Sales", "Empty 100%"]),
            ),
            (r#"meta.resourceType eq "User""#.into(), set(&[])),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "SALES""#.into(),
                set(&["Sales"]),
            ),
            (
                r#"meta.created gt "2000-01-01T00:00:00Z""#.into(),
                set(&["Engineering", "Engineering Managers", "Sales", "Empty 100%"]),
            ),
        ];
        for (text, expected) in &cases {
            assert_eq!(
                &group_names(store, text).unwrap(),
                expected,
                "{}: {text}",
                db.backend()
            );
        }
        for bad in [
            r#"userName eq "x""#,
            r#"members.display eq "x""#,
            r#"members[display eq "x"]"#,
            r#"members.$ref eq "x""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:displayName eq "x""#,
            r#"emails eq "x""#,
            r#"displayName.x eq "x""#,
        ] {
            expect_invalid(group_names(store, bad), ScimType::InvalidFilter);
        }

        // Users by their groups.
        let user_names = |text: &str| -> BTreeSet<String> {
            let f = parse_filter(text).unwrap();
            let q = ListQuery {
                filter: Some(&f),
                ..all_groups_query()
            };
            store
                .read(|c| list_users(c, scim_store::OrgId::DEFAULT, &q))
                .unwrap()
                .items
                .into_iter()
                .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            user_names(&format!(r#"groups[value eq "{}"]"#, eng.id)),
            set(&["alice"])
        );
        assert_eq!(
            user_names(&format!(r#"groups.value eq "{}""#, mgrs.id)),
            set(&["bob"])
        );
        assert_eq!(
            user_names(&format!(r#"groups eq "{}""#, mgrs.id)),
            set(&["bob"])
        );
        assert_eq!(user_names(r#"groups.display eq "SALES""#), set(&["alice"]));
        assert_eq!(
            user_names(r#"groups[display sw "engineering"]"#),
            set(&["alice", "bob"])
        );
        assert_eq!(user_names("groups pr"), set(&["alice", "bob"]));
        let carol = new_user(store, "carol", None);
        assert_eq!(user_names("not (groups pr)"), set(&["carol"]));
        assert_eq!(
            user_names(&format!(r#"groups.value ne "{}""#, eng.id)),
            set(&["bob", "carol"])
        );
        // A group that is a member is not a user's group.
        let sales_members = user_names(r#"groups.display eq "Sales""#);
        assert!(!sales_members.contains("carol"), "{carol:?}");
    }
}

#[test]
fn paging_and_sorting_groups() {
    for db in backends() {
        let store = db.store();
        for (name, ext) in [
            ("delta", Some("3")),
            ("Alpha", None),
            ("charlie", Some("1")),
            ("Bravo", Some("2")),
        ] {
            let mut a = group(name);
            if let Some(e) = ext {
                a.insert("externalId".into(), json!(e));
            }
            let g = store
                .write(|c| insert_group(c, scim_store::OrgId::DEFAULT, &a, &[]))
                .unwrap();
            // Distinct timestamps, so created order is insertion order.
            crate::after(&g.last_modified);
        }
        let names = |by: Option<&str>, descending: bool, start: i64, count: i64| {
            let path = by.map(|b| parse_attr_path(b).unwrap());
            let q = ListQuery {
                filter: None,
                sort_by: path.as_ref(),
                descending,
                start_index: start,
                count,
            };
            let page = store
                .read(|c| list_groups(c, scim_store::OrgId::DEFAULT, &q))
                .unwrap();
            (
                page.total,
                page.items
                    .into_iter()
                    .map(|g| g.attrs["displayName"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            names(None, false, 1, 10),
            (
                4,
                vec![
                    "delta".into(),
                    "Alpha".into(),
                    "charlie".into(),
                    "Bravo".into()
                ]
            ),
            "creation order by default"
        );
        assert_eq!(
            names(Some("displayName"), false, 1, 10).1,
            vec!["Alpha", "Bravo", "charlie", "delta"],
            "case-insensitive"
        );
        assert_eq!(
            names(Some("displayName"), true, 1, 10).1,
            vec!["delta", "charlie", "Bravo", "Alpha"]
        );
        assert_eq!(
            names(Some("externalId"), false, 1, 10).1,
            vec!["charlie", "Bravo", "delta", "Alpha"],
            "missing values last"
        );
        assert_eq!(
            names(Some("meta.lastModified"), true, 1, 10).1,
            vec!["Bravo", "charlie", "Alpha", "delta"]
        );
        assert_eq!(
            names(Some("displayName"), false, 2, 2),
            (4, vec!["Bravo".into(), "charlie".into()])
        );
        assert_eq!(
            names(Some("displayName"), false, 4, 2),
            (4, vec!["delta".into()])
        );
        assert_eq!(names(None, false, 9, 2), (4, vec![]));
        assert_eq!(names(None, false, 1, 0), (4, vec![]));
        assert_eq!(names(Some("id"), false, 1, 10).0, 4);
        assert_eq!(names(Some("meta.created"), false, 1, 10).1[0], "delta");
        for bad in ["members", "members.value", "userName", "emails.value"] {
            let path = parse_attr_path(bad).unwrap();
            let q = ListQuery {
                sort_by: Some(&path),
                ..all_groups_query()
            };
            expect_invalid(
                store.read(|c| list_groups(c, scim_store::OrgId::DEFAULT, &q)),
                ScimType::InvalidValue,
            );
        }
    }
}

#[test]
fn concurrent_single_member_adds_lose_nothing() {
    for db in backends() {
        let store = db.store().clone();
        enable_sync(&store, scim_store::OrgId::DEFAULT);
        let threads = 16;
        let per_thread = 8;
        let users: Vec<Vec<String>> = (0..threads)
            .map(|t| {
                (0..per_thread)
                    .map(|i| new_user(&store, &format!("u{t}-{i}"), None).id)
                    .collect()
            })
            .collect();
        let g = new_group(&store, "Busy", &[]);
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = users
            .iter()
            .cloned()
            .map(|ids| {
                let store = store.clone();
                let barrier = barrier.clone();
                let gid = g.id.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for id in ids {
                        // As the HTTP side does for one PATCH: add, then
                        // bump the group, in one transaction.
                        store
                            .write(|c| {
                                let n = add_members(
                                    c,
                                    scim_store::OrgId::DEFAULT,
                                    &gid,
                                    &[untyped(&id)],
                                )?;
                                touch_group(c, scim_store::OrgId::DEFAULT, &gid, None)?;
                                Ok(n)
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut all: Vec<String> = users.into_iter().flatten().collect();
        all.sort();
        assert_eq!(member_ids(&store, &g.id), all, "{}", db.backend());
        assert_eq!(
            version(&store, &g.id),
            1 + (threads * per_thread) as i64,
            "every change bumped the version"
        );
    }
}

/// Inserts `n` users directly (the 100,000-member test needs them fast;
/// this is fixture setup, not the code under test).
fn bulk_users(db: &TestDb, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let now = scim_core::datetime::now();
    for chunk in ids.chunks(2000) {
        let mut sql = String::from(
            "INSERT INTO users (id, user_name, user_name_ci, active, resource, version, \
             created, last_modified, display_name) VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "('{id}', 'bulk-{id}', 'bulk-{id}', TRUE, '{{\"userName\":\"bulk-{id}\"}}', 1, \
                 '{now}', '{now}', 'Bulk {id}')"
            ));
        }
        db.store()
            .write(|c| {
                diesel::sql_query(sql.as_str())
                    .execute(c)
                    .map_err(StoreError::from)
            })
            .unwrap();
    }
    ids
}

#[test]
fn a_group_of_100_000_members() {
    const N: usize = 100_000;
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let started = Instant::now();
        let ids = bulk_users(&db, N);
        let g = new_group(store, "Everyone", &[]);
        let seeded = Instant::now();
        for chunk in ids.chunks(10_000) {
            let refs: Vec<MemberRef> = chunk.iter().map(|id| typed(id, MemberType::User)).collect();
            let added = store
                .write(|c| {
                    let n = add_members(c, scim_store::OrgId::DEFAULT, &g.id, &refs)?;
                    touch_group(c, scim_store::OrgId::DEFAULT, &g.id, None)?;
                    Ok(n)
                })
                .unwrap();
            assert_eq!(added.added.len(), chunk.len());
        }
        let built = Instant::now();
        let members = store.read(|c| list_group_members(c, &g.id)).unwrap();
        let listed = Instant::now();
        assert_eq!(members.len(), N);
        assert_eq!(members[0].value, ids[0]);
        assert_eq!(members[N - 1].value, ids[N - 1]);
        assert_eq!(
            members[123].display.as_deref(),
            Some(format!("Bulk {}", ids[123]).as_str())
        );
        assert!(members.iter().all(|m| m.member_type == MemberType::User));

        // One more member in, then out: one row and one version bump each.
        let extra = new_user(store, "one-more", Some("One More"));
        let one = Instant::now();
        let v = store
            .write(|c| {
                let n = add_members(c, scim_store::OrgId::DEFAULT, &g.id, &[untyped(&extra.id)])?;
                assert_eq!(n.added, vec![extra.id.clone()]);
                Ok(touch_group(c, scim_store::OrgId::DEFAULT, &g.id, Some(11))?.version)
            })
            .unwrap();
        assert_eq!(v, 12);
        let removed = store
            .write(|c| {
                let n = remove_members(c, &g.id, std::slice::from_ref(&extra.id))?;
                touch_group(c, scim_store::OrgId::DEFAULT, &g.id, Some(12))?;
                Ok(n)
            })
            .unwrap();
        assert_eq!(removed.removed, vec![extra.id.clone()]);
        let f = parse_filter(&format!(r#"value eq "{}""#, ids[5])).unwrap();
        assert_eq!(
            store
                .write(|c| remove_members_matching(c, &g.id, &f))
                .unwrap()
                .removed,
            vec![ids[5].clone()]
        );
        let single_ops = one.elapsed();
        // The group's own record and a filtered list never read members.
        let found = store
            .read(|c| find_group(c, scim_store::OrgId::DEFAULT, &g.id))
            .unwrap()
            .unwrap();
        assert_eq!(found.version, 13);
        assert_eq!(
            group_names(store, &format!(r#"members[value eq "{}"]"#, ids[7])).unwrap(),
            set(&["Everyone"])
        );
        let map = store
            .read(|c| groups_of_users(c, &[ids[9].as_str()]))
            .unwrap();
        assert_eq!(map[ids[9].as_str()].len(), 1);
        assert_eq!(membership_rows(store), (N - 1) as i64);
        // Deleting a member user touches only its own memberships.
        store
            .write(|c| delete_user(c, scim_store::OrgId::DEFAULT, &ids[0], None))
            .unwrap();
        assert_eq!(version(store, &g.id), 14);
        let deleting = Instant::now();
        store
            .write(|c| delete_group(c, scim_store::OrgId::DEFAULT, &g.id, None))
            .unwrap();
        assert_eq!(membership_rows(store), 0);
        eprintln!(
            "{}: seed {:?}, build {:?}, list {:?}, single add/remove/remove-matching {:?}, delete {:?}, total {:?}",
            db.backend(),
            seeded - started,
            built - seeded,
            listed - built,
            single_ops,
            deleting.elapsed(),
            started.elapsed()
        );
    }
}

#[test]
fn user_display_name_is_backfilled_by_the_migration() {
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
    for db in backends() {
        db.store().revert_all_migrations().unwrap();
        let url = db.url();
        let mut conn = match db.backend() {
            scim_store::Backend::Sqlite => DbConnection::Sqlite(
                diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap(),
            ),
            scim_store::Backend::Postgres => {
                DbConnection::Postgres(scim_store::connection::pg_establish(url).unwrap())
            }
        };
        let next = |conn: &mut DbConnection| match conn {
            DbConnection::Sqlite(c) => {
                c.run_next_migration(SQLITE).unwrap();
            }
            DbConnection::Postgres(c) => {
                c.run_next_migration(POSTGRES).unwrap();
            }
        };
        next(&mut conn); // init
        diesel::sql_query(
            "INSERT INTO users (id, user_name, user_name_ci, active, resource, version, created, last_modified) VALUES \
             ('u1', 'a', 'a', TRUE, '{\"userName\":\"a\",\"displayName\":\"Ann O''Neil\"}', 1, 't', 't'), \
             ('u2', 'b', 'b', TRUE, '{\"userName\":\"b\"}', 1, 't', 't'), \
             ('u3', 'c', 'c', TRUE, '{\"userName\":\"c\",\"displayName\":7}', 1, 't', 't')",
        )
        .execute(&mut conn)
        .unwrap();
        next(&mut conn); // groups
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            display_name: Option<String>,
        }
        let rows: Vec<Row> = diesel::sql_query("SELECT id, display_name FROM users ORDER BY id")
            .load(&mut conn)
            .unwrap();
        let got: Vec<(String, Option<String>)> =
            rows.into_iter().map(|r| (r.id, r.display_name)).collect();
        assert_eq!(
            got,
            vec![
                ("u1".to_owned(), Some("Ann O'Neil".to_owned())),
                ("u2".to_owned(), None),
                ("u3".to_owned(), None),
            ],
            "{}",
            db.backend()
        );
        drop(conn);
        // Any later migrations, then the store works as usual.
        db.store().migrate().unwrap();
        let g = db
            .store()
            .write(|c| {
                insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &group("After"),
                    &[untyped("u1")],
                )
            })
            .unwrap();
        let members = db.store().read(|c| list_group_members(c, &g.id)).unwrap();
        assert_eq!(members[0].display.as_deref(), Some("Ann O'Neil"));
    }
}

#[test]
fn a_page_of_members_is_read_without_the_rest() {
    for db in backends() {
        let store = db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let users: Vec<_> = (0..7)
            .map(|i| new_user(store, &format!("p{i}"), Some(&format!("P {i}"))))
            .collect();
        let refs: Vec<MemberRef> = users.iter().map(|u| untyped(&u.id)).collect();
        let g = new_group(store, "Paged", &refs);
        let all = store
            .read(|c| scim_store::members::list_group_members(c, &g.id))
            .unwrap();
        assert_eq!(all.len(), 7);
        let total = store
            .read(|c| scim_store::members::count_group_members(c, &g.id))
            .unwrap();
        assert_eq!(total, 7);
        let mut paged = Vec::new();
        for offset in [0, 3, 6] {
            let page = store
                .read(|c| scim_store::members::list_group_members_page(c, &g.id, offset, 3))
                .unwrap();
            assert!(page.len() <= 3);
            paged.extend(page);
        }
        assert_eq!(paged, all, "pages are the full list, in order");
        let beyond = store
            .read(|c| scim_store::members::list_group_members_page(c, &g.id, 100, 3))
            .unwrap();
        assert!(beyond.is_empty());
        let missing = store
            .read(|c| scim_store::members::count_group_members(c, "no-such-group"))
            .unwrap();
        assert_eq!(missing, 0);
    }
}
