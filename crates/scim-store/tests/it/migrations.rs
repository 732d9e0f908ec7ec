use std::collections::BTreeSet;
use std::path::Path;

use scim_store::testing::{backends, create_user, enable_sync};

fn folders(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = folders("sqlite");
    let postgres = folders("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
    for name in &sqlite {
        for backend in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../migrations")
                    .join(backend)
                    .join(name)
                    .join(file);
                assert!(p.is_file(), "{} missing", p.display());
            }
        }
    }
}

#[test]
fn migrations_go_up_down_and_up_again() {
    let expected = folders("sqlite");
    for db in backends() {
        let store = db.store();
        // TestDb has migrated already: nothing pending.
        assert!(store.migrate().unwrap().is_empty(), "{}", db.backend());
        let reverted = store.revert_all_migrations().unwrap();
        assert_eq!(reverted.len(), expected.len(), "{}", db.backend());
        let applied: BTreeSet<String> = store.migrate().unwrap().into_iter().collect();
        assert_eq!(applied, expected, "{}", db.backend());
        // And the schema works after the round trip.
        enable_sync(store, scim_store::OrgId::DEFAULT);
        create_user(
            store,
            scim_store::OrgId::DEFAULT,
            crate::user("after-roundtrip"),
        )
        .wait()
        .unwrap();
    }
}
