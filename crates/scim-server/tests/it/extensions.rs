//! Custom schema extensions (docs/SCIM.md "Custom schema extensions") as
//! Entra ID uses them: `urn:ietf:params:scim:schemas:extension:
//! CustomExtensionName:2.0:User` with `CustomAttribute`, written by POST,
//! PUT and both PATCH dialects, validated, returned as `returned` and
//! `attributes` say, filtered and sorted in SQL, listed at `/Schemas`, and
//! recorded in the change log. The admin API that defines them is tested
//! in scim-admin; here they are defined through the same store function.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use scim_store::changes::{last_position, read_after};

use crate::TestApp;

const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn enc(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

fn define(app: &TestApp) {
    let def = scim_core::extensions::ExtensionDef::from_json(&json!({
        "id": URN,
        "description": "Entra custom attributes",
        "attributes": [
            {"name": "CustomAttribute", "type": "string"},
            {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200"]},
            {"name": "level", "type": "integer"},
            {"name": "badge", "type": "string", "mutability": "immutable", "caseExact": true},
            {"name": "internalId", "type": "string", "mutability": "readOnly"},
            {"name": "notes", "type": "string", "returned": "request"},
            {"name": "hired", "type": "dateTime"},
            {"name": "site", "type": "complex", "subAttributes": [
                {"name": "building", "type": "string"},
                {"name": "floor", "type": "integer"}
            ]}
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
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
        "userName": name,
        "active": true,
        URN: ext,
    })
}

fn names(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn schemas_and_resource_types_list_a_defined_extension() {
    for app in TestApp::all() {
        let before = app.get("/scim/v2/Schemas").await;
        assert_eq!(before.body["totalResults"], 3, "{}", app.backend());
        define(&app);
        let res = app.get("/scim/v2/Schemas").await;
        assert_eq!(res.body["totalResults"], 4);
        let s = app.get(&format!("/scim/v2/Schemas/{URN}")).await;
        assert_eq!(s.status, StatusCode::OK);
        assert_eq!(s.body["id"], URN);
        assert_eq!(s.body["name"], "CustomExtensionName");
        let attrs = s.body["attributes"].as_array().unwrap();
        assert_eq!(attrs[0]["name"], "CustomAttribute");
        assert_eq!(attrs[1]["canonicalValues"], json!(["CC-100", "CC-200"]));
        assert_eq!(attrs[3]["mutability"], "immutable");
        assert_eq!(attrs[7]["subAttributes"][1]["type"], "integer");
        let rt = app.get("/scim/v2/ResourceTypes/User").await;
        let exts: Vec<&str> = rt.body["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["schema"].as_str().unwrap())
            .collect();
        assert_eq!(
            exts,
            vec![
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                URN
            ]
        );
    }
}

#[actix_web::test]
async fn values_are_written_by_post_put_and_both_patch_dialects() {
    for app in TestApp::all() {
        define(&app);
        // Nested under the URN, and as a flat URN-qualified key.
        let mut body = user(
            "alice",
            json!({"customattribute": "Blue", "costCenter": "CC-100", "level": 3, "badge": "B-7",
                   "notes": "n", "hired": "2020-01-02T03:04:05Z",
                   "site": {"building": "HQ", "floor": 2}, "internalId": "ignored"}),
        );
        body[format!("{URN}:level")] = json!(4);
        let res = app.post("/scim/v2/Users", body).await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "{}: {}",
            app.backend(),
            res.body
        );
        let id = res.body["id"].as_str().unwrap().to_owned();
        assert!(res.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(URN)));
        assert_eq!(
            res.body[URN],
            json!({"CustomAttribute": "Blue", "costCenter": "CC-100", "level": 4, "badge": "B-7",
                   "hired": "2020-01-02T03:04:05.000000Z", "site": {"building": "HQ", "floor": 2}}),
            "notes only on request, readOnly internalId ignored"
        );
        let asked = app
            .get(&format!(
                "/scim/v2/Users/{id}?attributes={}",
                enc(&format!("{URN}:notes"))
            ))
            .await;
        assert_eq!(asked.body[URN], json!({"notes": "n"}));
        let without = app
            .get(&format!(
                "/scim/v2/Users/{id}?excludedAttributes={}",
                enc(&format!("{URN}:CustomAttribute"))
            ))
            .await;
        assert!(without.body[URN].get("CustomAttribute").is_none());
        assert_eq!(without.body[URN]["level"], 4);

        // Entra's path-less replace with the URN-qualified key.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "Replace", "value": {format!("{URN}:CustomAttribute"): "Green"}}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body[URN]["CustomAttribute"], "Green");
        // The same as a path.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": format!("{URN}:CustomAttribute"), "value": "Red"},
                    {"op": "replace", "path": format!("{URN}:site.floor"), "value": 5}
                ]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body[URN]["CustomAttribute"], "Red");
        assert_eq!(res.body[URN]["site"], json!({"building": "HQ", "floor": 5}));
        // PUT replaces the extension's values too (the immutable badge
        // given again unchanged).
        let res = app
            .put(
                &format!("/scim/v2/Users/{id}"),
                user("alice", json!({"CustomAttribute": "Black", "badge": "B-7"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(
            res.body[URN],
            json!({"CustomAttribute": "Black", "badge": "B-7"})
        );
        let got = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(
            got.body[URN],
            json!({"CustomAttribute": "Black", "badge": "B-7"})
        );
    }
}

#[actix_web::test]
async fn bad_values_are_scim_errors_and_write_nothing() {
    for app in TestApp::all() {
        define(&app);
        let id = app
            .create_user(user("bob", json!({"badge": "B-1", "level": 1})))
            .await;
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "POST",
                user("c1", json!({"costCenter": "CC-999"})),
                "invalidValue",
                "canonicalValues",
            ),
            (
                "POST",
                user("c2", json!({"level": "high"})),
                "invalidValue",
                "must be an integer",
            ),
            (
                "POST",
                user("c3", json!({"hired": "yesterday"})),
                "invalidValue",
                "RFC 3339",
            ),
            (
                "POST",
                json!({"userName": "c4", URN: "flat"}),
                "invalidValue",
                "JSON object",
            ),
            (
                "PATCH",
                patch(
                    json!([{"op": "replace", "path": format!("{URN}:internalId"), "value": "x"}]),
                ),
                "mutability",
                "readOnly",
            ),
            (
                "PATCH",
                patch(json!([{"op": "replace", "path": format!("{URN}:badge"), "value": "B-2"}])),
                "mutability",
                "immutable",
            ),
            (
                "PATCH",
                patch(json!([{"op": "replace", "value": {format!("{URN}:level"): "x"}}])),
                "invalidValue",
                "must be an integer",
            ),
            (
                "PATCH",
                patch(json!([{"op": "replace", "path": format!("{URN}:nope"), "value": "x"}])),
                "invalidPath",
                "nope",
            ),
            (
                "PUT",
                user("bob", json!({"badge": "B-2"})),
                "mutability",
                "immutable",
            ),
        ];
        for (method, body, scim_type, detail) in cases {
            let path = if method == "POST" {
                "/scim/v2/Users".to_owned()
            } else {
                format!("/scim/v2/Users/{id}")
            };
            let m = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
            let res = app.send(m, &path, Some(body.clone())).await;
            assert_eq!(
                res.status,
                StatusCode::BAD_REQUEST,
                "{method} {body}: {}",
                res.body
            );
            assert_eq!(
                res.body["scimType"], scim_type,
                "{method} {body}: {}",
                res.body
            );
            assert!(
                res.body["detail"].as_str().unwrap().contains(detail),
                "{method} {body}: {}",
                res.body
            );
        }
        let got = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(got.body[URN], json!({"badge": "B-1", "level": 1}));
        assert_eq!(got.body["meta"]["version"], "W/\"1\"");
        let list = app.get("/scim/v2/Users").await;
        assert_eq!(list.body["totalResults"], 1, "no failed POST stored a user");
    }
}

#[actix_web::test]
async fn filters_and_sorting_run_on_extension_values() {
    for app in TestApp::all() {
        define(&app);
        for (name, colour, level, floor, hired) in [
            ("u1", "Blue", 10, 1, "2021-01-01T00:00:00Z"),
            ("u2", "blue", 2, 3, "2019-06-01T00:00:00Z"),
            ("u3", "Green", 30, 2, "2020-03-01T12:00:00+02:00"),
        ] {
            app.create_user(user(
                name,
                json!({"CustomAttribute": colour, "level": level, "badge": name.to_uppercase(),
                       "hired": hired, "site": {"floor": floor}}),
            ))
            .await;
        }
        app.create_user(json!({"userName": "plain"})).await;
        let list = |filter: String| {
            let app = &app;
            async move {
                app.get(&format!("/scim/v2/Users?filter={}", enc(&filter)))
                    .await
            }
        };
        let cases: Vec<(String, Vec<&str>)> = vec![
            (
                format!("{URN}:CustomAttribute eq \"BLUE\""),
                vec!["u1", "u2"],
            ),
            (format!("{URN}:customattribute sw \"gr\""), vec!["u3"]),
            // Numbers compare as numbers: 10 > 3, though "10" < "3" as text.
            (format!("{URN}:level gt 3"), vec!["u1", "u3"]),
            (format!("{URN}:level le 10"), vec!["u1", "u2"]),
            (format!("{URN}:site.floor eq 3"), vec!["u2"]),
            (format!("{URN}:site[floor ge 2]"), vec!["u2", "u3"]),
            // caseExact: only the exact case matches.
            (format!("{URN}:badge eq \"U2\""), vec!["u2"]),
            (format!("{URN}:badge eq \"u2\""), vec![]),
            (
                format!("{URN}:hired lt \"2020-03-01T11:00:00Z\""),
                vec!["u2", "u3"],
            ),
            (format!("{URN}:level pr"), vec!["u1", "u2", "u3"]),
            (format!("not ({URN}:level pr)"), vec!["plain"]),
            (
                format!("{URN}:CustomAttribute ne \"blue\""),
                vec!["u3", "plain"],
            ),
        ];
        for (filter, want) in cases {
            let res = list(filter.clone()).await;
            assert_eq!(res.status, StatusCode::OK, "{filter}: {}", res.body);
            assert_eq!(names(&res.body), want, "{} {filter}", app.backend());
        }
        let sorted = app
            .get(&format!(
                "/scim/v2/Users?sortBy={}&sortOrder=descending",
                enc(&format!("{URN}:level"))
            ))
            .await;
        // As numbers (30, 10, 2), not as text; a user without a value
        // sorts first descending (last ascending), as everywhere.
        assert_eq!(names(&sorted.body), vec!["plain", "u3", "u1", "u2"]);
        let sorted = app
            .get(&format!(
                "/scim/v2/Users?sortBy={}",
                enc(&format!("{URN}:CustomAttribute"))
            ))
            .await;
        assert_eq!(names(&sorted.body)[2], "u3");
        for bad in [
            format!("{URN}:nope eq \"x\""),
            format!("{URN}:site eq \"HQ\""),
            format!("{URN}:level co 1"),
            "urn:ietf:params:scim:schemas:extension:Undefined:2.0:User:x eq \"y\"".to_owned(),
        ] {
            let res = list(bad.clone()).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.body);
            assert_eq!(res.body["scimType"], "invalidFilter", "{bad}");
        }
    }
}

#[actix_web::test]
async fn extension_changes_are_recorded_with_their_paths_and_data() {
    for app in TestApp::all() {
        define(&app);
        let id = app
            .create_user(user("carol", json!({"CustomAttribute": "a"})))
            .await;
        let store = app.db.store();
        let before = store.read(last_position).unwrap();
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": format!("{URN}:CustomAttribute"), "value": "b"}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        let rows = store.read(|c| read_after(c, before, 10)).unwrap();
        assert_eq!(rows.len(), 1, "{}", app.backend());
        let detail: Value = serde_json::from_str(&rows[0].detail).unwrap();
        assert_eq!(detail, json!({"paths": [format!("{URN}:CustomAttribute")]}));
        let data: Value = serde_json::from_str(rows[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(
            data["Operations"],
            json!([{"op": "replace", "path": format!("{URN}:CustomAttribute"), "value": "b"}])
        );
    }
}
