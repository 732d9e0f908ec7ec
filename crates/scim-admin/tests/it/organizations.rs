//! The admin API's organizations (docs/ORGANIZATIONS.md) and the
//! `X-Scimd-Organization` header every other endpoint acts by, on both
//! backends.

use actix_web::http::Method;
use serde_json::json;

use crate::{assert_error, TestApp};

#[actix_web::test]
async fn organizations_are_managed_and_the_header_picks_the_one_acted_on() {
    for db in scim_store::testing::backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/organizations",
                &auth,
                Some(json!({"slug": "acme", "name": "Acme Corp"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["scim_path"], "/scim/v2/o/acme");
        assert_eq!(res.body["suspended"], false);
        // A taken slug, a bad one.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/organizations",
                &auth,
                Some(json!({"slug": "acme", "name": "Again"})),
            )
            .await;
        assert_error(&res, 409, "conflict");
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/organizations",
                &auth,
                Some(json!({"slug": "Not A Slug", "name": "X"})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        let res = app
            .send(Method::GET, "/admin/api/v1/organizations", &auth, None)
            .await;
        let slugs: Vec<&str> = res
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs, ["default", "acme"]);

        // A token made with the header belongs to acme: listed there only.
        let in_acme =
            |r: actix_web::test::TestRequest| r.insert_header(("X-Scimd-Organization", "acme"));
        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &auth,
                Some(json!({"name": "Acme Entra"})),
                in_acme,
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let res = app
            .send_with(
                Method::GET,
                "/admin/api/v1/scim-tokens",
                &auth,
                None,
                in_acme,
            )
            .await;
        assert_eq!(res.body.as_array().unwrap().len(), 1, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/scim-tokens", &auth, None)
            .await;
        assert!(res.body.as_array().unwrap().is_empty(), "{}", res.body);
        // Its switch and settings are its own.
        let res = app
            .send_with(Method::GET, "/admin/api/v1/sync", &auth, None, in_acme)
            .await;
        assert_eq!(res.body["enabled"], false);
        // An unknown organization in the header.
        let res = app
            .send_with(Method::GET, "/admin/api/v1/sync", &auth, None, |r| {
                r.insert_header(("X-Scimd-Organization", "nope"))
            })
            .await;
        assert_error(&res, 404, "not_found");

        // Suspend, resume, rename.
        let res = app
            .send(
                Method::PATCH,
                "/admin/api/v1/organizations/acme",
                &auth,
                Some(json!({"suspended": true, "name": "Acme Corporation"})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["suspended"], true);
        assert_eq!(res.body["name"], "Acme Corporation");
        let res = app
            .send(
                Method::PATCH,
                "/admin/api/v1/organizations/acme",
                &auth,
                Some(json!({"suspended": false})),
            )
            .await;
        assert_eq!(res.body["suspended"], false);

        // Deleting needs the slug again; the default one cannot go.
        let res = app
            .send(
                Method::DELETE,
                "/admin/api/v1/organizations/acme",
                &auth,
                None,
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        let res = app
            .send(
                Method::DELETE,
                "/admin/api/v1/organizations/default?confirm=default",
                &auth,
                None,
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        let res = app
            .send(
                Method::DELETE,
                "/admin/api/v1/organizations/acme?confirm=acme",
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/organizations", &auth, None)
            .await;
        assert_eq!(res.body.as_array().unwrap().len(), 1);
        let res = app
            .send(
                Method::PATCH,
                "/admin/api/v1/organizations/acme",
                &auth,
                Some(json!({})),
            )
            .await;
        assert_error(&res, 404, "not_found");
    }
}
