//! The full Entra ID user lifecycle, in both of its PATCH dialects, and
//! Okta's forms — requests as the identity providers document them.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::{assert_scim_error, entra_user, TestApp};

const TEST_CONNECTION: &str =
    "/scim/v2/Users?filter=userName%20eq%20%22Test_User_dfeef4c5-5681-4387-b016-bdf221e82081%22";

#[actix_web::test]
async fn test_connection_returns_an_empty_list() {
    for app in TestApp::all() {
        let res = app.get(TEST_CONNECTION).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(
            res.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
        assert_eq!(res.body["totalResults"], 0);
        assert_eq!(res.body["startIndex"], 1);
        assert_eq!(res.body["itemsPerPage"], 0);
        assert_eq!(res.body["Resources"], json!([]));
    }
}

#[actix_web::test]
async fn entra_lifecycle_default_dialect() {
    for app in TestApp::all() {
        let backend = app.backend();
        let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com";
        // Match: not there yet.
        let res = app
            .get(&format!(
                "/scim/v2/Users?filter=userName+eq+%22{}%22",
                user_name.to_uppercase()
            ))
            .await;
        assert_eq!(res.body["totalResults"], 0, "{backend}");

        // Create.
        let res = app.post("/scim/v2/Users", entra_user(user_name)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let id = res.body["id"].as_str().unwrap().to_string();
        assert!(res
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/scim/v2/Users/{id}"))));
        assert_eq!(res.header("etag"), Some("W/\"1\""));
        assert_eq!(res.body["meta"]["resourceType"], "User");
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");
        assert_eq!(res.body["userName"], user_name);
        assert_eq!(res.body["active"], true);
        assert_eq!(
            res.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Platform"
        );

        // Match by userName, case-insensitively, and by externalId.
        let res = app
            .get(&format!(
                "/scim/v2/Users?filter=userName+eq+%22{}%22",
                user_name.to_uppercase()
            ))
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        assert_eq!(res.body["Resources"][0]["id"], id.as_str());
        let res = app
            .get("/scim/v2/Users?filter=externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");
        // Entra's non-RFC value-path-with-subattribute filter.
        let res = app
            .get(&format!(
                "/scim/v2/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22{user_name}%22"
            ))
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);

        // Default dialect PATCH: "Replace"/"Add", booleans as strings,
        // URN-qualified paths, manager as a bare id.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [
                        {"op": "Replace", "path": "displayName", "value": "Updated Name"},
                        {"op": "Add", "path": "title", "value": "Principal"},
                        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "moved@contoso.com"},
                        {"op": "Replace", "path": "name.familyName", "value": "Changed"},
                        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
                        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "2819c223-7f76-453a-919d-413861904646"}
                    ]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let b = &res.body;
        assert_eq!(b["displayName"], "Updated Name");
        assert_eq!(b["title"], "Principal");
        assert_eq!(b["emails"][0]["value"], "moved@contoso.com");
        assert_eq!(b["emails"].as_array().unwrap().len(), 1);
        assert_eq!(b["name"]["familyName"], "Changed");
        assert_eq!(b["name"]["givenName"], "Test");
        let ext = &b["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(ext["department"], "Sales");
        assert_eq!(ext["organization"], "Contoso");
        assert_eq!(
            ext["manager"]["value"],
            "2819c223-7f76-453a-919d-413861904646"
        );
        assert_eq!(b["meta"]["version"], "W/\"2\"");

        // The new email is what filters see now.
        let res = app
            .get("/scim/v2/Users?filter=emails.value%20eq%20%22MOVED@contoso.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");

        // Disable: "False" as a string, op in any case.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["active"], false);
        // Suspended users keep their data and are still found.
        let res = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.body["active"], false);
        assert_eq!(res.body["title"], "Principal");
        let res = app.get("/scim/v2/Users?filter=active%20eq%20false").await;
        assert_eq!(res.body["totalResults"], 1, "{backend}");

        // Re-enable.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "True"}]
                }),
            )
            .await;
        assert_eq!(res.body["active"], true, "{backend}");

        // Delete, then it is gone.
        let res = app.delete(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_scim_error(&app.get(&format!("/scim/v2/Users/{id}")).await, 404, None);
        assert_scim_error(
            &app.delete(&format!("/scim/v2/Users/{id}")).await,
            404,
            None,
        );
    }
}

#[actix_web::test]
async fn entra_aad_opt_scim_062020_dialect() {
    for app in TestApp::all() {
        let backend = app.backend();
        let id = app.create_user(entra_user("ms062020@contoso.com")).await;
        // Path-less replace with dotted and URN keys, real booleans, an
        // extra operation member and an `id` in the body.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "id": id,
                    "Operations": [{
                        "op": "replace",
                        "name": "ignored",
                        "value": {
                            "displayName": "New Display",
                            "name.givenName": "Given",
                            "name.familyName": "Family",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization": "Fabrikam",
                            "active": false
                        }
                    }]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let b = &res.body;
        assert_eq!(b["displayName"], "New Display");
        assert_eq!(b["name"]["givenName"], "Given");
        assert_eq!(b["name"]["familyName"], "Family");
        assert_eq!(b["active"], false);
        let ext = &b["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(ext["department"], "Finance");
        assert_eq!(ext["organization"], "Fabrikam");

        let res = app
            .get("/scim/v2/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department%20eq%20%22finance%22")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        let res = app
            .get("/scim/v2/Users?filter=name.givenName%20eq%20%22GIVEN%22%20and%20active%20eq%20false")
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
    }
}

#[actix_web::test]
async fn entra_062020_pathless_value_path_keys() {
    const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    for app in TestApp::all() {
        let backend = app.backend();
        // A user with a work email and a work address (Entra's create),
        // and one with neither.
        let full = app.create_user(entra_user("vp.full@contoso.com")).await;
        let bare = app
            .create_user(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "vp.bare@contoso.com",
                "emails": [{"type": "home", "value": "home@example.com"}]
            }))
            .await;
        for id in [&full, &bare] {
            let res = app
                .patch(
                    &format!("/scim/v2/Users/{id}"),
                    json!({
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "value": {
                            "displayName": "Value Paths",
                            "name.givenName": "Vera",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Research",
                            "emails[type eq \"work\"].value": format!("work.{id}@contoso.com"),
                            "addresses[type eq \"work\"].locality": "Osaka",
                            "phoneNumbers[type eq \"mobile\"].value": "+81 90 0000 0000"
                        }}]
                    }),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);

            let b = app.get(&format!("/scim/v2/Users/{id}")).await.body;
            assert_eq!(b["displayName"], "Value Paths", "{backend}: {b}");
            assert_eq!(b["name"]["givenName"], "Vera");
            assert_eq!(
                b["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
                "Research"
            );
            let work: Vec<_> = b["emails"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "work")
                .collect();
            assert_eq!(work.len(), 1, "{backend}: {b}");
            assert_eq!(work[0]["value"], format!("work.{id}@contoso.com"));
            assert_eq!(b["addresses"][0]["type"], "work", "{backend}: {b}");
            assert_eq!(b["addresses"][0]["locality"], "Osaka");
            assert_eq!(
                b["phoneNumbers"],
                json!([{"type": "mobile", "value": "+81 90 0000 0000"}]),
                "{backend}"
            );
            // Filters see the new values.
            let res = app
                .get(&format!(
                    "/scim/v2/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22work.{id}@contoso.com%22"
                ))
                .await;
            assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
            assert_eq!(res.body["Resources"][0]["id"], id.as_str());
        }
        // The full user's work address was updated in place, not added to.
        let b = app.get(&format!("/scim/v2/Users/{full}")).await.body;
        assert_eq!(b["addresses"].as_array().unwrap().len(), 1, "{backend}");
        assert_eq!(b["addresses"][0]["streetAddress"], "1 Chiyoda");
        // The bare user kept its home email beside the new work one.
        let b = app.get(&format!("/scim/v2/Users/{bare}")).await.body;
        assert_eq!(b["emails"].as_array().unwrap().len(), 2, "{backend}: {b}");

        // A value-path key scimd cannot apply is a 400 naming the key, and
        // nothing of the request is written.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{bare}"),
                json!({
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "value": {
                        "displayName": "Not Written",
                        "faxes[type eq \"work\"].value": "+1"
                    }}]
                }),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidPath"));
        assert!(
            res.body["detail"]
                .as_str()
                .unwrap()
                .contains("value key \"faxes[type eq \\\"work\\\"].value\""),
            "{backend}: {}",
            res.body
        );
        let b = app.get(&format!("/scim/v2/Users/{bare}")).await.body;
        assert_eq!(b["displayName"], "Value Paths", "{backend}");
    }
}

#[actix_web::test]
async fn okta_forms() {
    for app in TestApp::all() {
        let backend = app.backend();
        // Okta's probe.
        let res = app.get("/scim/v2/Users?startIndex=1&count=2").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["Resources"], json!([]));

        let id = app
            .create_user(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "okta.user@example.com",
                "name": {"givenName": "Okta", "familyName": "User"},
                "emails": [{"primary": true, "value": "okta.user@example.com", "type": "work"}],
                "displayName": "Okta User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }))
            .await;
        // Path-less deactivate.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": false}}]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["active"], false);
        assert!(res.body.get("password").is_none());

        // PUT update, as Okta does for profile changes.
        let res = app
            .put(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "id": id,
                    "userName": "okta.user@example.com",
                    "name": {"givenName": "Okta", "familyName": "Renamed"},
                    "emails": [{"primary": true, "value": "okta.user@example.com", "type": "work"}],
                    "active": true,
                    "meta": {"resourceType": "User"}
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["name"]["familyName"], "Renamed");
        assert_eq!(res.body["active"], true);
        // PUT replaced: attributes not sent are gone.
        assert!(res.body.get("displayName").is_none(), "{}", res.body);
        assert!(res.body.get("locale").is_none());
        assert_eq!(res.body["id"], id.as_str());
    }
}
