//! `uniqueness: server` / `global` of custom extension attributes
//! (docs/SCIM.md "Custom schema extensions"): a value held by another
//! live user is 409 `uniqueness` naming the attribute, on every User write
//! path (POST, PUT, both PATCH dialects, `/Bulk`), with nothing written;
//! and concurrent writes of one value never both succeed.

use actix_web::http::{header, Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::{assert_scim_error, call, TestApp};

const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn define(app: &TestApp) {
    let def = scim_core::extensions::ExtensionDef::from_json(&json!({
        "id": URN,
        "attributes": [
            {"name": "badge", "type": "string", "uniqueness": "server"},
            {"name": "code", "type": "string", "uniqueness": "global", "caseExact": true},
            {"name": "tags", "type": "integer", "multiValued": true, "uniqueness": "server"},
            {"name": "desk", "type": "complex", "subAttributes": [
                {"name": "tag", "type": "string", "uniqueness": "server"},
                {"name": "floor", "type": "integer"}]},
            {"name": "free", "type": "string"}
        ]
    }))
    .unwrap();
    let store = app.db.store();
    store
        .write(|c| scim_store::scim::extensions::create_extension(c, &def, "tests"))
        .unwrap();
    store.invalidate_user_schemas();
}

fn user(name: &str, ext: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
           "userName": name, URN: ext})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn assert_taken(res: &crate::Res, attr: &str) {
    assert_scim_error(res, 409, Some("uniqueness"));
    let detail = res.body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("{URN}:{attr}")), "{detail}");
}

async fn count(app: &TestApp) -> i64 {
    app.get("/scim/v2/Users?count=0").await.body["totalResults"]
        .as_i64()
        .unwrap()
}

#[actix_web::test]
async fn a_value_held_by_another_user_is_refused_on_every_write_path() {
    for app in TestApp::all() {
        let backend = app.backend();
        define(&app);
        let alice = app
            .create_user(user(
                "alice",
                json!({"badge": "B-1", "code": "Ab", "tags": [1, 2], "desk": {"tag": "D1"}, "free": "x"}),
            ))
            .await;
        // POST: the same value in another case (not caseExact), a number
        // of a multi-valued attribute, a sub-attribute, the flat key.
        for (ext, attr) in [
            (json!({"badge": "b-1"}), "badge"),
            (json!({"code": "Ab"}), "code"),
            (json!({"tags": [3, 2]}), "tags"),
            (json!({"desk": {"tag": "D1"}}), "desk.tag"),
        ] {
            let res = app.post("/scim/v2/Users", user("bob", ext.clone())).await;
            assert_taken(&res, attr);
        }
        let mut flat = json!({"userName": "bob"});
        flat[format!("{URN}:badge")] = json!("B-1");
        assert_taken(&app.post("/scim/v2/Users", flat).await, "badge");
        assert_eq!(count(&app).await, 1, "{backend}: nothing was written");
        // Values that differ, and case for a caseExact one, are accepted;
        // a value not unique ("free") may repeat.
        let bob = app
            .create_user(user(
                "bob",
                json!({"badge": "B-2", "code": "ab", "tags": [3], "free": "x"}),
            ))
            .await;
        let bob_path = format!("/scim/v2/Users/{bob}");
        // PUT.
        let res = app
            .put(&bob_path, user("bob", json!({"badge": "B-1"})))
            .await;
        assert_taken(&res, "badge");
        // PATCH with a path (Entra's default dialect) and path-less with
        // the URN-qualified key (its other dialect).
        let res = app
            .patch(
                &bob_path,
                patch(json!([{"op": "replace", "path": format!("{URN}:badge"), "value": "B-1"}])),
            )
            .await;
        assert_taken(&res, "badge");
        let res = app
            .patch(
                &bob_path,
                patch(json!([{"op": "replace", "value": {format!("{URN}:desk.tag"): "d1"}}])),
            )
            .await;
        assert_taken(&res, "desk.tag");
        let res = app
            .patch(
                &bob_path,
                patch(json!([{"op": "add", "path": format!("{URN}:tags"), "value": [1]}])),
            )
            .await;
        assert_taken(&res, "tags");
        // Bob is as he was.
        let got = app.get(&bob_path).await;
        assert_eq!(got.body["meta"]["version"], "W/\"1\"", "{backend}");
        assert_eq!(got.body[URN]["badge"], "B-2");
        // /Bulk: each operation as its single request.
        let res = app
            .post(
                "/scim/v2/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                       "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "c",
                     "data": user("carol", json!({"badge": "B-1"}))},
                    {"method": "PATCH", "path": bob_path.trim_start_matches("/scim/v2"),
                     "data": patch(json!([{"op": "replace", "path": format!("{URN}:badge"), "value": "B-1"}]))},
                    {"method": "POST", "path": "/Users", "bulkId": "d",
                     "data": user("dave", json!({"badge": "B-4"}))}
                ]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let ops = res.body["Operations"].as_array().unwrap();
        assert_eq!(ops[0]["status"], "409", "{}", res.body);
        assert_eq!(ops[0]["response"]["scimType"], "uniqueness");
        assert_eq!(ops[1]["status"], "409", "{}", res.body);
        assert_eq!(ops[2]["status"], "201", "{}", res.body);
        // A value is free again once its holder lets it go or is deleted;
        // a user may keep writing its own value.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{alice}"),
                patch(json!([{"op": "replace", "path": format!("{URN}:free"), "value": "y"}])),
            )
            .await;
        assert!(res.status.is_success(), "{backend}: {}", res.body);
        assert_eq!(
            app.delete(&format!("/scim/v2/Users/{alice}")).await.status,
            StatusCode::NO_CONTENT
        );
        let res = app
            .patch(
                &bob_path,
                patch(json!([{"op": "replace", "path": format!("{URN}:badge"), "value": "B-1"}])),
            )
            .await;
        assert!(res.status.is_success(), "{backend}: {}", res.body);
    }
}

/// Many writes of one value at once, creates and edits: exactly one of
/// each kind wins, whatever the batching (PostgreSQL) or the writer's
/// order (SQLite).
#[actix_web::test]
async fn concurrent_writes_of_one_value_never_both_succeed() {
    for app in TestApp::all() {
        let backend = app.backend();
        define(&app);
        let svc = app.service().await;
        let send = |method: Method, path: String, body: Value| {
            call(
                &svc,
                app.request(method, &path)
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        };
        let creates = (0..24).map(|i| {
            send(
                Method::POST,
                "/scim/v2/Users".to_owned(),
                user(&format!("racer{i}"), json!({"badge": "SAME"})),
            )
        });
        let statuses: Vec<u16> = join_all(creates)
            .await
            .iter()
            .map(|r| r.status.as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{backend}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "{statuses:?}"
        );
        let mut ids = Vec::new();
        for i in 0..16 {
            ids.push(
                app.create_user(user(&format!("editor{i}"), json!({})))
                    .await,
            );
        }
        let edits = ids.iter().map(|id| {
            send(
                Method::PATCH,
                format!("/scim/v2/Users/{id}"),
                patch(json!([{"op": "add", "path": format!("{URN}:code"), "value": "Z"}])),
            )
        });
        let statuses: Vec<u16> = join_all(edits)
            .await
            .iter()
            .map(|r| r.status.as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s < 300).count(),
            1,
            "{backend}: {statuses:?}"
        );
        let held = app
            .get(&format!(
                "/scim/v2/Users?count=0&filter={}",
                form_urlencoded::byte_serialize(format!("{URN}:code eq \"Z\"").as_bytes())
                    .collect::<String>()
            ))
            .await;
        assert_eq!(held.body["totalResults"], 1, "{backend}: {}", held.body);
    }
}

/// Values two users shared before the attribute was unique (stored by a
/// scimd that did not enforce it): writes that keep them pass, writes that
/// bring the value to a third user are refused.
#[actix_web::test]
async fn values_shared_before_uniqueness_do_not_block_other_edits() {
    for app in TestApp::all() {
        let backend = app.backend();
        define(&app);
        // Stored as an earlier scimd would have: the definition said
        // "server" and nothing checked it.
        let set = |from: &str, to: &str| {
            app.db.execute(&format!(
                "UPDATE schema_extensions SET definition = \
                 replace(definition, '\"uniqueness\":\"{from}\"', '\"uniqueness\":\"{to}\"')"
            ));
        };
        set("server", "none");
        let a = app
            .create_user(user("a", json!({"badge": "SHARED", "free": "1"})))
            .await;
        let b = app.create_user(user("b", json!({"badge": "shared"}))).await;
        set("none", "server");
        // Read first, so that SQLite decides the edit on its hint.
        assert_eq!(
            app.get(&format!("/scim/v2/Users/{a}")).await.status,
            StatusCode::OK
        );
        let res = app
            .patch(
                &format!("/scim/v2/Users/{a}"),
                patch(json!([{"op": "replace", "path": format!("{URN}:free"), "value": "2"}])),
            )
            .await;
        assert!(res.status.is_success(), "{backend}: {}", res.body);
        let res = app
            .patch(
                &format!("/scim/v2/Users/{b}"),
                patch(json!([{"op": "replace", "path": "active", "value": false}])),
            )
            .await;
        assert!(res.status.is_success(), "{backend}: {}", res.body);
        let res = app
            .put(
                &format!("/scim/v2/Users/{b}"),
                user("b", json!({"badge": "shared", "free": "3"})),
            )
            .await;
        assert!(res.status.is_success(), "{backend}: {}", res.body);
        let res = app
            .post("/scim/v2/Users", user("c", json!({"badge": "Shared"})))
            .await;
        assert_taken(&res, "badge");
    }
}
