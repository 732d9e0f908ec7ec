//! The Users API: validation, uniqueness, preconditions, listing,
//! projection and PATCH errors.

use actix_web::http::{header, Method, StatusCode};
use futures_util::future::join_all;
use serde_json::json;

use crate::{assert_scim_error, call, entra_user, TestApp};

#[actix_web::test]
async fn create_validates_and_ignores_what_it_should() {
    for app in TestApp::all() {
        let backend = app.backend();
        // Missing userName.
        let res = app
            .post("/scim/v2/Users", json!({"displayName": "x"}))
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        assert!(res.body["detail"].as_str().unwrap().contains("userName"));
        // Not an object.
        let res = app.post("/scim/v2/Users", json!(["x"])).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        // Client id/meta, unknown attributes and nulls are ignored;
        // the password is never returned.
        let res = app
            .post(
                "/scim/v2/Users",
                json!({
                    "userName": "ignore@example.com",
                    "id": "client-chosen",
                    "meta": {"created": "1999-01-01T00:00:00Z"},
                    "someMicrosoftThing": {"x": 1},
                    "title": null,
                    "password": "s3cret!",
                    "groups": [{"value": "x"}]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let b = &res.body;
        assert_ne!(b["id"], "client-chosen");
        assert_ne!(b["meta"]["created"], "1999-01-01T00:00:00Z");
        assert!(b.get("someMicrosoftThing").is_none());
        assert!(b.get("title").is_none());
        assert!(b.get("password").is_none());
        assert!(!b.to_string().contains("s3cret"));
        let id = b["id"].as_str().unwrap();
        let res = app
            .get(&format!("/scim/v2/Users/{id}?attributes=password,userName"))
            .await;
        assert!(res.body.get("password").is_none());
        assert_eq!(res.body["userName"], "ignore@example.com");
    }
}

#[actix_web::test]
async fn user_name_is_unique_case_insensitively() {
    for app in TestApp::all() {
        app.create_user(json!({"userName": "Alice@Example.com"}))
            .await;
        let res = app
            .post("/scim/v2/Users", json!({"userName": "alice@example.COM"}))
            .await;
        assert_scim_error(&res, 409, Some("uniqueness"));
        // externalId is not unique.
        app.create_user(json!({"userName": "b1@example.com", "externalId": "same"}))
            .await;
        app.create_user(json!({"userName": "b2@example.com", "externalId": "same"}))
            .await;
        // Renaming onto a taken name is a conflict too.
        let id = app
            .create_user(json!({"userName": "carol@example.com"}))
            .await;
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "userName", "value": "ALICE@example.com"}]}),
            )
            .await;
        assert_scim_error(&res, 409, Some("uniqueness"));
    }
}

#[actix_web::test]
async fn racing_creates_of_one_user_name_have_one_winner() {
    for app in TestApp::all() {
        let svc = app.service().await;
        let requests = (0..32).map(|i| {
            let body = json!({"userName": if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" }});
            call(
                &svc,
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        });
        let results = join_all(requests).await;
        let created = results
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        let conflicts = results
            .iter()
            .filter(|r| r.status == StatusCode::CONFLICT)
            .count();
        assert_eq!((created, conflicts), (1, 31), "{}", app.backend());
    }
}

/// PATCH reads and patches optimistically, outside the write transaction;
/// concurrent PATCHes of one user must still lose no update. (Six: on
/// PostgreSQL the last of them may see five conflicts, the retry limit.)
#[actix_web::test]
async fn concurrent_patches_of_one_user_lose_no_update() {
    for app in TestApp::all() {
        let id = app
            .create_user(json!({"userName": "busy@example.com"}))
            .await;
        let svc = app.service().await;
        let path = format!("/scim/v2/Users/{id}");
        let requests = (0..6).map(|i| {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "emails",
                    "value": [{"value": format!("e{i}@example.com"), "type": "other"}]}]
            });
            call(
                &svc,
                app.request(Method::PATCH, &path)
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        });
        for res in join_all(requests).await {
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{}: {}",
                app.backend(),
                res.body
            );
        }
        let res = app.get(&path).await;
        let mut emails: Vec<String> = res.body["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .collect();
        emails.sort();
        let mut want: Vec<String> = (0..6).map(|i| format!("e{i}@example.com")).collect();
        want.sort();
        assert_eq!(emails, want, "{}", app.backend());
        assert_eq!(res.header("etag"), Some("W/\"7\""), "{}", app.backend());
    }
}

/// PUT reads optimistically too: concurrent PUTs of one user all succeed,
/// one after the other (each bumps the version), and the last one wins.
#[actix_web::test]
async fn concurrent_puts_of_one_user_all_apply() {
    for app in TestApp::all() {
        let id = app
            .create_user(json!({"userName": "put@example.com"}))
            .await;
        let svc = app.service().await;
        let path = format!("/scim/v2/Users/{id}");
        let requests = (0..6).map(|i| {
            let body = json!({"userName": "put@example.com", "title": format!("t{i}")});
            call(
                &svc,
                app.request(Method::PUT, &path)
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        });
        let mut titles = Vec::new();
        for res in join_all(requests).await {
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{}: {}",
                app.backend(),
                res.body
            );
            titles.push(res.body["title"].as_str().unwrap().to_owned());
        }
        let res = app.get(&path).await;
        assert_eq!(res.header("etag"), Some("W/\"7\""), "{}", app.backend());
        assert!(titles.contains(&res.body["title"].as_str().unwrap().to_owned()));
    }
}

#[actix_web::test]
async fn etags_and_preconditions() {
    for app in TestApp::all() {
        let id = app
            .create_user(json!({"userName": "etag@example.com"}))
            .await;
        let path = format!("/scim/v2/Users/{id}");
        let res = app.get(&path).await;
        assert_eq!(res.header("etag"), Some("W/\"1\""));

        // If-None-Match with the current version: 304.
        let res = app
            .call(
                app.request(Method::GET, &path)
                    .insert_header((header::IF_NONE_MATCH, "W/\"1\"")),
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_MODIFIED);
        // A stale one: 200.
        let res = app
            .call(
                app.request(Method::GET, &path)
                    .insert_header((header::IF_NONE_MATCH, "W/\"0\"")),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);

        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "path": "title", "value": "T"}]});
        // Stale If-Match on PATCH, PUT and DELETE: 412, nothing changes.
        for (method, body) in [
            (Method::PATCH, Some(patch.clone())),
            (
                Method::PUT,
                Some(json!({"userName": "etag@example.com", "title": "X"})),
            ),
            (Method::DELETE, None),
        ] {
            let mut req = app
                .request(method, &path)
                .insert_header((header::IF_MATCH, "W/\"7\""));
            if let Some(body) = body {
                req = req
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string());
            }
            assert_scim_error(&app.call(req).await, 412, None);
        }
        let res = app.get(&path).await;
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");
        assert!(res.body.get("title").is_none());

        // The current one: applies.
        let res = app
            .call(
                app.request(Method::PATCH, &path)
                    .insert_header((header::IF_MATCH, "W/\"1\""))
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(patch.to_string()),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.header("etag"), Some("W/\"2\""));
        let res = app
            .call(
                app.request(Method::DELETE, &path)
                    .insert_header((header::IF_MATCH, "W/\"2\"")),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
    }
}

#[actix_web::test]
async fn paging_sorting_and_counting() {
    for app in TestApp::all() {
        let backend = app.backend();
        for i in 0..7 {
            app.create_user(json!({
                "userName": format!("page{i}@example.com"),
                "displayName": format!("Person {}", 6 - i),
            }))
            .await;
        }
        let res = app.get("/scim/v2/Users?startIndex=1&count=3").await;
        assert_eq!(res.body["totalResults"], 7, "{backend}");
        assert_eq!(res.body["itemsPerPage"], 3);
        assert_eq!(res.body["startIndex"], 1);
        let res = app.get("/scim/v2/Users?startIndex=7&count=3").await;
        assert_eq!(res.body["itemsPerPage"], 1);
        assert_eq!(res.body["totalResults"], 7);
        let res = app.get("/scim/v2/Users?startIndex=50&count=3").await;
        assert_eq!(res.body["itemsPerPage"], 0);
        assert_eq!(res.body["totalResults"], 7, "{backend}");
        assert_eq!(res.body["Resources"], json!([]));
        // count=0: totals only.
        let res = app.get("/scim/v2/Users?count=0").await;
        assert_eq!(res.body["totalResults"], 7);
        assert_eq!(res.body["Resources"], json!([]));
        // Out-of-range values are clamped, not errors.
        let res = app.get("/scim/v2/Users?startIndex=0&count=-4").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["startIndex"], 1);
        // Not a number: 400.
        let res = app.get("/scim/v2/Users?count=lots").await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        let res = app
            .get("/scim/v2/Users?sortBy=displayName&sortOrder=descending&count=2")
            .await;
        let names: Vec<_> = res.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["displayName"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["Person 6", "Person 5"], "{backend}");
        let res = app.get("/scim/v2/Users?sortBy=userName&count=1").await;
        assert_eq!(res.body["Resources"][0]["userName"], "page0@example.com");
        let res = app.get("/scim/v2/Users?sortOrder=sideways").await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        // The same through .search.
        let res = app
            .post(
                "/scim/v2/Users/.search",
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "userName sw \"page\"",
                    "sortBy": "displayName",
                    "sortOrder": "ascending",
                    "startIndex": 1,
                    "count": 2,
                    "attributes": ["displayName"]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["totalResults"], 7);
        assert_eq!(res.body["Resources"][0]["displayName"], "Person 0");
        assert!(res.body["Resources"][0].get("userName").is_none());
        assert!(res.body["Resources"][0].get("id").is_some());
    }
}

#[actix_web::test]
async fn filters_run_in_the_database() {
    for app in TestApp::all() {
        let backend = app.backend();
        app.create_user(entra_user("f1@contoso.com")).await;
        let mut second = entra_user("f2@fabrikam.com");
        second["title"] = json!("Manager");
        second["active"] = json!(false);
        second["externalId"] = json!("EXT-2");
        app.create_user(second).await;
        let cases = [
            ("userName eq \"F1@CONTOSO.COM\"", 1),
            ("userName ne \"f1@contoso.com\"", 1),
            ("userName co \"contoso\"", 1),
            ("userName sw \"f\"", 2),
            ("userName ew \".com\"", 2),
            ("title pr", 2),
            ("title eq \"manager\"", 1),
            ("userName gt \"f1\"", 2),
            ("userName lt \"f2\"", 1),
            ("externalId eq \"EXT-2\"", 1),
            ("externalId eq \"ext-2\"", 0),
            ("active eq true", 1),
            ("not (active eq true)", 1),
            ("title eq \"Manager\" or userName sw \"f1\"", 2),
            ("title eq \"Manager\" and userName sw \"f1\"", 0),
            ("emails[type eq \"work\" and value co \"@fabrikam\"]", 1),
            ("emails.value ew \"contoso.com\"", 1),
            ("name.familyName eq \"user\"", 2),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Platform\"", 2),
            ("meta.lastModified gt \"2000-01-01T00:00:00Z\"", 2),
            ("meta.created lt \"2000-01-01T00:00:00Z\"", 0),
            ("USERNAME Eq \"f1@contoso.com\"", 1),
            ("userName eq \"100%_*?[x\"", 0),
        ];
        for (filter, expected) in cases {
            let res = app
                .post(
                    "/scim/v2/Users/.search",
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
                )
                .await;
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{backend} {filter}: {}",
                res.body
            );
            assert_eq!(
                res.body["totalResults"], expected,
                "{backend} {filter}: {}",
                res.body
            );
        }
        for bad in [
            "userName eq",
            "userName zz \"x\"",
            "(userName eq \"x\"",
            "nonsense eq \"x\"",
            "active gt true",
            "meta.lastModified gt \"yesterday\"",
        ] {
            let res = app
                .post(
                    "/scim/v2/Users/.search",
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": bad}),
                )
                .await;
            assert_scim_error(&res, 400, Some("invalidFilter"));
        }
    }
}

#[actix_web::test]
async fn projection_on_every_read_and_write() {
    for app in TestApp::all() {
        let res = app
            .post(
                "/scim/v2/Users?attributes=userName",
                entra_user("proj@contoso.com"),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        let id = res.body["id"].as_str().unwrap().to_string();
        assert_eq!(res.body["userName"], "proj@contoso.com");
        assert!(res.body.get("emails").is_none());
        assert!(res.body.get("schemas").is_some());

        let res = app
            .get(&format!(
                "/scim/v2/Users/{id}?excludedAttributes=emails,name,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            ))
            .await;
        assert!(res.body.get("emails").is_none());
        assert!(res.body.get("name").is_none());
        assert_eq!(res.body["title"], "Engineer");
        let ext = &res.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert!(ext.get("department").is_none(), "{}", res.body);
        assert_eq!(ext["organization"], "Contoso");

        let res = app
            .get("/scim/v2/Users?attributes=emails.value,name.givenName")
            .await;
        let r = &res.body["Resources"][0];
        assert_eq!(r["emails"][0]["value"], "proj@contoso.com");
        assert!(r["emails"][0].get("type").is_none());
        assert_eq!(r["name"]["givenName"], "Test");
        assert!(r["name"].get("familyName").is_none());
        assert!(r.get("title").is_none());

        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}?attributes=title"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}),
            )
            .await;
        assert_eq!(res.body["title"], "Lead");
        assert!(res.body.get("userName").is_none());
    }
}

#[actix_web::test]
async fn patch_errors_leave_nothing_half_written() {
    for app in TestApp::all() {
        let backend = app.backend();
        let id = app.create_user(entra_user("atomic@contoso.com")).await;
        let path = format!("/scim/v2/Users/{id}");
        let op = |ops: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        // The first operation is fine, the second is not: neither applies.
        let res = app
            .patch(
                &path,
                op(json!([
                    {"op": "replace", "path": "title", "value": "Should not stick"},
                    {"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}
                ])),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidPath"));
        let res = app.get(&path).await;
        assert_eq!(res.body["title"], "Engineer", "{backend}");
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");

        let res = app.patch(&path, op(json!([{"op": "remove"}]))).await;
        assert_scim_error(&res, 400, Some("noTarget"));
        let res = app
            .patch(
                &path,
                op(json!([{"op": "replace", "path": "id", "value": "x"}])),
            )
            .await;
        assert_scim_error(&res, 400, Some("mutability"));
        let res = app
            .patch(
                &path,
                op(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let res = app
            .patch(
                &path,
                op(json!([{"op": "jump", "path": "title", "value": "x"}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        let res = app.patch(&path, json!({"Operations": "nope"})).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        let res = app
            .patch(
                "/scim/v2/Users/00000000-0000-0000-0000-000000000000",
                op(json!([{"op": "replace", "path": "title", "value": "x"}])),
            )
            .await;
        assert_scim_error(&res, 404, None);

        // Multi-valued semantics: add appends, filtered remove removes.
        let res = app
            .patch(
                &path,
                op(json!([
                    {"op": "add", "path": "emails", "value": [{"type": "home", "value": "home@example.com"}]},
                    {"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+81 90"}]}
                ])),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["emails"].as_array().unwrap().len(), 2);
        let res = app
            .patch(
                &path,
                op(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])),
            )
            .await;
        assert_eq!(res.body["emails"].as_array().unwrap().len(), 1);
        assert_eq!(res.body["emails"][0]["type"], "work");
        let res = app
            .get("/scim/v2/Users?filter=emails.value%20eq%20%22home@example.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 0, "{backend}");
        let res = app
            .get("/scim/v2/Users?filter=phoneNumbers%5Btype%20eq%20%22mobile%22%5D")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");

        // A no-op PATCH keeps the version.
        let before = app.get(&path).await.body["meta"]["version"].clone();
        let res = app
            .patch(
                &path,
                op(json!([{"op": "replace", "path": "title", "value": "Engineer"}])),
            )
            .await;
        assert_eq!(res.body["meta"]["version"], before);
    }
}

#[actix_web::test]
async fn put_replaces_and_keeps_identity() {
    for app in TestApp::all() {
        let id = app.create_user(entra_user("put@contoso.com")).await;
        let path = format!("/scim/v2/Users/{id}");
        let res = app
            .put(
                &path,
                json!({"userName": "put@contoso.com", "title": "New"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["title"], "New");
        assert!(res.body.get("emails").is_none());
        assert_eq!(res.body["meta"]["version"], "W/\"2\"");
        let res = app.put(&path, json!({"title": "no userName"})).await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let res = app
            .put(
                "/scim/v2/Users/00000000-0000-0000-0000-000000000000",
                json!({"userName": "ghost@example.com"}),
            )
            .await;
        assert_scim_error(&res, 404, None);
        // The old emails are no longer filterable.
        let res = app
            .get("/scim/v2/Users?filter=emails.value%20eq%20%22put@contoso.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 0);
    }
}

/// `userName eq "…"` (how Entra and Okta match users, and Test
/// Connection) takes a one-statement path; it answers exactly what the
/// general filter path answers, groups and paging parameters included.
#[actix_web::test]
async fn the_user_name_match_answers_as_the_general_filter_does() {
    for app in TestApp::all() {
        let backend = app.backend();
        let id = app.create_user(entra_user("Match.Me@contoso.com")).await;
        app.create_user(entra_user("other@contoso.com")).await;
        let group = app
            .post(
                "/scim/v2/Groups",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Matchers",
                    "members": [{"value": id}]
                }),
            )
            .await;
        assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
        let general = |f: &str| format!("{f} and userName pr");
        let enc = |s: &str| {
            s.replace('%', "%25")
                .replace(' ', "%20")
                .replace('"', "%22")
                .replace('@', "%40")
        };
        for (filter, query, total) in [
            ("userName eq \"match.me@CONTOSO.com\"", "", 1),
            (
                "UserName eq \"Match.Me@contoso.com\"",
                "&attributes=userName",
                1,
            ),
            (
                "userName eq \"Match.Me@contoso.com\"",
                "&excludedAttributes=groups",
                1,
            ),
            ("userName eq \"Match.Me@contoso.com\"", "&count=0", 1),
            (
                "userName eq \"Match.Me@contoso.com\"",
                "&startIndex=1&count=1",
                1,
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"match.me@contoso.com\"",
                "",
                1,
            ),
            // Test Connection: a random userName, 200 and an empty list.
            (
                "userName eq \"8a0b6e1c-2f7d-4a52-9a4e-0d6c1f3b7e55\"",
                "",
                0,
            ),
        ] {
            let fast = app
                .get(&format!("/scim/v2/Users?filter={}{query}", enc(filter)))
                .await;
            let slow = app
                .get(&format!(
                    "/scim/v2/Users?filter={}{query}",
                    enc(&general(filter))
                ))
                .await;
            assert_eq!(
                fast.status,
                StatusCode::OK,
                "{backend} {filter}: {}",
                fast.body
            );
            assert_eq!(
                fast.body["totalResults"], total,
                "{backend} {filter}: {}",
                fast.body
            );
            assert_eq!(fast.body, slow.body, "{backend} {filter}{query}");
        }
        let found = app
            .get(&format!(
                "/scim/v2/Users?filter={}",
                enc("userName eq \"match.me@contoso.com\"")
            ))
            .await;
        assert_eq!(found.body["Resources"][0]["id"], id.as_str(), "{backend}");
        assert_eq!(
            found.body["Resources"][0]["groups"][0]["display"], "Matchers",
            "{backend}: {}",
            found.body
        );
        // Past the first page: the general path, an empty page.
        let past = app
            .get(&format!(
                "/scim/v2/Users?startIndex=2&filter={}",
                enc("userName eq \"match.me@contoso.com\"")
            ))
            .await;
        assert_eq!(past.body["totalResults"], 1, "{backend}");
        assert_eq!(past.body["Resources"], json!([]), "{backend}");
        // A deleted user is not found.
        assert_eq!(
            app.delete(&format!("/scim/v2/Users/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
        let gone = app
            .get(&format!(
                "/scim/v2/Users?filter={}",
                enc("userName eq \"match.me@contoso.com\"")
            ))
            .await;
        assert_eq!(gone.body["totalResults"], 0, "{backend}");
        // While synchronization is disabled, the gate answers first.
        app.set_sync(false);
        let off = app
            .get(&format!(
                "/scim/v2/Users?filter={}",
                enc("userName eq \"other@contoso.com\"")
            ))
            .await;
        assert_scim_error(&off, 403, None);
    }
}

/// `n` email values `prefix0@example.com` ….
fn emails(prefix: &str, n: usize) -> serde_json::Value {
    (0..n)
        .map(|i| json!({"value": format!("{prefix}{i}@example.com"), "type": "work"}))
        .collect()
}

#[actix_web::test]
async fn too_many_values_are_refused_by_post_put_and_patch_and_nothing_is_written() {
    let cap = scim_core::schema::MAX_VALUES;
    // A body limit raised well above the default: the cap holds whatever
    // the operator allows.
    let config = scim_server::ScimConfig {
        max_body_bytes: 16 * 1024 * 1024,
        ..Default::default()
    };
    for db in scim_store::testing::backends() {
        let app = TestApp::with_config(db, config.clone());
        let backend = app.backend();
        // `n` is how many values the detail counts: the body parser stops
        // at the first value over the cap, so it says "at least".
        let refused = |res: &crate::Res, n: &str| {
            assert_scim_error(res, 400, Some("invalidValue"));
            let detail = res.body["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("emails: {n} values"))
                    && detail.contains(&format!("the {cap} a resource may hold")),
                "{backend}: {detail}"
            );
        };
        let over = format!("at least {}", cap + 1);
        // POST: at the cap is fine, one more is refused.
        let res = app
            .post(
                "/scim/v2/Users",
                json!({"userName": "over@example.com", "emails": emails("e", cap + 1)}),
            )
            .await;
        refused(&res, &over);
        let res = app
            .post(
                "/scim/v2/Users",
                json!({"userName": "over@example.com", "emails": emails("e", 45_000)}),
            )
            .await;
        refused(&res, &over);
        // The parser stops there: what follows is never read (here it is
        // not even JSON).
        let list = emails("e", cap + 1).to_string();
        let body = format!(
            "{{\"userName\": \"cut@example.com\", \"emails\": {}, {{\"value\": ]]]",
            &list[..list.len() - 1]
        );
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header(("Content-Type", "application/scim+json"))
                    .set_payload(body),
            )
            .await;
        refused(&res, &over);
        let id = app
            .create_user(json!({"userName": "many@example.com", "emails": emails("e", cap)}))
            .await;
        // The 45,000-value PATCH of the report: refused at once (it took
        // 25.8 s, and stalled every other write on SQLite, when applied).
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "emails", "value": emails("n", 45_000)}]
        });
        let res = app.patch(&format!("/scim/v2/Users/{id}"), patch).await;
        refused(&res, &over);
        assert!(res.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Operations[0]: "));
        // The same with the value before the path, and path-less.
        for op in [
            json!({"value": emails("n", 45_000), "op": "add", "path": "emails"}),
            json!({"op": "add", "value": {"emails": emails("n", 45_000)}}),
        ] {
            let patch = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [op]
            });
            let res = app.patch(&format!("/scim/v2/Users/{id}"), patch).await;
            refused(&res, &over);
        }
        // One more value than the cap, path-less, is refused too.
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "value": {"emails": [{"value": "one.more@example.com"}]}}]
        });
        let res = app.patch(&format!("/scim/v2/Users/{id}"), patch).await;
        refused(&res, &(cap + 1).to_string());
        // PUT: the same cap.
        let res = app
            .put(
                &format!("/scim/v2/Users/{id}"),
                json!({"userName": "many@example.com", "emails": emails("p", 45_000)}),
            )
            .await;
        refused(&res, &over);
        // Nothing was written.
        let res = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.body["meta"]["version"], "W/\"1\"", "{backend}");
        assert_eq!(
            res.body["emails"].as_array().unwrap().len(),
            cap,
            "{backend}"
        );
        assert_eq!(res.body["emails"][0]["value"], "e0@example.com");
        // The cap is advertised in /Schemas.
        let res = app
            .get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
            .await;
        let attrs = res.body["attributes"].as_array().unwrap();
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert!(
            emails["description"]
                .as_str()
                .unwrap()
                .ends_with(&format!("At most {cap} values.")),
            "{backend}: {}",
            emails["description"]
        );
    }
}

#[actix_web::test]
async fn a_patch_with_too_many_operations_is_refused() {
    let max = scim_core::patch::MAX_OPERATIONS;
    for app in TestApp::all() {
        let id = app
            .create_user(json!({"userName": "ops@example.com", "emails": emails("e", 1)}))
            .await;
        let op = json!({"op": "replace", "path": "emails[value eq \"e0@example.com\"].display", "value": "d"});
        let patch = |n: usize| {
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": vec![op.clone(); n]
            })
        };
        let res = app
            .patch(&format!("/scim/v2/Users/{id}"), patch(max + 1))
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        assert!(res.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("at most {max} operations")));
        let res = app.patch(&format!("/scim/v2/Users/{id}"), patch(max)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["emails"][0]["display"], "d");
    }
}
