//! Groups and membership, in every form Entra ID (both dialects) and Okta
//! send, on both backends.

use actix_web::http::{header, Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::{assert_scim_error, call, TestApp};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

/// An Entra-style group create body.
fn entra_group(name: &str) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": name,
        "meta": {"resourceType": "Group"}
    })
}

async fn user(app: &TestApp, name: &str) -> String {
    app.create_user(json!({"userName": name, "displayName": format!("Display {name}")}))
        .await
}

async fn group(app: &TestApp, name: &str) -> String {
    let res = app.post("/scim/v2/Groups", entra_group(name)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_string()
}

async fn member_ids(app: &TestApp, gid: &str) -> Vec<String> {
    let res = app.get(&format!("/scim/v2/Groups/{gid}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let mut ids: Vec<String> = res.body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[actix_web::test]
async fn create_get_and_uniqueness() {
    for app in TestApp::all() {
        let backend = app.backend();
        let res = app.post("/scim/v2/Groups", entra_group("Sales Team")).await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let id = res.body["id"].as_str().unwrap().to_string();
        assert!(res
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/scim/v2/Groups/{id}"))));
        assert_eq!(res.header("etag"), Some("W/\"1\""));
        assert_eq!(res.body["meta"]["resourceType"], "Group");
        assert_eq!(res.body["displayName"], "Sales Team");
        assert_eq!(
            res.body["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
        );

        let res = app.post("/scim/v2/Groups", entra_group("sales TEAM")).await;
        assert_scim_error(&res, 409, Some("uniqueness"));
        let res = app
            .post("/scim/v2/Groups", json!({"externalId": "x"}))
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        // Entra's lookup, which must not read the membership table.
        let res = app
            .get("/scim/v2/Groups?excludedAttributes=members&filter=displayName%20eq%20%22sales%20team%22")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        assert!(res.body["Resources"][0].get("members").is_none());
        let res = app
            .get(&format!("/scim/v2/Groups/{id}?excludedAttributes=members"))
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.body.get("members").is_none());
        // Not found.
        assert_scim_error(
            &app.get("/scim/v2/Groups/00000000-0000-0000-0000-000000000000")
                .await,
            404,
            None,
        );
        // Created with members.
        let u = user(&app, "member0@example.com").await;
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "With Members", "members": [{"value": u, "display": "ignored"}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let m = &res.body["members"][0];
        assert_eq!(m["value"], u.as_str());
        assert_eq!(m["type"], "User");
        assert_eq!(m["display"], "Display member0@example.com");
        assert!(m["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Users/{u}")));
    }
}

#[actix_web::test]
async fn entra_membership_patches() {
    for app in TestApp::all() {
        let backend = app.backend();
        let gid = group(&app, "Entra Group").await;
        let path = format!("/scim/v2/Groups/{gid}");
        let mut users = Vec::new();
        for i in 0..6 {
            users.push(user(&app, &format!("m{i}@contoso.com")).await);
        }

        // Add: many members in one op, many ops in one request, $ref null.
        let res = app
            .patch(
                &path,
                patch(json!([
                    {"op": "Add", "path": "members", "value": [
                        {"$ref": null, "value": users[0]},
                        {"$ref": null, "value": users[1]}
                    ]},
                    {"op": "Add", "path": "members", "value": [{"$ref": null, "value": users[2]}]}
                ])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert_eq!(res.header("etag"), Some("W/\"2\""));
        assert_eq!(member_ids(&app, &gid).await, sorted(users[0..3].to_vec()));

        // Path-less add (aadOptscim062020 / Okta).
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "add", "value": {"members": [{"value": users[3]}, {"value": users[4]}]}}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert_eq!(member_ids(&app, &gid).await.len(), 5);

        // Adding an existing member changes nothing and is not an error.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "Add", "path": "members", "value": [{"value": users[0]}]}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_eq!(member_ids(&app, &gid).await.len(), 5);

        // Entra default remove: a value array.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "Remove", "path": "members", "value": [{"value": users[0]}]}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert!(!member_ids(&app, &gid).await.contains(&users[0]));

        // RFC remove with a filter.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[1])}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert!(!member_ids(&app, &gid).await.contains(&users[1]));

        // Or-filter.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\" or value eq \"{}\"]", users[2], users[3])}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert_eq!(member_ids(&app, &gid).await, vec![users[4].clone()]);

        // Removing a non-member is not an error.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "Remove", "path": "members", "value": [{"value": users[5]}]}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);

        // Replace members and rename in one request.
        let res = app
            .patch(
                &path,
                patch(json!([
                    {"op": "replace", "path": "members", "value": [{"value": users[0]}, {"value": users[5]}]},
                    {"op": "Replace", "path": "displayName", "value": "Renamed Group"}
                ])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        let res = app.get(&path).await;
        assert_eq!(res.body["displayName"], "Renamed Group");
        assert_eq!(
            member_ids(&app, &gid).await,
            sorted(vec![users[0].clone(), users[5].clone()])
        );

        // Path-less replace with a rename (aadOptscim062020).
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "Renamed Again"}}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );

        // Remove all.
        let res = app
            .patch(&path, patch(json!([{"op": "remove", "path": "members"}])))
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert!(member_ids(&app, &gid).await.is_empty());

        // With attributes, PATCH answers 200 with the projected resource.
        let res = app
            .patch(
                &format!("{path}?attributes=displayName,members"),
                patch(json!([{"op": "add", "path": "members", "value": [{"value": users[1]}]}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["displayName"], "Renamed Again");
        assert_eq!(res.body["members"][0]["value"], users[1].as_str());
        assert!(res.body.get("externalId").is_none());
    }
}

#[actix_web::test]
async fn bad_members_apply_nothing() {
    for app in TestApp::all() {
        let gid = group(&app, "Atomic").await;
        let path = format!("/scim/v2/Groups/{gid}");
        let u = user(&app, "atomic@example.com").await;
        let res = app
            .patch(
                &path,
                patch(json!([
                    {"op": "Replace", "path": "displayName", "value": "Should Not Stick"},
                    {"op": "Add", "path": "members", "value": [{"value": u}, {"value": "11111111-2222-3333-4444-555555555555"}]}
                ])),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        assert!(res.body["detail"]
            .as_str()
            .unwrap()
            .contains("11111111-2222-3333-4444-555555555555"));
        let res = app.get(&path).await;
        assert_eq!(res.body["displayName"], "Atomic");
        assert!(res.body.get("members").is_none(), "{}", res.body);
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");

        for bad in [
            json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]),
            json!([{"op": "add", "path": "members", "value": "not-a-list"}]),
            json!([{"op": "add", "path": "members", "value": [{"value": u, "type": "Robot"}]}]),
        ] {
            let res = app.patch(&path, patch(bad)).await;
            assert_scim_error(&res, 400, Some("invalidValue"));
        }
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "replace", "path": "members[value eq \"x\"].display", "value": "y"}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        // A group cannot contain itself.
        let res = app
            .patch(
                &path,
                patch(json!([{"op": "add", "path": "members", "value": [{"value": gid, "type": "Group"}]}])),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
    }
}

#[actix_web::test]
async fn users_show_their_groups_and_filters_cross_both_ways() {
    for app in TestApp::all() {
        let backend = app.backend();
        let u = user(&app, "member@example.com").await;
        let other = user(&app, "other@example.com").await;
        let g1 = group(&app, "One").await;
        let g2 = group(&app, "Two").await;
        for g in [&g1, &g2] {
            let res = app
                .patch(
                    &format!("/scim/v2/Groups/{g}"),
                    patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
                )
                .await;
            assert_eq!(res.status, StatusCode::NO_CONTENT);
        }
        // Nested group.
        let res = app
            .patch(
                &format!("/scim/v2/Groups/{g1}"),
                patch(json!([{"op": "add", "path": "members", "value": [{"value": g2, "type": "Group"}]}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);

        let res = app.get(&format!("/scim/v2/Users/{u}")).await;
        let groups = res.body["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{backend}: {}", res.body);
        let one = groups.iter().find(|g| g["value"] == g1.as_str()).unwrap();
        assert_eq!(one["display"], "One");
        assert_eq!(one["type"], "direct");
        assert!(one["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Groups/{g1}")));
        let res = app.get(&format!("/scim/v2/Users/{other}")).await;
        assert!(res.body.get("groups").is_none());
        // Not loaded when excluded.
        let res = app
            .get(&format!("/scim/v2/Users/{u}?excludedAttributes=groups"))
            .await;
        assert!(res.body.get("groups").is_none());

        let res = app
            .get(&format!(
                "/scim/v2/Users?filter=groups%5Bvalue%20eq%20%22{g1}%22%5D"
            ))
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        assert_eq!(res.body["Resources"][0]["id"], u.as_str());
        // A list shows each user's groups too, ordered by displayName like
        // GET (which reads them in its one statement).
        let displays = |v: &serde_json::Value| -> Vec<String> {
            v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["display"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            displays(&res.body["Resources"][0]),
            ["One", "Two"],
            "{backend}"
        );
        let res = app.get(&format!("/scim/v2/Users/{u}")).await;
        assert_eq!(displays(&res.body), ["One", "Two"], "{backend}");
        let res = app.get("/scim/v2/Users?excludedAttributes=groups").await;
        let listed = res.body["Resources"].as_array().unwrap();
        assert!(
            listed.len() == 2 && listed.iter().all(|r| r.get("groups").is_none()),
            "{backend}: {}",
            res.body
        );
        let res = app
            .get(&format!(
                "/scim/v2/Groups?filter=members%5Bvalue%20eq%20%22{u}%22%5D&excludedAttributes=members"
            ))
            .await;
        assert_eq!(res.body["totalResults"], 2, "{backend}: {}", res.body);
        let res = app
            .get(&format!(
                "/scim/v2/Groups?filter=members.value%20eq%20%22{g2}%22"
            ))
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);

        // Suspending keeps memberships.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{u}"),
                patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
            )
            .await;
        assert_eq!(res.body["active"], false);
        assert_eq!(res.body["groups"].as_array().unwrap().len(), 2);

        // Deleting the group removes it from the user and from its parent.
        assert_eq!(
            app.delete(&format!("/scim/v2/Groups/{g2}")).await.status,
            StatusCode::NO_CONTENT
        );
        let res = app.get(&format!("/scim/v2/Users/{u}")).await;
        assert_eq!(res.body["groups"].as_array().unwrap().len(), 1);
        assert_eq!(member_ids(&app, &g1).await, vec![u.clone()]);

        // Deleting the user removes its memberships.
        assert_eq!(
            app.delete(&format!("/scim/v2/Users/{u}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert!(member_ids(&app, &g1).await.is_empty());
    }
}

#[actix_web::test]
async fn put_list_search_and_preconditions() {
    for app in TestApp::all() {
        let backend = app.backend();
        let u = user(&app, "put@example.com").await;
        let gid = group(&app, "Put Me").await;
        let path = format!("/scim/v2/Groups/{gid}");
        let res = app
            .put(
                &path,
                json!({"displayName": "Put Done", "members": [{"value": u}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["displayName"], "Put Done");
        assert_eq!(res.body["members"][0]["value"], u.as_str());
        assert!(res.body.get("externalId").is_none());

        for i in 0..3 {
            group(&app, &format!("Listed {i}")).await;
        }
        let res = app
            .get("/scim/v2/Groups?filter=displayName%20sw%20%22listed%22&sortBy=displayName&sortOrder=descending&count=2")
            .await;
        assert_eq!(res.body["totalResults"], 3, "{backend}: {}", res.body);
        assert_eq!(res.body["itemsPerPage"], 2);
        assert_eq!(res.body["Resources"][0]["displayName"], "Listed 2");
        let res = app
            .post(
                "/scim/v2/Groups/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                       "filter": "displayName eq \"put done\"", "attributes": ["members.value"]}),
            )
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        let r = &res.body["Resources"][0];
        assert_eq!(r["members"][0]["value"], u.as_str());
        assert!(r["members"][0].get("display").is_none());
        assert!(r.get("displayName").is_none());
        let res = app.get("/scim/v2/Groups?filter=title%20eq%20%22x%22").await;
        assert_scim_error(&res, 400, Some("invalidFilter"));

        // If-Match.
        let res = app
            .call(
                app.request(Method::PATCH, &path)
                    .insert_header((header::IF_MATCH, "W/\"1\""))
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(patch(json!([{"op": "remove", "path": "members"}])).to_string()),
            )
            .await;
        assert_scim_error(&res, 412, None);
        let res = app
            .call(
                app.request(Method::DELETE, &path)
                    .insert_header((header::IF_MATCH, "W/\"2\"")),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    }
}

#[actix_web::test]
async fn concurrent_adds_lose_no_member() {
    for app in TestApp::all() {
        let gid = group(&app, "Busy").await;
        let mut users = Vec::new();
        for i in 0..48 {
            users.push(user(&app, &format!("busy{i}@example.com")).await);
        }
        let svc = app.service().await;
        let path = format!("/scim/v2/Groups/{gid}");
        let requests = users.chunks(3).map(|chunk| {
            let body = patch(json!([{"op": "Add", "path": "members",
                "value": chunk.iter().map(|u| json!({"value": u})).collect::<Vec<_>>()}]));
            call(
                &svc,
                app.request(Method::PATCH, &path)
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        });
        for res in join_all(requests).await {
            assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
        }
        assert_eq!(
            member_ids(&app, &gid).await,
            sorted(users),
            "{}",
            app.backend()
        );
    }
}
