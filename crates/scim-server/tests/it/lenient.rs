//! Leniency toward real clients (docs/SCIM.md, "Leniency"): unquoted
//! filter values, and a value filter in `attributes` /
//! `excludedAttributes`, as Microsoft's SCIMReferenceCode tests send them.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::{assert_scim_error, TestApp};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// `q` with every byte outside the URL-safe set percent-encoded.
fn enc(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

fn user(user_name: &str, family: &str, active: bool) -> Value {
    json!({
        "userName": user_name,
        "active": active,
        "name": {"familyName": family, "givenName": "Test"},
        "title": "true",
        "emails": [
            {"value": format!("{user_name}@work.example"), "type": "work", "primary": true},
            {"value": format!("{user_name}@home.example"), "type": "home"}
        ]
    })
}

#[actix_web::test]
async fn unquoted_filter_values_are_read_by_the_attribute_type() {
    for app in TestApp::all() {
        let backend = app.backend();
        app.create_user(user("OEmployee", "Employee", true)).await;
        app.create_user(user("Other", "Manager", false)).await;
        app.create_user(user("bjensen", "Jensen", true)).await;
        let cases = [
            ("userName sw O", 2),
            ("userName eq oemployee", 1),
            ("name.familyName eq Employee", 1),
            ("meta.created gt 2015-10-10T14:38:21.8617979-07:00", 3),
            ("meta.created lt 2015-10-10T14:38:21.8617979-07:00", 0),
            ("emails[type eq work and value co work.example]", 3),
            ("emails.type eq home", 3),
            ("userName sw O and active eq true", 1),
            ("active eq false", 1),
            // An unquoted `true` against a string reads as its text.
            ("title eq true", 3),
            ("userName eq true", 0),
            // Strict input keeps working alongside.
            ("userName sw \"O\" and name.familyName eq Manager", 1),
        ];
        for (filter, expected) in cases {
            let res = app
                .get(&format!("/scim/v2/Users?filter={}", enc(filter)))
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
            let res = app
                .post(
                    "/scim/v2/Users/.search",
                    json!({"schemas": [SEARCH], "filter": filter}),
                )
                .await;
            assert_eq!(
                res.body["totalResults"], expected,
                "{backend} .search {filter}: {}",
                res.body
            );
        }
        let res = app
            .get(&format!(
                "/scim/v2/Groups?filter={}",
                enc("displayName eq Admins")
            ))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        for (bad, fragment) in [
            (
                "name.familyName eq Van Dyke",
                "a value containing spaces must be a JSON string in double quotes",
            ),
            (
                "active eq yes",
                "is a boolean; compare it with true or false",
            ),
            ("meta.created gt yesterday", "is not a dateTime"),
            ("userName eq a\u{1}b", "contains a control character"),
        ] {
            let res = app
                .get(&format!("/scim/v2/Users?filter={}", enc(bad)))
                .await;
            assert_scim_error(&res, 400, Some("invalidFilter"));
            let detail = res.body["detail"].as_str().unwrap();
            assert!(detail.contains(fragment), "{backend} {bad}: {detail}");
        }
    }
}

#[actix_web::test]
async fn a_value_filter_in_attributes_selects_the_values_returned() {
    for app in TestApp::all() {
        let backend = app.backend();
        let id = app.create_user(user("bjensen", "Jensen", true)).await;
        let work = json!([{"value": "bjensen@work.example", "type": "work", "primary": true}]);
        let home = json!([{"value": "bjensen@home.example", "type": "home"}]);
        let attrs = enc(r#"emails[type eq "work"]"#);

        let res = app
            .get(&format!("/scim/v2/Users/{id}?attributes={attrs}"))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["emails"], work, "{backend}: {}", res.body);
        assert!(
            res.body.get("userName").is_none(),
            "{backend}: {}",
            res.body
        );
        assert_eq!(res.body["id"], id.as_str());

        let res = app.get(&format!("/scim/v2/Users?attributes={attrs}")).await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(
            res.body["Resources"][0]["emails"], work,
            "{backend}: {}",
            res.body
        );

        let res = app
            .post(
                "/scim/v2/Users/.search",
                json!({"schemas": [SEARCH], "attributes": ["userName", "emails[type eq home].value"]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(
            res.body["Resources"][0]["emails"],
            json!([{"value": "bjensen@home.example"}]),
            "{backend}: {}",
            res.body
        );
        assert_eq!(res.body["Resources"][0]["userName"], "bjensen");

        let res = app
            .get(&format!("/scim/v2/Users/{id}?excludedAttributes={attrs}"))
            .await;
        assert_eq!(res.body["emails"], home, "{backend}: {}", res.body);
        assert_eq!(res.body["userName"], "bjensen");

        let res = app
            .get(&format!(
                "/scim/v2/Users/{id}?attributes={}",
                enc(r#"emails[type eq "work""#)
            ))
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        // Unquoted values in a PATCH path's value filter too.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}?attributes={}", enc("emails[type eq work]")),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "emails[type eq work].value", "value": "new@work.example"}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(
            res.body["emails"],
            json!([{"value": "new@work.example", "type": "work", "primary": true}]),
            "{backend}: {}",
            res.body
        );
    }
}

#[actix_web::test]
async fn a_value_filter_in_attributes_selects_group_members() {
    for app in TestApp::all() {
        let backend = app.backend();
        let user = app.create_user(user("member", "Member", true)).await;
        let res = app
            .post("/scim/v2/Groups", json!({"displayName": "Inner"}))
            .await;
        let inner = res.body["id"].as_str().unwrap().to_owned();
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "Outer", "members": [{"value": user}, {"value": inner, "type": "Group"}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let outer = res.body["id"].as_str().unwrap().to_owned();

        let get = |q: String| {
            let path = format!("/scim/v2/Groups/{outer}?{q}");
            let app = &app;
            async move { app.get(&path).await }
        };
        let res = get(format!("attributes={}", enc(r#"members[type eq "User"]"#))).await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let members = res.body["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{backend}: {}", res.body);
        assert_eq!(members[0]["value"], user.as_str());
        assert_eq!(members[0]["type"], "User");
        assert!(
            res.body.get("displayName").is_none(),
            "{backend}: {}",
            res.body
        );

        let res = get(format!(
            "attributes={}",
            enc("members[type eq Group].value")
        ))
        .await;
        assert_eq!(
            res.body["members"],
            json!([{"value": inner}]),
            "{backend}: {}",
            res.body
        );

        let res = get(format!(
            "excludedAttributes={}",
            enc(r#"members[type eq "User"]"#)
        ))
        .await;
        assert_eq!(res.body["displayName"], "Outer");
        let members = res.body["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{backend}: {}", res.body);
        assert_eq!(members[0]["value"], inner.as_str());

        // The list and .search go through the same rendering.
        let res = app
            .post(
                "/scim/v2/Groups/.search",
                json!({"schemas": [SEARCH], "filter": "displayName eq Outer", "attributes": ["members[type eq \"User\"].value"]}),
            )
            .await;
        assert_eq!(
            res.body["Resources"][0]["members"],
            json!([{"value": user}]),
            "{backend}: {}",
            res.body
        );
    }
}
