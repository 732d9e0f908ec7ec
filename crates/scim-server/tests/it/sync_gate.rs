//! The User Synchronization gate: while disabled, every authenticated SCIM
//! request gets 403 with a detail naming the fix; enabling takes effect on
//! the next request, with no restart.

use actix_web::http::Method;
use serde_json::json;

use crate::{assert_scim_error, TestApp};
use scim_store::testing::backends;

/// One request per route and method of the SCIM API.
fn every_endpoint(user: &str, group: &str) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]
    });
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName pr"
    });
    vec![
        (Method::GET, "/scim/v2/ServiceProviderConfig".into(), None),
        (Method::GET, "/scim/v2/Schemas".into(), None),
        (
            Method::GET,
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User".into(),
            None,
        ),
        (Method::GET, "/scim/v2/ResourceTypes".into(), None),
        (Method::GET, "/scim/v2/ResourceTypes/User".into(), None),
        (
            Method::POST,
            "/scim/v2/.search".into(),
            Some(search.clone()),
        ),
        (Method::GET, "/scim/v2/Users".into(), None),
        (
            Method::GET,
            "/scim/v2/Users?filter=userName%20eq%20%22x%22".into(),
            None,
        ),
        (
            Method::POST,
            "/scim/v2/Users".into(),
            Some(json!({"userName": "new@example.com"})),
        ),
        (
            Method::POST,
            "/scim/v2/Users/.search".into(),
            Some(search.clone()),
        ),
        (Method::GET, format!("/scim/v2/Users/{user}"), None),
        (
            Method::PUT,
            format!("/scim/v2/Users/{user}"),
            Some(json!({"userName": "gate@example.com", "title": "x"})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Users/{user}"),
            Some(patch.clone()),
        ),
        (Method::DELETE, format!("/scim/v2/Users/{user}"), None),
        (Method::GET, "/scim/v2/Groups".into(), None),
        (
            Method::POST,
            "/scim/v2/Groups".into(),
            Some(json!({"displayName": "New"})),
        ),
        (Method::POST, "/scim/v2/Groups/.search".into(), Some(search)),
        (Method::GET, format!("/scim/v2/Groups/{group}"), None),
        (
            Method::PUT,
            format!("/scim/v2/Groups/{group}"),
            Some(json!({"displayName": "Gate"})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Groups/{group}"),
            Some(patch),
        ),
        (Method::DELETE, format!("/scim/v2/Groups/{group}"), None),
        (
            Method::POST,
            "/scim/v2/Bulk".into(),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "n",
                     "data": {"userName": "new@example.com"}},
                    {"method": "DELETE", "path": format!("/Users/{user}")}
                ]
            })),
        ),
    ]
}

#[actix_web::test]
async fn every_endpoint_is_refused_while_disabled_and_nothing_changes() {
    for db in backends() {
        let app = TestApp::new(db);
        let user = app
            .create_user(json!({"userName": "gate@example.com"}))
            .await;
        let res = app
            .post("/scim/v2/Groups", json!({"displayName": "Gate"}))
            .await;
        let group = res.body["id"].as_str().unwrap().to_string();
        app.set_sync(false);
        for (method, path, body) in every_endpoint(&user, &group) {
            let res = app.send(method.clone(), &path, body).await;
            assert_scim_error(&res, 403, None);
            let detail = res.body["detail"].as_str().unwrap();
            assert!(
                detail.contains("user synchronization is disabled")
                    && detail.contains("administrator must enable"),
                "{method} {path}: {detail}"
            );
        }
        // Nothing was written: the user and group are untouched.
        app.set_sync(true);
        let res = app.get(&format!("/scim/v2/Users/{user}")).await;
        assert_eq!(res.status.as_u16(), 200, "{}", res.body);
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");
        let res = app.get(&format!("/scim/v2/Groups/{group}")).await;
        assert_eq!(res.status.as_u16(), 200, "{}", res.body);
        assert_eq!(res.body["displayName"], "Gate");
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22new@example.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 0);
    }
}

#[actix_web::test]
async fn authentication_comes_first() {
    for db in backends() {
        let app = TestApp::with_sync_disabled(db);
        // No token: 401, not 403, and nothing about synchronization.
        let req = actix_web::test::TestRequest::get().uri("/scim/v2/Users");
        let res = app.call(req).await;
        assert_scim_error(&res, 401, None);
        let req = actix_web::test::TestRequest::get()
            .uri("/scim/v2/ServiceProviderConfig")
            .insert_header(("Authorization", "Bearer scimd_wrong"));
        let res = app.call(req).await;
        assert_scim_error(&res, 401, None);
    }
}

#[actix_web::test]
async fn switching_takes_effect_on_the_next_request_without_restart() {
    for db in backends() {
        let app = TestApp::with_sync_disabled(db);
        // One service for the whole test: no rebuild, no restart.
        let svc = app.service().await;
        let res = crate::call(&svc, app.request(Method::GET, "/scim/v2/Users")).await;
        assert_scim_error(&res, 403, None);
        app.set_sync(true);
        let res = crate::call(&svc, app.request(Method::GET, "/scim/v2/Users")).await;
        assert_eq!(res.status.as_u16(), 200, "{}", res.body);
        let res = crate::call(
            &svc,
            app.request(Method::GET, "/scim/v2/ServiceProviderConfig"),
        )
        .await;
        assert_eq!(res.status.as_u16(), 200, "{}", res.body);
        app.set_sync(false);
        let res = crate::call(&svc, app.request(Method::GET, "/scim/v2/ResourceTypes")).await;
        assert_scim_error(&res, 403, None);
    }
}

/// Authenticated requests that are wrong in every other way too: each
/// as `(what, request, status while enabled)`.
fn malformed(app: &TestApp, user: &str) -> Vec<(&'static str, actix_web::test::TestRequest, u16)> {
    let json = |req: actix_web::test::TestRequest, body: &str| {
        req.insert_header(("Content-Type", "application/scim+json"))
            .set_payload(body.to_owned())
    };
    let too_many = json!({"userName": "many@example.com",
        "emails": (0..45_000).map(|i| json!({"value": format!("{i}@x")})).collect::<Vec<_>>()});
    vec![
        (
            "malformed JSON",
            json(app.request(Method::POST, "/scim/v2/Users"), "{not json"),
            400,
        ),
        (
            "wrong content type",
            app.request(Method::POST, "/scim/v2/Users")
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("userName=x"),
            415,
        ),
        (
            "body over the limit",
            json(
                app.request(Method::POST, "/scim/v2/Users"),
                &format!("{{\"userName\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)),
            ),
            413,
        ),
        (
            "too many values",
            json(
                app.request(Method::POST, "/scim/v2/Users"),
                &too_many.to_string(),
            ),
            400,
        ),
        (
            "missing userName",
            json(app.request(Method::POST, "/scim/v2/Users"), "{}"),
            400,
        ),
        (
            "unknown path",
            app.request(Method::GET, "/scim/v2/Nope"),
            404,
        ),
        (
            "unknown nested path",
            app.request(Method::GET, &format!("/scim/v2/Users/{user}/x")),
            404,
        ),
        (
            "wrong method on discovery",
            app.request(Method::DELETE, "/scim/v2/ServiceProviderConfig"),
            405,
        ),
        (
            "wrong method on a collection",
            app.request(Method::PUT, "/scim/v2/Users"),
            405,
        ),
        (
            "bad filter",
            app.request(Method::GET, "/scim/v2/Users?filter=userName%20eq"),
            400,
        ),
        (
            "bad attributes",
            app.request(Method::GET, "/scim/v2/Users?attributes=emails%5Btype"),
            400,
        ),
        (
            "bad filter in a search",
            json(
                app.request(Method::POST, "/scim/v2/.search"),
                r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "(("}"#,
            ),
            400,
        ),
        (
            "bad cursor",
            app.request(Method::GET, "/scim/v2/Users?cursor=garbage"),
            400,
        ),
        (
            "bad cursor in a search",
            json(
                app.request(Method::POST, "/scim/v2/.search"),
                r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": "x"}"#,
            ),
            400,
        ),
        (
            "count 0 with a cursor",
            app.request(Method::GET, "/scim/v2/Groups?cursor=&count=0"),
            400,
        ),
        (
            "PATCH without operations",
            json(
                app.request(Method::PATCH, &format!("/scim/v2/Users/{user}")),
                r#"{"Operations": []}"#,
            ),
            400,
        ),
    ]
}

#[actix_web::test]
async fn the_gate_comes_before_every_other_error() {
    for db in backends() {
        let app = TestApp::new(db);
        let user = app
            .create_user(json!({"userName": "gate@example.com"}))
            .await;
        // Enabled, each request is refused for what is wrong with it...
        for (what, req, status) in malformed(&app, &user) {
            let res = app.call(req).await;
            assert_eq!(res.status.as_u16(), status, "{what}: {}", res.body);
        }
        // ...disabled, for the switch first.
        app.set_sync(false);
        for (what, req, _) in malformed(&app, &user) {
            let res = app.call(req).await;
            assert_scim_error(&res, 403, None);
            let detail = res.body["detail"].as_str().unwrap();
            assert!(
                detail.contains("user synchronization is disabled"),
                "{what}: {detail}"
            );
        }
        // Without a token, still 401 first, however malformed.
        for (path, method) in [
            ("/scim/v2/Nope", Method::GET),
            ("/scim/v2/Users", Method::PUT),
        ] {
            let req = actix_web::test::TestRequest::default()
                .method(method)
                .uri(path)
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("{not json");
            assert_scim_error(&app.call(req).await, 401, None);
        }
    }
}
