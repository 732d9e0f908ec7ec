use scim_store::testing::backends;
use scim_store::{
    authenticate_token, create_token, hash_secret, list_tokens, revoke_token, touch_token,
    StoreError,
};

#[test]
fn create_authenticate_touch_revoke() {
    for db in backends() {
        let store = db.store();
        let (info, secret) = store.write(|c| create_token(c, "entra", None)).unwrap();
        assert!(secret.starts_with("scimd_"));
        assert_eq!(secret.len(), 6 + 43);
        assert!(secret[6..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(info.prefix, &secret[..12]);
        assert_eq!(info.name, "entra");

        let now = scim_core::datetime::now();
        let found = store
            .read(|c| authenticate_token(c, &secret, &now))
            .unwrap();
        assert_eq!(
            found.as_ref().map(|t| t.id.as_str()),
            Some(info.id.as_str())
        );
        // Wrong secrets, including the stored hash itself, do not authenticate.
        for wrong in [&secret[..secret.len() - 1], "", &hash_secret(&secret)] {
            assert!(store
                .read(|c| authenticate_token(c, wrong, &now))
                .unwrap()
                .is_none());
        }

        store.write(|c| touch_token(c, &info.id, &now)).unwrap();
        let listed = store
            .read(|c| list_tokens(c, scim_store::OrgId::DEFAULT))
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used_at.as_deref(), Some(now.as_str()));
        assert!(matches!(
            store.write(|c| touch_token(c, "missing", &now)),
            Err(StoreError::NotFound)
        ));

        store
            .write(|c| revoke_token(c, scim_store::OrgId::DEFAULT, &info.id))
            .unwrap();
        // Idempotent.
        store
            .write(|c| revoke_token(c, scim_store::OrgId::DEFAULT, &info.id))
            .unwrap();
        assert!(store
            .read(|c| authenticate_token(c, &secret, &now))
            .unwrap()
            .is_none());
        assert!(store
            .read(|c| list_tokens(c, scim_store::OrgId::DEFAULT))
            .unwrap()[0]
            .revoked_at
            .is_some());
        assert!(matches!(
            store.write(|c| revoke_token(
                c,
                scim_store::OrgId::DEFAULT,
                "00000000-0000-0000-0000-000000000000"
            )),
            Err(StoreError::NotFound)
        ));
    }
}

#[test]
fn secrets_are_unique_and_only_hashes_are_stored() {
    for db in backends() {
        let store = db.store();
        let (_, a) = store.write(|c| create_token(c, "a", None)).unwrap();
        let (_, b) = store.write(|c| create_token(c, "b", None)).unwrap();
        assert_ne!(a, b);
        let listed = format!(
            "{:?}",
            store
                .read(|c| list_tokens(c, scim_store::OrgId::DEFAULT))
                .unwrap()
        );
        assert!(!listed.contains(&a[12..]) && !listed.contains(&b[12..]));
    }
}

#[test]
fn expired_tokens_are_rejected() {
    for db in backends() {
        let store = db.store();
        let (info, secret) = store
            .write(|c| create_token(c, "okta", Some("2030-01-01T00:00:00+01:00".into())))
            .unwrap();
        // Normalised to the fixed UTC form.
        assert_eq!(
            info.expires_at.as_deref(),
            Some("2029-12-31T23:00:00.000000Z")
        );
        let before = "2029-12-31T22:59:59.999999Z";
        let at = "2029-12-31T23:00:00.000000Z";
        assert!(store
            .read(|c| authenticate_token(c, &secret, before))
            .unwrap()
            .is_some());
        assert!(store
            .read(|c| authenticate_token(c, &secret, at))
            .unwrap()
            .is_none());

        assert!(matches!(
            store.write(|c| create_token(c, "x", Some("next week".into()))),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.write(|c| create_token(c, "  ", None)),
            Err(StoreError::Invalid(_))
        ));
    }
}
