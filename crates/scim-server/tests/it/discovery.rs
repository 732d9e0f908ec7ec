//! Discovery endpoints, authentication and protocol hygiene.

use actix_web::http::{header, Method, StatusCode};
use actix_web::test::TestRequest;

use crate::{assert_scim_error, TestApp};

#[actix_web::test]
async fn service_provider_config_describes_what_works() {
    for app in TestApp::all() {
        let res = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(res.status, StatusCode::OK);
        let b = &res.body;
        assert_eq!(
            b["schemas"][0],
            "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
        );
        assert_eq!(b["patch"]["supported"], true);
        assert_eq!(b["bulk"]["supported"], true);
        assert_eq!(b["filter"]["supported"], true);
        assert_eq!(b["filter"]["maxResults"], 1000);
        assert_eq!(b["sort"]["supported"], true);
        assert_eq!(b["etag"]["supported"], true);
        assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
    }
}

#[actix_web::test]
async fn schemas_and_resource_types() {
    for app in TestApp::all() {
        let res = app.get("/scim/v2/Schemas").await;
        assert_eq!(res.status, StatusCode::OK);
        let ids: Vec<&str> = res.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:User"));
        assert!(ids.contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:Group"));
        assert_eq!(res.body["totalResults"], ids.len());

        let res = app
            .get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
            .await;
        assert_eq!(res.status, StatusCode::OK);
        let attrs = res.body["attributes"].as_array().unwrap();
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["required"], true);
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(password["returned"], "never");
        assert_eq!(password["mutability"], "writeOnly");

        let res = app.get("/scim/v2/Schemas/urn:nope").await;
        assert_scim_error(&res, 404, None);

        let res = app.get("/scim/v2/ResourceTypes").await;
        assert_eq!(res.status, StatusCode::OK);
        let user = &res.body["Resources"][0];
        assert_eq!(user["name"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        let group = &res.body["Resources"][1];
        assert_eq!(group["name"], "Group");
        assert_eq!(group["endpoint"], "/Groups");
        let res = app.get("/scim/v2/ResourceTypes/group").await;
        assert_eq!(
            res.body["schema"],
            "urn:ietf:params:scim:schemas:core:2.0:Group"
        );
        let res = app.get("/scim/v2/ResourceTypes/User").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["name"], "User");
        let res = app.get("/scim/v2/ResourceTypes/Widget").await;
        assert_scim_error(&res, 404, None);
    }
}

#[actix_web::test]
async fn other_methods_on_discovery_are_405() {
    for app in TestApp::all() {
        for path in [
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/Schemas",
            "/scim/v2/ResourceTypes",
        ] {
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let res = app
                    .send(method.clone(), path, Some(serde_json::json!({})))
                    .await;
                assert_scim_error(&res, 405, None);
            }
        }
        let res = app.delete("/scim/v2/Users").await;
        assert_scim_error(&res, 405, None);
    }
}

#[actix_web::test]
async fn every_405_lists_the_allowed_methods() {
    for app in TestApp::all() {
        let user = app
            .create_user(serde_json::json!({"userName": "allow"}))
            .await;
        let res = app
            .post(
                "/scim/v2/Groups",
                serde_json::json!({"displayName": "Allow"}),
            )
            .await;
        let group = res.body["id"].as_str().unwrap().to_string();
        let routes = [
            ("/scim/v2/ServiceProviderConfig".to_string(), "GET"),
            ("/scim/v2/Schemas".into(), "GET"),
            (
                "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User".into(),
                "GET",
            ),
            ("/scim/v2/ResourceTypes".into(), "GET"),
            ("/scim/v2/ResourceTypes/User/".into(), "GET"),
            ("/scim/v2/.search".into(), "POST"),
            ("/scim/v2/Users".into(), "GET, POST"),
            ("/scim/v2/Users/.search".into(), "POST"),
            (format!("/scim/v2/Users/{user}"), "GET, PUT, PATCH, DELETE"),
            ("/scim/v2/Groups/".into(), "GET, POST"),
            ("/scim/v2/Groups/.search".into(), "POST"),
            (
                format!("/scim/v2/Groups/{group}"),
                "GET, PUT, PATCH, DELETE",
            ),
        ];
        for (path, allow) in &routes {
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ] {
                if allow.split(", ").any(|m| m == method.as_str()) {
                    continue;
                }
                let res = app
                    .send(method.clone(), path, Some(serde_json::json!({})))
                    .await;
                assert_scim_error(&res, 405, None);
                assert_eq!(res.header("allow"), Some(*allow), "{method} {path}");
            }
        }
        // Each method listed is routed (anything but 405).
        for (path, allow) in &routes {
            for method in allow.split(", ").filter(|m| *m != "DELETE") {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let res = app
                    .send(method.clone(), path, Some(serde_json::json!({})))
                    .await;
                assert_ne!(res.status.as_u16(), 405, "{method} {path}: {}", res.body);
            }
        }
        for path in [
            format!("/scim/v2/Users/{user}"),
            format!("/scim/v2/Groups/{group}"),
        ] {
            assert_eq!(app.delete(&path).await.status.as_u16(), 204);
        }
    }
}

#[actix_web::test]
async fn unknown_routes_are_scim_404s() {
    for app in TestApp::all() {
        assert_scim_error(&app.get("/scim/v2/Widgets").await, 404, None);
        assert_scim_error(&app.get("/elsewhere").await, 404, None);
    }
}

#[actix_web::test]
async fn trailing_slashes_are_tolerated() {
    for app in TestApp::all() {
        assert_eq!(app.get("/scim/v2/Users/").await.status, StatusCode::OK);
        assert_eq!(
            app.get("/scim/v2/ServiceProviderConfig/").await.status,
            StatusCode::OK
        );
    }
}

#[actix_web::test]
async fn authentication_is_required_everywhere() {
    for app in TestApp::all() {
        for path in [
            "/scim/v2/Users",
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/Schemas",
            "/scim/v2/ResourceTypes",
            "/scim/v2/Users/123",
            "/scim/v2/Nope",
        ] {
            let res = app
                .call(TestRequest::default().method(Method::GET).uri(path))
                .await;
            assert_scim_error(&res, 401, None);
            assert!(res
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")));

            let res = app
                .call(
                    TestRequest::default()
                        .uri(path)
                        .insert_header((header::AUTHORIZATION, "Bearer scimd_wrong")),
                )
                .await;
            assert_scim_error(&res, 401, None);
            assert!(res
                .header("www-authenticate")
                .is_some_and(|v| v.contains("invalid_token")));

            let res = app
                .call(
                    TestRequest::default()
                        .uri(path)
                        .insert_header((header::AUTHORIZATION, "Basic dXNlcjpwdw==")),
                )
                .await;
            assert_scim_error(&res, 401, None);
        }
    }
}

#[actix_web::test]
async fn revoked_and_expired_tokens_are_refused() {
    for db in scim_store::testing::backends() {
        let app = TestApp::with_config(
            db,
            scim_server::ScimConfig {
                token_cache_ttl: std::time::Duration::ZERO,
                ..Default::default()
            },
        );
        let store = app.db.store().clone();
        let (info, secret) = store
            .write(|c| scim_store::create_token(c, "short", None))
            .unwrap();
        let req = || {
            TestRequest::default()
                .uri("/scim/v2/Users")
                .insert_header((header::AUTHORIZATION, format!("Bearer {secret}")))
        };
        assert_eq!(app.call(req()).await.status, StatusCode::OK);
        store
            .write(|c| scim_store::revoke_token(c, scim_store::OrgId::DEFAULT, &info.id))
            .unwrap();
        assert_scim_error(&app.call(req()).await, 401, None);

        let (_, expired) = store
            .write(|c| {
                scim_store::create_token(c, "old", Some("2000-01-01T00:00:00.000000Z".into()))
            })
            .unwrap();
        let res = app
            .call(
                TestRequest::default()
                    .uri("/scim/v2/Users")
                    .insert_header((header::AUTHORIZATION, format!("Bearer {expired}"))),
            )
            .await;
        assert_scim_error(&res, 401, None);
    }
}

#[actix_web::test]
async fn bodies_are_checked() {
    for app in TestApp::all() {
        // Not JSON.
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload("{not json"),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidSyntax"));
        // Empty.
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/json")),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidSyntax"));
        // Wrong media type.
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "text/xml"))
                    .set_payload("<user/>"),
            )
            .await;
        assert_scim_error(&res, 415, None);
        // application/json with a charset is fine.
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
                    .set_payload(r#"{"userName":"json@example.com"}"#),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        // Too large.
        let big = format!(
            r#"{{"userName":"big@example.com","title":"{}"}}"#,
            "x".repeat(1024 * 1024)
        );
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(big),
            )
            .await;
        assert_scim_error(&res, 413, None);
        // Nothing was half-written.
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22big@example.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 0);
    }
}
