//! Administrators of scimd: accounts (Argon2id hashes, computed by the
//! caller), console sessions, admin API tokens, first-run setup codes and
//! the attempts of sign-ins, setup codes and OAuth client secrets, for
//! their limits.
//!
//! Every secret (session id, API token, setup code) is random, shown once,
//! and stored only as its SHA-256: a database leak yields nothing usable.
//! Admin API tokens live in their own table, so a SCIM token never opens
//! the admin API and an admin token never opens the SCIM API.
//!
//! The accounts, with what disabling, deleting or a new password does to
//! their sessions and tokens, are in `accounts.rs`; console sessions in
//! `sessions.rs`; admin API tokens in `api_tokens.rs`; first-run setup
//! codes in `setup.rs`; the limits on guessing a credential in
//! `attempts.rs`. This module re-exports them. Its tests go through
//! several of them at once (an account with its sessions and tokens).

mod accounts;
mod api_tokens;
mod attempts;
mod sessions;
mod setup;

pub use crate::admin::admins::accounts::*;
pub use crate::admin::admins::api_tokens::*;
pub use crate::admin::admins::attempts::*;
pub use crate::admin::admins::sessions::*;
pub use crate::admin::admins::setup::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::db::connection::DbConnection;
    use crate::error::StoreError;
    use crate::testing::backends;
    use diesel::prelude::*;

    const FAR: &str = "2999-01-01T00:00:00.000000Z";
    const PAST: &str = "2000-01-01T00:00:00.000000Z";

    #[test]
    fn admins_are_unique_case_insensitively() {
        for db in backends() {
            let store = db.store();
            assert_eq!(store.read(count_admins).unwrap(), 0);
            let a = store.write(|c| insert_admin(c, "Alice", "h1")).unwrap();
            let err = store.write(|c| insert_admin(c, "alice", "h2")).unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            let (found, hash) = store
                .read(|c| find_admin_credentials(c, "ALICE"))
                .unwrap()
                .unwrap();
            assert_eq!(found, a);
            assert_eq!(hash, "h1");
            assert_eq!(
                store.read(|c| find_admin_credentials(c, "bob")).unwrap(),
                None
            );
            store
                .write(|c| record_admin_login(c, &a.id, "2026-01-01T00:00:00.000000Z"))
                .unwrap();
            let all = store.read(list_admins).unwrap();
            assert_eq!(all.len(), 1);
            assert!(all[0].last_login_at.is_some());
        }
    }

    #[test]
    fn sessions_expire_and_end() {
        for db in backends() {
            let store = db.store();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let (info, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            let now = scim_core::datetime::now();
            let found = store
                .read(|c| find_session(c, &sid, &now))
                .unwrap()
                .unwrap();
            assert_eq!(found.admin.id, a.id);
            assert_eq!(found.csrf_token, info.csrf_token);
            assert_eq!(store.read(|c| find_session(c, "nope", &now)).unwrap(), None);
            // After expiry it is not found and is purged.
            assert_eq!(store.read(|c| find_session(c, &sid, FAR)).unwrap(), None);
            let (_, old) = store.write(|c| create_session(c, &a, PAST)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &old, &now)).unwrap(), None);
            assert_eq!(store.write(|c| purge_expired_sessions(c, &now)).unwrap(), 1);
            store.write(|c| delete_session(c, &sid)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
        }
    }

    #[test]
    fn admin_tokens_authenticate_until_revoked_or_expired() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let (info, secret) = store
                .write(|c| create_admin_token(c, "ci", None, "admin:a"))
                .unwrap();
            assert!(secret.starts_with(ADMIN_SECRET_PREFIX));
            assert!(secret.starts_with(&info.prefix));
            let got = store
                .write(|c| authenticate_admin_token(c, &secret, &now))
                .unwrap()
                .unwrap();
            assert_eq!(got.id, info.id);
            // A SCIM token is not an admin token.
            let (_, scim) = store
                .write(|c| crate::admin::tokens::create_token(c, "scim", None))
                .unwrap();
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &scim, &now))
                    .unwrap(),
                None
            );
            // …and an admin token is not a SCIM token.
            assert_eq!(
                store
                    .read(|c| crate::admin::tokens::authenticate_token(c, &secret, &now))
                    .unwrap(),
                None
            );
            let listed = store.read(list_admin_tokens).unwrap();
            assert_eq!(listed.len(), 1);
            assert!(listed[0].last_used_at.is_some());
            store.write(|c| revoke_admin_token(c, &info.id)).unwrap();
            store.write(|c| revoke_admin_token(c, &info.id)).unwrap();
            assert!(matches!(
                store.write(|c| revoke_admin_token(c, "nope")).unwrap_err(),
                StoreError::NotFound
            ));
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &secret, &now))
                    .unwrap(),
                None
            );
            let (_, expired) = store
                .write(|c| create_admin_token(c, "old", Some(PAST), "cli:x"))
                .unwrap();
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &expired, &now))
                    .unwrap(),
                None
            );
            assert!(store
                .write(|c| create_admin_token(c, "  ", None, "cli:x"))
                .is_err());
        }
    }

    #[test]
    fn setup_codes_create_only_the_first_admin() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let code = store.write(|c| create_setup_code(c, FAR)).unwrap();
            let expired = store.write(|c| create_setup_code(c, PAST)).unwrap();
            assert_eq!(
                store
                    .write(|c| create_first_admin(c, &expired, "a", "h", &now))
                    .unwrap(),
                None
            );
            assert_eq!(
                store
                    .write(|c| create_first_admin(c, "wrong", "a", "h", &now))
                    .unwrap(),
                None
            );
            let admin = store
                .write(|c| create_first_admin(c, &code, "root", "h", &now))
                .unwrap()
                .unwrap();
            assert_eq!(admin.username, "root");
            // Once an admin exists, setup is over, whatever the code.
            let err = store
                .write(|c| create_first_admin(c, &code, "x", "h", &now))
                .unwrap_err();
            assert!(matches!(err, StoreError::PreconditionFailed));
        }
    }

    #[test]
    fn admins_are_disabled_deleted_and_reset_but_never_the_last() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let b = store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let (_, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            let (_, token) = store
                .write(|c| create_admin_token(c, "a's", None, "admin:a"))
                .unwrap();
            let (_, other_token) = store
                .write(|c| create_admin_token(c, "b's", None, "admin:b"))
                .unwrap();
            // Disabling ends the sessions and revokes the tokens it created.
            let disabled = store.write(|c| disable_admin(c, &a.id, &now)).unwrap();
            assert_eq!(disabled.disabled_at.as_deref(), Some(now.as_str()));
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &token, &now))
                    .unwrap(),
                None
            );
            assert!(store
                .write(|c| authenticate_admin_token(c, &other_token, &now))
                .unwrap()
                .is_some());
            // A session of a disabled administrator is never accepted, even
            // one opened after it was disabled.
            let (_, late) = store.write(|c| create_session(c, &disabled, FAR)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &late, &now)).unwrap(), None);
            // Again is a no-op.
            store.write(|c| disable_admin(c, &a.id, &now)).unwrap();
            // b is the last enabled administrator: neither disabled nor deleted.
            let err = store.write(|c| disable_admin(c, &b.id, &now)).unwrap_err();
            assert!(
                matches!(&err, StoreError::Conflict(m) if m.contains("last enabled administrator")),
                "{err}"
            );
            let err = store.write(|c| delete_admin(c, &b.id, &now)).unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            // Enabled again, a can sign in; then b can go.
            store.write(|c| enable_admin(c, &a.id)).unwrap();
            let (_, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            assert!(store
                .read(|c| find_session(c, &sid, &now))
                .unwrap()
                .is_some());
            store.write(|c| delete_admin(c, &b.id, &now)).unwrap();
            assert_eq!(store.read(|c| find_admin(c, &b.id)).unwrap(), None);
            assert!(store
                .write(|c| authenticate_admin_token(c, &other_token, &now))
                .unwrap()
                .is_none());
            // A disabled administrator can always be deleted.
            let d = store.write(|c| insert_admin(c, "d", "h")).unwrap();
            store.write(|c| disable_admin(c, &d.id, &now)).unwrap();
            store.write(|c| delete_admin(c, &d.id, &now)).unwrap();
            // A new password ends every session but the one kept.
            let (_, keep) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            store
                .write(|c| set_admin_password(c, &a.id, "h2", Some(&keep)))
                .unwrap();
            assert!(store
                .read(|c| find_session(c, &keep, &now))
                .unwrap()
                .is_some());
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
            assert_eq!(
                store
                    .read(|c| find_admin_credentials(c, "a"))
                    .unwrap()
                    .unwrap()
                    .1,
                "h2"
            );
            for err in [
                store.write(|c| disable_admin(c, "nope", &now)).unwrap_err(),
                store.write(|c| enable_admin(c, "nope")).unwrap_err(),
                store
                    .write(|c| delete_admin(c, "nope\0", &now))
                    .unwrap_err(),
                store
                    .write(|c| set_admin_password(c, "nope", "h", None))
                    .unwrap_err(),
            ] {
                assert!(matches!(err, StoreError::NotFound), "{err}");
            }
            assert_eq!(store.read(list_admins).unwrap().len(), 1);
        }
    }

    /// Two administrators disabling each other at once (threads released
    /// together, each with its own connection on PostgreSQL): one wins,
    /// and an enabled administrator remains.
    #[test]
    fn admins_disabling_each_other_at_once_leave_one_enabled() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let b = store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = [&a.id, &b.id]
                    .into_iter()
                    .map(|id| {
                        let (barrier, now) = (&barrier, &now);
                        s.spawn(move || {
                            barrier.wait();
                            store.write(|c| disable_admin(c, id, now)).is_ok()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
            let enabled = store
                .read(list_admins)
                .unwrap()
                .into_iter()
                .filter(|x| x.disabled_at.is_none())
                .count();
            assert_eq!(enabled, 1);
        }
    }

    /// PostgreSQL: disabling holds the administrators' lock until its
    /// transaction ends, so a concurrent disable (any replica) waits and
    /// then sees the result: another connection cannot take the lock
    /// meanwhile.
    #[test]
    fn disabling_holds_the_administrators_lock_until_commit() {
        #[derive(diesel::QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            taken: bool,
        }
        for db in backends() {
            let store = db.store();
            if !matches!(db.backend(), crate::db::connection::Backend::Postgres) {
                continue;
            }
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let try_lock = |c: &mut DbConnection| {
                let DbConnection::Postgres(pg) = c else {
                    unreachable!()
                };
                let row: Taken = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS taken")
                    .bind::<diesel::sql_types::BigInt, _>(advisory_key("admins", "enabled"))
                    .get_result(pg)?;
                Ok(row.taken)
            };
            store
                .write(|c| {
                    disable_admin(c, &a.id, &now)?;
                    assert!(!store.read(try_lock)?, "the lock is free while disabling");
                    Ok(())
                })
                .unwrap();
            assert!(store.read(try_lock).unwrap());
        }
    }
}
