//! `scimd schema …` through the real binary, on SQLite and PostgreSQL:
//! defining a custom schema extension from a file, listing it, changing
//! it, a bad definition or change refused with what to fix, and removals
//! that need the confirmation.

use std::process::Output;

use super::{databases, run, scimd};

const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn schema(url: &str, args: &[&str]) -> Output {
    run(scimd(url).arg("schema").args(args))
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn schema_commands_define_list_and_remove_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string"}}, {{"name": "costCenter", "type": "string"}}]}}"#
        ),
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        format!(r#"{{"id": "{URN}", "attributes": [{{"name": "x", "type": "text"}}]}}"#),
    )
    .unwrap();
    let changed = dir.path().join("changed.json");
    std::fs::write(
        &changed,
        format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string", "uniqueness": "server"}}, {{"name": "costCenter", "type": "string"}}, {{"name": "level", "type": "integer"}}]}}"#
        ),
    )
    .unwrap();
    let dropped = dir.path().join("dropped.json");
    std::fs::write(
        &dropped,
        format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string"}}]}}"#
        ),
    )
    .unwrap();
    for (url, _db) in databases(dir.path()) {
        let err = stderr(&schema(&url, &["add", bad.to_str().unwrap()]));
        assert!(err.contains("attributes[0].type must be one of"), "{err}");
        let out = stdout(&schema(&url, &["add", good.to_str().unwrap()]));
        assert!(
            out.contains(&format!("defined {URN} (2 attributes)")),
            "{out}"
        );
        let err = stderr(&schema(&url, &["add", good.to_str().unwrap()]));
        assert!(err.contains("already exists"), "{err}");
        let listed: serde_json::Value =
            serde_json::from_str(&stdout(&schema(&url, &["list"]))).unwrap();
        assert_eq!(listed[0]["id"], URN);
        let out = stdout(&schema(&url, &["update", changed.to_str().unwrap()]));
        assert!(
            out.contains(&format!(
                "changed {URN}: attributes added: level; changed: CustomAttribute"
            )),
            "{out}"
        );
        let err = stderr(&schema(&url, &["update", dropped.to_str().unwrap()]));
        assert!(err.contains("remove-attribute"), "{err}");
        let listed: serde_json::Value =
            serde_json::from_str(&stdout(&schema(&url, &["list"]))).unwrap();
        assert_eq!(listed[0]["attributes"][0]["uniqueness"], "server");
        assert_eq!(listed[0]["attributes"][2]["name"], "level");
        let attr = format!("{URN}:costCenter");
        let err = stderr(&schema(&url, &["remove-attribute", URN, "costCenter"]));
        assert!(err.contains("confirm"), "{err}");
        let out = stdout(&schema(
            &url,
            &["remove-attribute", URN, "costCenter", "--confirm", &attr],
        ));
        assert!(out.contains(&format!("removed {attr}")), "{out}");
        let err = stderr(&schema(&url, &["remove", URN, "--confirm", "yes"]));
        assert!(err.contains("confirm"), "{err}");
        let out = stdout(&schema(&url, &["remove", URN, "--confirm", URN]));
        assert!(out.contains(&format!("removed {URN}")), "{out}");
        assert_eq!(stdout(&schema(&url, &["list"])).trim(), "[]");
    }
}
