//! `POST /.search` at the service root, across Users and Groups.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::{assert_scim_error, TestApp};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[actix_web::test]
async fn root_search_spans_every_resource_type() {
    for app in TestApp::all() {
        let backend = app.backend();
        for i in 0..3 {
            app.create_user(
                json!({"userName": format!("root{i}@example.com"), "externalId": format!("e{i}")}),
            )
            .await;
        }
        for i in 0..2 {
            let res = app
                .post(
                    "/scim/v2/Groups",
                    json!({"displayName": format!("Root Group {i}"), "externalId": format!("e{i}")}),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED);
        }
        // No filter: everything, Users first.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "attributes": ["externalId"]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["totalResults"], 5);
        let items = res.body["Resources"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        assert!(items.iter().all(|r| r.get("externalId").is_some()));
        assert!(items
            .iter()
            .all(|r| r.get("userName").is_none() && r.get("displayName").is_none()));
        assert_eq!(items[0]["meta"], serde_json::Value::Null);
        assert!(items[0]["schemas"][0].as_str().unwrap().ends_with(":User"));
        assert!(items[4]["schemas"][0].as_str().unwrap().ends_with(":Group"));

        // A filter both types understand.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "filter": "externalId eq \"e1\""}),
            )
            .await;
        assert_eq!(res.body["totalResults"], 2, "{backend}: {}", res.body);
        // A filter only Users understand: Groups contribute nothing.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "filter": "userName sw \"root\""}),
            )
            .await;
        assert_eq!(res.body["totalResults"], 3, "{backend}: {}", res.body);
        // Paging across the boundary between the types.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "startIndex": 3, "count": 2}),
            )
            .await;
        let items = res.body["Resources"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{backend}: {}", res.body);
        assert_eq!(items[0]["userName"], "root2@example.com");
        assert_eq!(items[1]["displayName"], "Root Group 0");
        assert_eq!(res.body["startIndex"], 3);
        // A filter no type understands.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "filter": "shoeSize gt 3"}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidFilter"));
        let res = app.get("/scim/v2/.search").await;
        assert_scim_error(&res, 405, None);
    }
}
