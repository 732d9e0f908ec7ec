//! Custom schema extensions through the admin API: defined, listed, a bad
//! definition refused with what to fix, removal (of an attribute, of the
//! extension) refused without the confirmation and, with it, taking the
//! values users hold, recorded in the change log.

use actix_web::http::Method;
use scim_core::resource::normalize;
use scim_store::testing::{backends, create_user, enable_sync};
use serde_json::{json, Value};

use super::{assert_error, field_names, TestApp};

const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
const BASE: &str = "/admin/api/v1/schema-extensions";

fn enc(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

fn definition() -> Value {
    json!({
        "id": URN,
        "description": "Entra custom attributes",
        "attributes": [
            {"name": "CustomAttribute", "type": "string"},
            {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200"]},
        ]
    })
}

/// A user holding values of the extension, written as the SCIM API does
/// (normalised against the User type in force).
async fn user_with_values(app: &TestApp, name: &str) -> String {
    let store = app.db.store();
    let rt = store.user_schemas_blocking().unwrap().user_type;
    let n = normalize(
        rt,
        &json!({"userName": name, URN: {"CustomAttribute": "x", "costCenter": "CC-100"}}),
    )
    .unwrap();
    create_user(store, scim_store::OrgId::DEFAULT, n.attrs)
        .await
        .unwrap()
        .id
}

fn stored(app: &TestApp, id: &str) -> scim_store::UserRecord {
    app.db
        .store()
        .read(|c| scim_store::find_user(c, scim_store::OrgId::DEFAULT, id))
        .unwrap()
        .unwrap()
}

#[actix_web::test]
async fn extensions_are_defined_listed_and_removed_with_their_values() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(Method::POST, BASE, &auth, Some(definition()))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["id"], URN);
        assert_eq!(
            res.body["attributes"][1]["canonicalValues"],
            json!(["CC-100", "CC-200"])
        );
        let again = app
            .send(Method::POST, BASE, &auth, Some(definition()))
            .await;
        assert_error(&again, 409, "conflict");
        let listed = app.send(Method::GET, BASE, &auth, None).await;
        assert_eq!(listed.body.as_array().unwrap().len(), 1);
        assert_eq!(listed.body[0]["attributes"][0]["name"], "CustomAttribute");

        enable_sync(app.db.store(), scim_store::OrgId::DEFAULT);
        let alice = user_with_values(&app, "alice").await;
        let bob = user_with_values(&app, "bob").await;
        assert_eq!(stored(&app, &alice).attrs[URN]["costCenter"], "CC-100");

        // An attribute: refused without the confirmation, or with the
        // wrong one; then removed with its values.
        let attr_path = format!("{BASE}/{}/attributes/costCenter", enc(URN));
        for confirm in ["", "?confirm=yes", "?confirm=costCenter"] {
            let res = app
                .send(
                    Method::DELETE,
                    &format!("{attr_path}{confirm}"),
                    &auth,
                    None,
                )
                .await;
            assert_eq!(res.status, 422, "{confirm}: {}", res.body);
            assert_eq!(field_names(&res), vec!["confirm"]);
        }
        assert_eq!(stored(&app, &alice).attrs[URN]["costCenter"], "CC-100");
        let confirm = enc(&format!("{URN}:costCenter"));
        let res = app
            .send(
                Method::DELETE,
                &format!("{attr_path}?confirm={confirm}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["users"], 2);
        let a = stored(&app, &alice);
        assert_eq!(a.attrs[URN], json!({"CustomAttribute": "x"}));
        assert_eq!(a.version, 2, "the version moves with the data");
        let listed = app.send(Method::GET, BASE, &auth, None).await;
        assert_eq!(listed.body[0]["attributes"].as_array().unwrap().len(), 1);

        // The last attribute stays: remove the extension instead.
        let last = app
            .send(
                Method::DELETE,
                &format!(
                    "{BASE}/{}/attributes/CustomAttribute?confirm={}",
                    enc(URN),
                    enc(&format!("{URN}:CustomAttribute"))
                ),
                &auth,
                None,
            )
            .await;
        assert_eq!(last.status, 422, "{}", last.body);

        // The extension: refused without the confirmation, then removed
        // with every value.
        let ext_path = format!("{BASE}/{}", enc(URN));
        let res = app.send(Method::DELETE, &ext_path, &auth, None).await;
        assert_eq!(res.status, 422, "{}", res.body);
        assert!(stored(&app, &bob).attrs.contains_key(URN));
        let res = app
            .send(
                Method::DELETE,
                &format!("{ext_path}?confirm={}", enc(URN)),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["users"], 2);
        assert!(!stored(&app, &bob).attrs.contains_key(URN));
        let listed = app.send(Method::GET, BASE, &auth, None).await;
        assert_eq!(listed.body, json!([]));
        let gone = app
            .send(
                Method::DELETE,
                &format!("{ext_path}?confirm={}", enc(URN)),
                &auth,
                None,
            )
            .await;
        assert_error(&gone, 404, "not_found");

        // Each change is in the change log.
        let events: Vec<String> = app
            .db
            .store()
            .read(|c| scim_store::changes::read_after(c, 0, 1000))
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .filter(|e| e.starts_with("schema_extension."))
            .collect();
        assert_eq!(
            events,
            vec![
                "schema_extension.created",
                "schema_extension.changed",
                "schema_extension.deleted"
            ]
        );
    }
}

#[actix_web::test]
async fn bad_definitions_are_refused_with_what_to_fix() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        for (body, says) in [
            (
                json!({"id": "urn:example:custom", "attributes": [{"name": "a", "type": "string"}]}),
                "id must have the form",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "text"}]}),
                "type must be one of",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "complex", "subAttributes": [{"name": "b", "type": "complex", "subAttributes": [{"name": "c", "type": "string"}]}]}]}),
                "cannot be complex",
            ),
            (
                json!({"id": URN, "attributes": [{"name": "a", "type": "string", "colour": "red"}]}),
                "colour",
            ),
        ] {
            let res = app
                .send(Method::POST, BASE, &auth, Some(body.clone()))
                .await;
            assert_eq!(res.status, 422, "{body}: {}", res.body);
            assert!(
                res.body["message"].as_str().unwrap().contains(says),
                "{body}: {}",
                res.body
            );
        }
        let listed = app.send(Method::GET, BASE, &auth, None).await;
        assert_eq!(listed.body, json!([]));
    }
}

/// `PUT /schema-extensions/{urn}`: attributes added and characteristics
/// changed with every value kept; what the stored values would not fit,
/// or what would drop values, refused with what to do instead.
#[actix_web::test]
async fn definitions_change_in_place_and_keep_the_values() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(Method::POST, BASE, &auth, Some(definition()))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        enable_sync(app.db.store(), scim_store::OrgId::DEFAULT);
        let alice = user_with_values(&app, "alice").await;
        let bob = user_with_values(&app, "bob").await;
        let path = format!("{BASE}/{}", enc(URN));
        let put = |body: Value| {
            let (app, auth, path) = (&app, &auth, path.clone());
            async move { app.send(Method::PUT, &path, auth, Some(body)).await }
        };

        // Added, and changed where the values still fit.
        let changed = json!({
            "id": URN,
            "description": "Entra custom attributes, v2",
            "attributes": [
                {"name": "CustomAttribute", "type": "string", "required": true,
                 "mutability": "immutable", "returned": "always", "description": "d"},
                {"name": "costCenter", "type": "string", "canonicalValues": ["CC-100", "CC-200", "CC-300"]},
                {"name": "level", "type": "integer"},
            ]
        });
        let res = put(changed.clone()).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["added"], json!(["level"]));
        assert_eq!(
            res.body["changed"],
            json!(["CustomAttribute", "costCenter"])
        );
        assert_eq!(res.body["extension"]["attributes"][2]["name"], "level");
        let listed = app.send(Method::GET, BASE, &auth, None).await;
        assert_eq!(listed.body[0]["description"], "Entra custom attributes, v2");
        assert_eq!(
            listed.body[0]["attributes"][0]["mutability"], "immutable",
            "{}",
            listed.body
        );
        let a = stored(&app, &alice);
        assert_eq!(a.attrs[URN]["costCenter"], "CC-100", "values kept");
        assert_eq!(a.version, 1, "no user was rewritten");
        // The User type in force follows at once on this replica.
        let rt = app.db.store().user_schemas_blocking().unwrap().user_type;
        assert!(rt.resolve_str(&format!("{URN}:level")).is_some());

        // Refused: an attribute left out, renamed, or another URN (422);
        // the type or multiValued of an attribute users hold values of,
        // or uniqueness over a value two users share (409).
        let mut dropped = changed.clone();
        dropped["attributes"].as_array_mut().unwrap().remove(1);
        let res = put(dropped).await;
        assert_eq!(res.status, 422, "{}", res.body);
        assert!(res.body["message"]
            .as_str()
            .unwrap()
            .contains("remove-attribute"));
        let mut renamed = changed.clone();
        renamed["attributes"][1]["name"] = json!("CostCenter");
        assert_eq!(put(renamed).await.status, 422);
        let mut other = changed.clone();
        other["id"] = json!("urn:ietf:params:scim:schemas:extension:Other:2.0:User");
        assert_eq!(put(other).await.status, 422);
        let mut retyped = changed.clone();
        retyped["attributes"][1]["type"] = json!("integer");
        retyped["attributes"][1]
            .as_object_mut()
            .unwrap()
            .remove("canonicalValues");
        let res = put(retyped).await;
        assert_error(&res, 409, "conflict");
        assert!(
            res.body["message"].as_str().unwrap().contains("costCenter"),
            "{}",
            res.body
        );
        let mut multi = changed.clone();
        multi["attributes"][1]["multiValued"] = json!(true);
        assert_error(&put(multi).await, 409, "conflict");
        let mut unique = changed.clone();
        unique["attributes"][1]["uniqueness"] = json!("server");
        let res = put(unique.clone()).await;
        assert_error(&res, 409, "conflict");
        assert!(
            res.body["message"].as_str().unwrap().contains("CC-100"),
            "{}",
            res.body
        );
        // An attribute nobody holds a value of may change type.
        let mut level = changed.clone();
        level["attributes"][2]["type"] = json!("decimal");
        let res = put(level).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["changed"], json!(["level"]));
        // Once the values differ, the uniqueness is accepted.
        let store = app.db.store();
        let rt = store.user_schemas_blocking().unwrap().user_type;
        let mut b = stored(&app, &bob);
        b.attrs[URN]["costCenter"] = json!("CC-200");
        let n = normalize(rt, &Value::Object(b.attrs.clone())).unwrap();
        store
            .write(|c| {
                scim_store::users::update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &bob,
                    b.version,
                    &n.attrs,
                    scim_store::users::PasswordChange::Keep,
                )
            })
            .unwrap();
        unique["attributes"][2]["type"] = json!("decimal");
        let res = put(unique).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let missing = app
            .send(
                Method::PUT,
                &format!(
                    "{BASE}/{}",
                    enc("urn:ietf:params:scim:schemas:extension:Nope:2.0:User")
                ),
                &auth,
                Some(json!({"id": "urn:ietf:params:scim:schemas:extension:Nope:2.0:User", "attributes": [{"name": "a", "type": "string"}]})),
            )
            .await;
        assert_error(&missing, 404, "not_found");

        // Each change that stood is one event in the change log.
        let changes: Vec<Value> = store
            .read(|c| scim_store::changes::read_after(c, 0, 1000))
            .unwrap()
            .into_iter()
            .filter(|r| r.event == "schema_extension.changed")
            .map(|r| serde_json::from_str(&r.detail).unwrap())
            .collect();
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(changes[0]["added"], json!(["level"]));
    }
}

/// `/scim/v2/openapi.json` describes the User with the custom extensions
/// in force, each under its URN, and follows a change at once.
#[actix_web::test]
async fn the_scim_document_shows_the_extensions_defined() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let doc = app
            .send(Method::GET, "/scim/v2/openapi.json", &auth, None)
            .await;
        assert_eq!(doc.status, 200);
        let user = &doc.body["components"]["schemas"]["User"]["properties"];
        assert!(user.get(URN).is_none());
        assert!(user
            .get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
            .is_some());
        let res = app
            .send(Method::POST, BASE, &auth, Some(definition()))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let doc = app
            .send(Method::GET, "/scim/v2/openapi.json", &auth, None)
            .await;
        let schemas = &doc.body["components"]["schemas"];
        assert_eq!(
            schemas["User"]["properties"][URN]["$ref"],
            "#/components/schemas/Extension_CustomExtensionName",
            "{}",
            schemas["User"]
        );
        let ext = &schemas["Extension_CustomExtensionName"]["properties"];
        assert_eq!(ext["CustomAttribute"]["type"], "string", "{ext}");
        assert_eq!(ext["costCenter"]["examples"], json!(["CC-100", "CC-200"]));
        let mut changed = definition();
        changed["attributes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "level", "type": "integer"}));
        let path = format!("{BASE}/{}", enc(URN));
        assert_eq!(
            app.send(Method::PUT, &path, &auth, Some(changed))
                .await
                .status,
            200
        );
        let doc = app
            .send(Method::GET, "/scim/v2/openapi.json", &auth, None)
            .await;
        assert_eq!(
            doc.body["components"]["schemas"]["Extension_CustomExtensionName"]["properties"]
                ["level"]["type"],
            "integer"
        );
    }
}
