//! The run-time settings (admin API / console / CLI) applied by the SCIM
//! API on the next request: page sizes and the deprovisioning policy.

use actix_web::http::{header, Method, StatusCode};
use serde_json::{json, Value};

use scim_store::settings::{
    get_runtime_settings, update_runtime_settings, Deprovisioning, SettingsValues,
};

use crate::{assert_scim_error, TestApp};

/// Changes the settings in the database, as the admin API does.
fn set(app: &TestApp, change: impl FnOnce(&mut SettingsValues)) {
    let store = app.db.store();
    let current = store
        .read(|c| get_runtime_settings(c, scim_store::OrgId::DEFAULT))
        .unwrap();
    let mut values = current.values.clone();
    change(&mut values);
    store
        .write(|c| {
            update_runtime_settings(
                c,
                scim_store::OrgId::DEFAULT,
                &values,
                current.version,
                "admin:test",
            )
        })
        .unwrap();
}

fn search() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
}

#[actix_web::test]
async fn page_sizes_follow_the_runtime_settings_on_the_next_request() {
    for app in TestApp::all() {
        let backend = app.backend();
        for i in 0..6 {
            app.create_user(json!({"userName": format!("p{i}")})).await;
        }
        for i in 0..4 {
            let res = app
                .post("/scim/v2/Groups", json!({"displayName": format!("g{i}")}))
                .await;
            assert_eq!(res.status, StatusCode::CREATED);
        }
        // The seeded defaults.
        let spc = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(spc.body["pagination"]["defaultPageSize"], 100, "{backend}");
        assert_eq!(spc.body["pagination"]["maxPageSize"], 1000);
        assert_eq!(spc.body["filter"]["maxResults"], 1000);
        assert_eq!(app.get("/scim/v2/Users").await.body["itemsPerPage"], 6);

        set(&app, |v| {
            v.default_page_size = 2;
            v.max_page_size = 3;
        });
        let spc = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(spc.body["pagination"]["defaultPageSize"], 2, "{backend}");
        assert_eq!(spc.body["pagination"]["maxPageSize"], 3);
        assert_eq!(spc.body["filter"]["maxResults"], 3);
        for (path, items, total) in [
            ("/scim/v2/Users", 2, 6),
            ("/scim/v2/Users?count=50", 3, 6),
            ("/scim/v2/Users?count=1", 1, 6),
            ("/scim/v2/Groups", 2, 4),
            ("/scim/v2/Groups?count=50", 3, 4),
        ] {
            let res = app.get(path).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
            assert_eq!(res.body["itemsPerPage"], items, "{backend} {path}");
            assert_eq!(res.body["Resources"].as_array().unwrap().len(), items);
            assert_eq!(res.body["totalResults"], total, "{path}");
        }
        for (path, items, total) in [
            ("/scim/v2/Users/.search", 2, 6),
            ("/scim/v2/Groups/.search", 2, 4),
            ("/scim/v2/.search", 2, 10),
        ] {
            let res = app.post(path, search()).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
            assert_eq!(res.body["itemsPerPage"], items, "{backend} {path}");
            assert_eq!(res.body["totalResults"], total, "{path}");
        }
        let mut big = search();
        big["count"] = json!(100);
        let res = app.post("/scim/v2/.search", big).await;
        assert_eq!(res.body["itemsPerPage"], 3, "{backend}");

        // And back: the next request sees it again.
        set(&app, |v| {
            v.default_page_size = 5;
            v.max_page_size = 10;
        });
        assert_eq!(app.get("/scim/v2/Users").await.body["itemsPerPage"], 5);
        let spc = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(spc.body["pagination"]["maxPageSize"], 10, "{backend}");
    }
}

/// How many soft-deleted users the purge would remove with this cutoff
/// (it removes them: the last check of a test).
fn purge(app: &TestApp, cutoff: &str) -> usize {
    app.db
        .store()
        .write(|c| scim_store::purge_deleted_users(c, scim_store::OrgId::DEFAULT, cutoff, 100))
        .unwrap()
        .len()
}

#[actix_web::test]
async fn soft_delete_hides_the_user_keeps_its_row_and_frees_its_user_name() {
    for app in TestApp::all() {
        let backend = app.backend();
        set(&app, |v| v.deprovisioning = Deprovisioning::Soft);
        let id = app
            .create_user(json!({
                "userName": "leaver@example.com",
                "title": "Engineer",
                "emails": [{"value": "leaver@example.com", "type": "work"}]
            }))
            .await;
        let other = app
            .create_user(json!({"userName": "stayer@example.com"}))
            .await;
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "Team", "members": [{"value": id}, {"value": other}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let gid = res.body["id"].as_str().unwrap().to_owned();
        let group_version = res.body["meta"]["version"].clone();

        // A stale If-Match still wins 412, nothing happens.
        let res = app
            .call(
                app.request(Method::DELETE, &format!("/scim/v2/Users/{id}"))
                    .insert_header((header::IF_MATCH, "W/\"9\"")),
            )
            .await;
        assert_scim_error(&res, 412, None);
        let res = app.delete(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );

        // Gone for every SCIM operation.
        let path = format!("/scim/v2/Users/{id}");
        assert_scim_error(&app.get(&path).await, 404, None);
        assert_scim_error(&app.delete(&path).await, 404, None);
        assert_scim_error(
            &app.put(&path, json!({"userName": "leaver@example.com"}))
                .await,
            404,
            None,
        );
        assert_scim_error(
            &app.patch(
                &path,
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": true}]
                }),
            )
            .await,
            404,
            None,
        );
        for filter in [
            "userName%20eq%20%22leaver@example.com%22",
            "title%20eq%20%22Engineer%22",
            "emails.value%20eq%20%22leaver@example.com%22",
            "active%20eq%20false",
            &format!("id%20eq%20%22{id}%22"),
        ] {
            let res = app.get(&format!("/scim/v2/Users?filter={filter}")).await;
            assert_eq!(res.body["totalResults"], 0, "{backend} {filter}");
        }
        let res = app.get("/scim/v2/Users").await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");
        assert_eq!(
            app.get("/scim/v2/Users?count=0").await.body["totalResults"],
            1
        );
        let res = app.post("/scim/v2/.search", search()).await;
        assert_eq!(res.body["totalResults"], 2, "one user and the group");
        // Its memberships went, and the group's version changed.
        let res = app.get(&format!("/scim/v2/Groups/{gid}")).await;
        assert_eq!(res.body["members"].as_array().unwrap().len(), 1);
        assert_eq!(res.body["members"][0]["value"], other.as_str());
        assert_ne!(res.body["meta"]["version"], group_version);
        let res = app
            .get(&format!(
                "/scim/v2/Groups?filter=members.value%20eq%20%22{id}%22"
            ))
            .await;
        assert_eq!(res.body["totalResults"], 0);
        // Nor can it be added back.
        let res = app
            .patch(
                &format!("/scim/v2/Groups/{gid}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]
                }),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        // The identity provider re-creates the same userName.
        let again = app
            .create_user(json!({"userName": "LEAVER@example.com"}))
            .await;
        assert_ne!(again, id);
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22leaver@example.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");
        assert_eq!(res.body["Resources"][0]["id"], again.as_str());

        // The row is still in the database until the purge takes it.
        let past = "2000-01-01T00:00:00.000000Z";
        let future = "2999-01-01T00:00:00.000000Z";
        assert_eq!(purge(&app, past), 0);
        assert_eq!(purge(&app, future), 1, "{backend}");
        assert_eq!(app.get("/scim/v2/Users").await.body["totalResults"], 2);
    }
}

#[actix_web::test]
async fn hard_delete_removes_the_row() {
    for app in TestApp::all() {
        let id = app
            .create_user(json!({"userName": "hard@example.com"}))
            .await;
        // Soft, then hard again: the setting applies per request.
        set(&app, |v| v.deprovisioning = Deprovisioning::Soft);
        set(&app, |v| v.deprovisioning = Deprovisioning::Hard);
        let res = app.delete(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_scim_error(&app.get(&format!("/scim/v2/Users/{id}")).await, 404, None);
        assert_eq!(purge(&app, "2999-01-01T00:00:00.000000Z"), 0, "no row left");
        app.create_user(json!({"userName": "hard@example.com"}))
            .await;
    }
}
