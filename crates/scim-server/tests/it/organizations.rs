//! Organizations (docs/ORGANIZATIONS.md): nothing crosses from one
//! organization to another through any SCIM endpoint, on both backends.

use actix_web::http::{header, Method, StatusCode};
use actix_web::test;
use scim_store::changes::Actor;
use scim_store::organizations;
use scim_store::OrgId;
use serde_json::{json, Value};

use crate::{assert_scim_error, call, entra_user, Res, TestApp};

/// A second organization `slug` beside the default one: created, with
/// synchronization enabled and a token of its own (returned).
fn second_org(app: &TestApp, slug: &str, host: Option<&str>) -> (OrgId, String) {
    let store = app.db.store();
    let org = store
        .write(|c| {
            organizations::create_organization(c, slug, "Second", host, &Actor::cli("tests"))
        })
        .unwrap()
        .id;
    store
        .write(|c| scim_store::sync::enable_sync(c, org, "tests", &[]))
        .unwrap();
    let (_, token) = store
        .write(|c| scim_store::create_token_by(c, org, "second", None, None))
        .unwrap();
    store.invalidate_organizations();
    (org, token)
}

/// Sends `body` to `path` with `token`.
async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Res {
    let mut req = test::TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
    if let Some(body) = body {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/scim+json"))
            .set_payload(body.to_string());
    }
    app.call(req).await
}

fn ids(res: &Res) -> Vec<String> {
    res.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn every_endpoint_keeps_organizations_apart() {
    for app in TestApp::all() {
        let (_, beta) = second_org(&app, "beta", None);
        let a = app.token.clone();
        let b = "/scim/v2/o/beta";
        // The same userName and group displayName in both succeed.
        let alice_a = app.create_user(entra_user("alice@example.com")).await;
        let res = send(
            &app,
            &beta,
            Method::POST,
            &format!("{b}/Users"),
            Some(entra_user("ALICE@example.com")),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "{} {}",
            app.backend(),
            res.body
        );
        let alice_b = res.body["id"].as_str().unwrap().to_owned();
        assert!(
            res.body["meta"]["location"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/scim/v2/o/beta/Users/{alice_b}")),
            "{}",
            res.body
        );
        let sales = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"});
        let res = app.post("/scim/v2/Groups", sales.clone()).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let sales_a = res.body["id"].as_str().unwrap().to_owned();
        let res = send(
            &app,
            &beta,
            Method::POST,
            &format!("{b}/Groups"),
            Some(sales),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let sales_b = res.body["id"].as_str().unwrap().to_owned();

        // A token opens only its own organization's URL.
        for (token, path) in [
            (&a, format!("{b}/Users")),
            (&beta, "/scim/v2/Users".to_owned()),
        ] {
            let res = send(&app, token, Method::GET, &path, None).await;
            assert_scim_error(&res, 401, None);
        }
        // An organization that does not exist answers as a wrong token does.
        let res = send(&app, &a, Method::GET, "/scim/v2/o/nope/Users", None).await;
        assert_scim_error(&res, 401, None);

        // Another organization's ids are unknown, whatever the method.
        for (method, path, body) in [
            (Method::GET, format!("{b}/Users/{alice_a}"), None),
            (
                Method::PUT,
                format!("{b}/Users/{alice_a}"),
                Some(entra_user("x@example.com")),
            ),
            (
                Method::PATCH,
                format!("{b}/Users/{alice_a}"),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}),
                ),
            ),
            (Method::DELETE, format!("{b}/Users/{alice_a}"), None),
            (Method::GET, format!("{b}/Groups/{sales_a}"), None),
            (
                Method::PATCH,
                format!("{b}/Groups/{sales_a}"),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
                ),
            ),
            (Method::DELETE, format!("{b}/Groups/{sales_a}"), None),
        ] {
            let res = send(&app, &beta, method.clone(), &path, body).await;
            assert_scim_error(&res, 404, None);
        }
        // The default organization's user is untouched.
        let res = app.get(&format!("/scim/v2/Users/{alice_a}")).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["title"], "Engineer");
        assert_eq!(
            app.get(&format!("/scim/v2/Groups/{sales_a}")).await.status,
            StatusCode::OK
        );

        // Filters, lists and searches see their own organization only.
        for path in [
            format!("{b}/Users?filter=userName%20eq%20%22alice@example.com%22"),
            format!("{b}/Users?filter=emails.value%20eq%20%22alice@example.com%22"),
            format!("{b}/Users?filter=emails%5Btype%20eq%20%22work%22%5D"),
            format!("{b}/Users"),
            format!("{b}/Users?count=10&cursor="),
        ] {
            let res = send(&app, &beta, Method::GET, &path, None).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
            assert_eq!(ids(&res), vec![alice_b.clone()], "{path}");
        }
        let res = send(&app, &beta, Method::GET, &format!("{b}/Groups"), None).await;
        assert_eq!(ids(&res), vec![sales_b.clone()]);
        let res = send(
            &app,
            &beta,
            Method::POST,
            &format!("{b}/.search"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName sw \"alice\""}),
            ),
        )
        .await;
        assert_eq!(ids(&res), vec![alice_b.clone()], "{}", res.body);
        let res = app.get("/scim/v2/Users").await;
        assert_eq!(ids(&res), vec![alice_a.clone()]);

        // A member reference to another organization's user is refused
        // as if the user did not exist, and nothing changes.
        let res = send(
            &app,
            &beta,
            Method::PATCH,
            &format!("{b}/Groups/{sales_b}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": alice_a}]}]}),
            ),
        )
        .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let res = send(
            &app,
            &beta,
            Method::POST,
            &format!("{b}/Groups"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Leak", "members": [{"value": alice_a}]}),
            ),
        )
        .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        // Its own user is a member at once.
        let res = send(
            &app,
            &beta,
            Method::PATCH,
            &format!("{b}/Groups/{sales_b}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": alice_b}]}]}),
            ),
        )
        .await;
        assert!(res.status.is_success(), "{}", res.body);

        // /Bulk runs each operation in the bulk request's organization.
        let res = send(
            &app,
            &beta,
            Method::POST,
            &format!("{b}/Bulk"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "DELETE", "path": format!("/Users/{alice_a}")},
                    {"method": "POST", "path": "/Users", "bulkId": "u", "data": entra_user("bob@example.com")}
                ]})),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["Operations"][0]["status"], "404", "{}", res.body);
        assert_eq!(res.body["Operations"][1]["status"], "201", "{}", res.body);
        assert_eq!(
            app.get(&format!("/scim/v2/Users/{alice_a}")).await.status,
            StatusCode::OK
        );
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22bob@example.com%22")
            .await;
        assert_eq!(res.body["totalResults"], 0, "{}", res.body);

        // Discovery answers under the organization's path too.
        let res = send(
            &app,
            &beta,
            Method::GET,
            &format!("{b}/ServiceProviderConfig"),
            None,
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
}

#[actix_web::test]
async fn each_organization_has_its_own_sync_switch_and_suspension() {
    for app in TestApp::all() {
        let (org, beta) = second_org(&app, "beta", None);
        let users = "/scim/v2/o/beta/Users";
        // Its own switch: disabling it leaves the default organization on.
        app.db
            .store()
            .write(|c| scim_store::sync::disable_sync(c, org, "tests", "test"))
            .unwrap();
        assert_scim_error(
            &send(&app, &beta, Method::GET, users, None).await,
            403,
            None,
        );
        assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
        app.db
            .store()
            .write(|c| scim_store::sync::enable_sync(c, org, "tests", &[]))
            .unwrap();
        assert_eq!(
            send(&app, &beta, Method::GET, users, None).await.status,
            StatusCode::OK
        );

        // Suspended: every request 403, writes included; resumed: back.
        let actor = Actor::cli("tests");
        app.db
            .store()
            .write(|c| organizations::set_organization_suspended(c, org, true, &actor))
            .unwrap();
        app.db.store().invalidate_organizations();
        let res = send(&app, &beta, Method::GET, users, None).await;
        assert_scim_error(&res, 403, None);
        assert!(
            res.body["detail"].as_str().unwrap().contains("suspended"),
            "{}",
            res.body
        );
        let res = send(
            &app,
            &beta,
            Method::POST,
            users,
            Some(entra_user("c@example.com")),
        )
        .await;
        assert_scim_error(&res, 403, None);
        assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
        app.db
            .store()
            .write(|c| organizations::set_organization_suspended(c, org, false, &actor))
            .unwrap();
        app.db.store().invalidate_organizations();
        let res = send(
            &app,
            &beta,
            Method::POST,
            users,
            Some(entra_user("c@example.com")),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
}

#[actix_web::test]
async fn deleting_an_organization_removes_its_data_and_its_tokens() {
    for app in TestApp::all() {
        let (org, beta) = second_org(&app, "beta", None);
        let alice_a = app.create_user(entra_user("alice@example.com")).await;
        let res = send(
            &app,
            &beta,
            Method::POST,
            "/scim/v2/o/beta/Users",
            Some(entra_user("alice@example.com")),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED);
        let actor = Actor::cli("tests");
        let store = app.db.store();
        let stream = store
            .write(|c| {
                scim_store::events::streams::create_stream(
                    c,
                    org,
                    &scim_store::events::NewStream {
                        name: "beta app".into(),
                        delivery: scim_store::events::Delivery::Poll,
                        endpoint_url: None,
                        authorization: None,
                        audience: "https://app.beta.example".into(),
                        issuer: None,
                        event_types: vec![],
                        resource_types: vec![],
                        mode: scim_store::events::Mode::Full,
                        alg: scim_store::events::Alg::Es256,
                    },
                    &scim_core::datetime::now(),
                )
            })
            .unwrap()
            .stream
            .id;
        // The confirmation must be its slug; the default cannot go.
        assert!(store
            .write(|c| organizations::delete_organization(c, org, "wrong", &actor))
            .is_err());
        assert!(store
            .write(|c| organizations::delete_organization(c, OrgId::DEFAULT, "default", &actor))
            .is_err());
        store
            .write(|c| organizations::delete_organization(c, org, "beta", &actor))
            .unwrap();
        store.invalidate_organizations();
        assert_scim_error(
            &send(&app, &beta, Method::GET, "/scim/v2/o/beta/Users", None).await,
            401,
            None,
        );
        let left: i64 = store
            .read(|c| scim_store::users::count_matching_users(c, org, None))
            .unwrap();
        assert_eq!(left, 0);
        assert!(store
            .read(|c| scim_store::list_tokens(c, org))
            .unwrap()
            .is_empty());
        // Its event streams go with their keys.
        assert!(matches!(
            store.read(|c| scim_store::events::streams::find_stream(c, &stream)),
            Err(scim_store::StoreError::NotFound)
        ));
        assert!(store
            .read(|c| scim_store::events::keys::list_keys(c, &stream))
            .unwrap()
            .is_empty());
        // The default organization keeps everything.
        assert_eq!(
            app.get(&format!("/scim/v2/Users/{alice_a}")).await.status,
            StatusCode::OK
        );
        // The slug is free again.
        let (_, again) = second_org(&app, "beta", None);
        let res = send(&app, &again, Method::GET, "/scim/v2/o/beta/Users", None).await;
        assert_eq!(res.body["totalResults"], 0, "{}", res.body);
    }
}

#[actix_web::test]
async fn a_host_name_reaches_its_organization_at_the_plain_base_path() {
    for app in TestApp::all() {
        let (_, beta) = second_org(&app, "beta", Some("Beta.Example.com"));
        let res = send(
            &app,
            &beta,
            Method::POST,
            "/scim/v2/o/beta/Users",
            Some(entra_user("h@example.com")),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED);
        let req = test::TestRequest::get()
            .uri("/scim/v2/Users")
            .insert_header((header::HOST, "beta.example.com:8443"))
            .insert_header((header::AUTHORIZATION, format!("Bearer {beta}")));
        let res = app.call(req).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["totalResults"], 1);
        // The default organization's token does not open that host.
        let req = test::TestRequest::get()
            .uri("/scim/v2/Users")
            .insert_header((header::HOST, "beta.example.com"))
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", app.token)));
        assert_scim_error(&app.call(req).await, 401, None);
    }
}

/// Two identity providers provisioning the same people into two
/// organizations at the same time: every create succeeds, once per
/// organization.
#[actix_web::test]
async fn two_organizations_provisioned_at_once_get_the_same_user_names() {
    for app in TestApp::all() {
        let (_, beta) = second_org(&app, "beta", None);
        let svc = app.service().await;
        let names: Vec<String> = (0..20).map(|i| format!("user{i}@example.com")).collect();
        let mut calls = Vec::new();
        for name in &names {
            for (token, base) in [(&app.token, "/scim/v2"), (&beta, "/scim/v2/o/beta")] {
                let req = test::TestRequest::post()
                    .uri(&format!("{base}/Users"))
                    .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(entra_user(name).to_string());
                calls.push(call(&svc, req));
            }
        }
        for res in futures_util::future::join_all(calls).await {
            assert_eq!(
                res.status,
                StatusCode::CREATED,
                "{} {}",
                app.backend(),
                res.body
            );
        }
        for (token, base) in [(&app.token, "/scim/v2"), (&beta, "/scim/v2/o/beta")] {
            let res = send(
                &app,
                token,
                Method::GET,
                &format!("{base}/Users?count=100"),
                None,
            )
            .await;
            assert_eq!(res.body["totalResults"], names.len(), "{base}");
        }
    }
}

/// A database the previous release created (one directory, no
/// organizations) migrates into the default organization: the identity
/// provider keeps its URL and token, and finds every user and group.
#[actix_web::test]
async fn a_single_directory_database_migrates_into_the_default_organization() {
    for db in scim_store::testing::backends() {
        let store = db.store().clone();
        // Back to the schema before organizations (newer migrations
        // first).
        while !store
            .revert_last_migration()
            .unwrap()
            .starts_with("20261207000000")
        {}
        let secret = "scimd_from-the-previous-release";
        let hash = scim_store::hash_secret(secret);
        let user = json!({"userName": "old@example.com", "active": true,
            "emails": [{"value": "old@example.com", "type": "work", "primary": true}]});
        let group = json!({"displayName": "Old group"});
        let t = "2026-12-01T00:00:00.000Z";
        db.execute(&format!(
                    "UPDATE sync_state SET enabled = TRUE WHERE id = 1;
                     INSERT INTO scim_tokens (id, name, prefix, secret_hash, created_at)
                       VALUES ('00000000-0000-0000-0000-0000000000aa', 'entra', 'scimd_from', '{hash}', '{t}');
                     INSERT INTO users (id, user_name, user_name_ci, active, resource, version, created, last_modified)
                       VALUES ('00000000-0000-0000-0000-0000000000bb', 'old@example.com', 'old@example.com', TRUE, '{user}', 1, '{t}', '{t}');
                     INSERT INTO user_values (user_id, attr, idx, value, value_ci, type_ci, is_primary)
                       VALUES ('00000000-0000-0000-0000-0000000000bb', 'emails', 0, 'old@example.com', 'old@example.com', 'work', TRUE);
                     INSERT INTO groups (id, display_name, display_name_ci, resource, version, created, last_modified)
                       VALUES ('00000000-0000-0000-0000-0000000000cc', 'Old group', 'old group', '{group}', 1, '{t}', '{t}');
                     INSERT INTO group_members (group_id, member_id, member_type)
                       VALUES ('00000000-0000-0000-0000-0000000000cc', '00000000-0000-0000-0000-0000000000bb', 'User');"
        ));
        let applied = store.migrate().unwrap();
        assert!(
            applied.iter().any(|m| m.starts_with("20261207000000")),
            "{applied:?}"
        );
        let app = TestApp {
            api: scim_server::ScimApi::new(store, scim_server::ScimConfig::default()),
            db,
            token: secret.to_owned(),
        };
        let res = app
            .get("/scim/v2/Users?filter=emails.value%20eq%20%22OLD@example.com%22")
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(ids(&res), vec!["00000000-0000-0000-0000-0000000000bb"]);
        let res = app
            .get("/scim/v2/Groups/00000000-0000-0000-0000-0000000000cc")
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(
            res.body["members"][0]["value"],
            "00000000-0000-0000-0000-0000000000bb"
        );
        // userName stays unique in the default organization.
        let res = app
            .post("/scim/v2/Users", entra_user("OLD@example.com"))
            .await;
        assert_scim_error(&res, 409, Some("uniqueness"));
        // And the same token at the default organization's explicit URL.
        let res = app.get("/scim/v2/o/default/Users").await;
        assert_eq!(res.body["totalResults"], 1, "{}", res.body);
    }
}
