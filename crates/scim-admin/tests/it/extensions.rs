//! Custom schema extensions through the admin API: defined, listed, a bad
//! definition refused with what to fix, removal (of an attribute, of the
//! extension) refused without the confirmation and, with it, taking the
//! values users hold, recorded in the change log.

use actix_web::http::Method;
use scim_core::resource::normalize;
use scim_store::testing::backends;
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
fn user_with_values(app: &TestApp, name: &str) -> String {
    let store = app.db.store();
    let rt = store.user_schemas_blocking().unwrap().user_type;
    let n = normalize(
        rt,
        &json!({"userName": name, URN: {"CustomAttribute": "x", "costCenter": "CC-100"}}),
    )
    .unwrap();
    store
        .write(|c| scim_store::insert_user(c, scim_store::OrgId::DEFAULT, &n.attrs, None))
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

        let alice = user_with_values(&app, "alice");
        let bob = user_with_values(&app, "bob");
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
