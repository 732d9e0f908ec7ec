//! Event streams: their settings, their cursor into the change log, their
//! delivery state (failures, backoff, last error) and, for push streams,
//! the lease that lets one replica deliver a stream at a time.
//!
//! A stream belongs to one organization and delivers only its changes:
//! it reads the change log's rows of that organization
//! (`change_log_org (org_id, position)`), up to the log's [`horizon`].
//! The cursor is a position of the whole log, so once a stream has read
//! every row of its organization up to the horizon, its cursor moves to
//! the horizon: the other organizations' rows below it are settled and
//! not its own.
//!
//! What a stream is, its stored settings and their checks, and creating,
//! finding, pausing and deleting a stream and authenticating its receiver
//! are in `settings.rs`; the cursor (replays, the status against the log,
//! the next changes to deliver, poll acknowledgements) in `cursor.rs`;
//! push delivery (which streams are due, the lease, the outcome of a
//! delivery) in `delivery.rs`. This module re-exports them. Its tests go
//! through several of them at once (a stream created, then delivered).
//!
//! [`horizon`]: crate::changes::horizon

mod cursor;
mod delivery;
mod settings;

pub use crate::events::streams::cursor::*;
pub use crate::events::streams::delivery::*;
pub use crate::events::streams::settings::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::changes::{horizon, record, Actor, Event, NewChange};
    use crate::db::org::OrgId;
    use crate::error::StoreError;
    use crate::events::keys;
    use crate::testing::backends;

    fn push(url: &str) -> NewStream {
        NewStream {
            name: "app".into(),
            delivery: Delivery::Push,
            endpoint_url: Some(url.into()),
            authorization: Some("Bearer s3cret".into()),
            audience: "https://app.example.com".into(),
            issuer: None,
            event_types: vec![],
            resource_types: vec![],
            mode: Mode::Full,
            alg: Alg::Es256,
        }
    }

    fn add(store: &crate::engine::Store, changes: &[NewChange]) {
        add_at(store, "2026-12-06T10:00:00.000Z", changes);
    }

    /// [`add`], recorded at `at`.
    fn add_at(store: &crate::engine::Store, at: &str, changes: &[NewChange]) {
        store
            .write(|c| record(c, &Actor::cli("t"), at, changes))
            .unwrap();
    }

    #[test]
    fn a_stream_starts_at_the_end_of_the_log_and_keeps_its_secrets() {
        for db in backends() {
            let store = db.store();
            add(
                store,
                &[NewChange::new(Event::UserCreated, "User", Some("u0"))],
            );
            let created = store
                .write(|c| {
                    create_stream(
                        c,
                        OrgId::DEFAULT,
                        &push("https://app.example.com/ev"),
                        "2026-12-06T10:00:00.000Z",
                    )
                })
                .unwrap();
            assert!(created.receiver_token.starts_with(RECEIVER_TOKEN_PREFIX));
            assert!(created.shared_secret.is_none());
            let s = &created.stream;
            assert_eq!(s.cursor, store.read(crate::changes::last_position).unwrap());
            assert!(s.has_authorization);
            assert!(!format!("{s:?}{created:?}").contains("s3cret"));
            // The receiver token authenticates; anything else is NotFound.
            let id = s.id.clone();
            let token = created.receiver_token.clone();
            assert_eq!(
                store
                    .read(|c| authenticate_receiver(c, &id, &token))
                    .unwrap()
                    .id,
                id
            );
            assert!(matches!(
                store.read(|c| authenticate_receiver(c, &id, "scimd_rcv_nope")),
                Err(StoreError::NotFound)
            ));
            let bad = store.write(|c| {
                create_stream(
                    c,
                    OrgId::DEFAULT,
                    &push("ftp://x"),
                    "2026-12-06T10:00:00.000Z",
                )
            });
            assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
            let bad = store.write(|c| {
                create_stream(
                    c,
                    OrgId::DEFAULT,
                    &push("https://user:pw@x/"),
                    "2026-12-06T10:00:00.000Z",
                )
            });
            assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
            store.write(|c| delete_stream(c, &id)).unwrap();
            assert!(matches!(
                store.read(|c| find_stream(c, &id)),
                Err(StoreError::NotFound)
            ));
        }
    }

    /// docs/EVENTS.md: changes a stream has not delivered are only gone
    /// once the retention removed them; the stream then goes on with
    /// what is left, and says so in `oldest_pending_at`.
    #[test]
    fn a_stream_behind_the_retention_goes_on_with_what_is_left() {
        for db in backends() {
            let store = db.store();
            let created = store
                .write(|c| {
                    create_stream(
                        c,
                        OrgId::DEFAULT,
                        &push("https://a.example/"),
                        "2026-01-01T00:00:00.000000Z",
                    )
                })
                .unwrap();
            for (at, id) in [
                ("2026-01-01T00:00:01.000000Z", "old1"),
                ("2026-01-01T00:00:02.000000Z", "old2"),
                ("2026-06-01T00:00:00.000000Z", "new1"),
                ("2026-06-02T00:00:00.000000Z", "new2"),
            ] {
                add_at(
                    store,
                    at,
                    &[NewChange::new(Event::UserPatched, "User", Some(id))],
                );
            }
            let pending = |store: &crate::engine::Store| {
                store
                    .read(|c| {
                        let s = find_stream(c, &created.stream.id)?;
                        let ids: Vec<String> = pending_changes(c, &s, 10)?
                            .0
                            .into_iter()
                            .filter_map(|r| r.resource_id)
                            .collect();
                        Ok((ids, stream_status(c, &s, 3)?))
                    })
                    .unwrap()
            };
            let (ids, status) = pending(store);
            assert_eq!(ids, ["old1", "old2", "new1", "new2"], "{}", db.backend());
            assert_eq!(
                status.oldest_pending_at.as_deref(),
                Some("2026-01-01T00:00:01.000000Z")
            );
            let purged = store
                .write(|c| {
                    crate::changes::purge_changes(
                        c,
                        OrgId::DEFAULT,
                        "2026-03-01T00:00:00.000000Z",
                        100,
                    )
                })
                .unwrap();
            assert_eq!(purged, 2);
            let (ids, after) = pending(store);
            assert_eq!(ids, ["new1", "new2"], "{}", db.backend());
            assert_eq!(
                after.oldest_pending_at.as_deref(),
                Some("2026-06-01T00:00:00.000000Z")
            );
            // The lag counts log positions: the purged ones too.
            assert_eq!(after.lag, status.lag);
        }
    }

    /// PostgreSQL only: SQLite's one writer never runs two claims at once.
    #[test]
    fn replicas_claiming_at_once_take_different_streams_without_waiting() {
        let Some(db) = crate::testing::TestDb::postgres() else {
            return;
        };
        let store = db.store();
        let (now, until) = ("2026-12-06T10:00:00.000Z", "2026-12-06T10:01:00.000Z");
        for url in ["https://a.example/", "https://b.example/"] {
            store
                .write(|c| create_stream(c, OrgId::DEFAULT, &push(url), now))
                .unwrap();
        }
        add(
            store,
            &[NewChange::new(Event::UserCreated, "User", Some("u1"))],
        );
        let (claimed_tx, claimed_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            // Owned here, so that a failed assertion below drops it and
            // ends replica a's wait.
            let release_tx = release_tx;
            // Replica a claims, and holds its transaction (and the row's
            // lock) open.
            let a = s.spawn(move || {
                store.write(|c| {
                    let got = claim_due_stream(c, "replica-a", now, until)?.map(|(s, _)| s.id);
                    claimed_tx.send(got.clone()).unwrap();
                    let _ = release_rx.recv();
                    Ok(got)
                })
            });
            let first = claimed_rx
                .recv()
                .unwrap()
                .expect("replica a claims a stream");
            // Replica b, meanwhile, is not held up by a's locked row (a
            // wait would end in lock_timeout's error) and takes the other.
            let second = store
                .write(|c| {
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query("SET LOCAL lock_timeout = '5s'"),
                        c,
                    )?;
                    claim_due_stream(c, "replica-b", now, until)
                })
                .unwrap()
                .map(|(s, _)| s.id)
                .expect("replica b claims the other stream");
            assert_ne!(first, second, "both replicas took one stream");
            release_tx.send(()).unwrap();
            assert_eq!(a.join().unwrap().unwrap(), Some(first));
        });
        // Both leases hold: nothing is left for a third replica.
        assert_eq!(
            store
                .write(|c| claim_due_stream(c, "replica-c", now, until))
                .unwrap()
                .map(|(s, _)| s.id),
            None
        );
    }

    #[test]
    fn leases_exclude_other_owners_until_they_expire_and_the_cursor_is_fenced() {
        for db in backends() {
            let store = db.store();
            assert_eq!(
                store
                    .read(|c| push_stream_due(c, "2026-12-06T10:00:00.000Z"))
                    .unwrap(),
                PushDue::NoStreams
            );
            let id = store
                .write(|c| {
                    create_stream(
                        c,
                        OrgId::DEFAULT,
                        &push("https://a.example/"),
                        "2026-12-06T10:00:00.000Z",
                    )
                })
                .unwrap()
                .stream
                .id;
            // Nothing to deliver: not due.
            let claim = |owner: &str, now: &str, until: &str| {
                store
                    .write(|c| claim_due_stream(c, owner, now, until))
                    .unwrap()
                    .map(|(s, auth)| (s.id, auth))
            };
            let due = |now: &str| store.read(|c| push_stream_due(c, now)).unwrap() == PushDue::Due;
            assert_eq!(
                store
                    .read(|c| push_stream_due(c, "2026-12-06T10:00:01.000Z"))
                    .unwrap(),
                PushDue::NotDue
            );
            assert_eq!(
                claim("a", "2026-12-06T10:00:01.000Z", "2026-12-06T10:00:31.000Z"),
                None
            );
            add(
                store,
                &[NewChange::new(Event::UserCreated, "User", Some("u1"))],
            );
            assert!(due("2026-12-06T10:00:01.000Z"), "{}", db.backend());
            let (got, auth) =
                claim("a", "2026-12-06T10:00:01.000Z", "2026-12-06T10:00:31.000Z").unwrap();
            assert_eq!(got, id);
            assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
            let taken = claim("b", "2026-12-06T10:00:02.000Z", "2026-12-06T10:00:32.000Z");
            if db.backend() == crate::db::connection::Backend::Postgres {
                assert_eq!(taken, None, "leased to a");
                // After the lease expires, b takes over.
                assert!(
                    claim("b", "2026-12-06T10:00:40.000Z", "2026-12-06T10:01:10.000Z").is_some()
                );
            } else {
                assert!(
                    taken.is_some(),
                    "SQLite: one process; a dead one's lease is not waited out"
                );
            }
            // a's cursor move is refused.
            let last = store.read(crate::changes::last_position).unwrap();
            assert!(!store
                .write(|c| record_delivered(c, &id, "a", last, "2026-12-06T10:00:41.000Z", "x"))
                .unwrap());
            store
                .write(|c| {
                    record_failure(
                        c,
                        &id,
                        "b",
                        "HTTP 500",
                        "2026-12-06T10:00:41.000Z",
                        "2026-12-06T10:00:45.000Z",
                    )
                })
                .unwrap();
            let s = store.read(|c| find_stream(c, &id)).unwrap();
            assert_eq!((s.failures, s.last_error.as_deref()), (1, Some("HTTP 500")));
            // Backoff: not due before next_attempt_at.
            assert!(!due("2026-12-06T10:00:44.000Z"));
            assert!(due("2026-12-06T10:00:45.000Z"));
            assert_eq!(
                claim("b", "2026-12-06T10:00:44.000Z", "2026-12-06T10:01:14.000Z"),
                None
            );
            assert!(claim("b", "2026-12-06T10:00:45.000Z", "2026-12-06T10:01:15.000Z").is_some());
            assert!(store
                .write(|c| record_delivered(c, &id, "b", last, "2026-12-06T10:00:46.000Z", "x"))
                .unwrap());
            let status = store.read(|c| {
                let s = find_stream(c, &id)?;
                stream_status(c, &s, 3)
            });
            assert_eq!(status.unwrap().lag, 0);
        }
    }

    #[test]
    fn poll_acknowledgements_move_the_cursor_over_the_closed_gap_only() {
        for db in backends() {
            let store = db.store();
            let mut new = push("https://a.example/");
            new.delivery = Delivery::Poll;
            new.endpoint_url = None;
            new.authorization = None;
            new.resource_types = vec!["User".into()];
            let created = store
                .write(|c| create_stream(c, OrgId::DEFAULT, &new, "2026-12-06T10:00:00.000Z"))
                .unwrap();
            add(
                store,
                &[
                    NewChange::new(Event::UserCreated, "User", Some("u1")),
                    NewChange::new(Event::GroupCreated, "Group", Some("g1")),
                    NewChange::new(Event::SyncEnabled, "Sync", None),
                    NewChange::new(Event::UserPatched, "User", Some("u1")),
                    NewChange::new(Event::UserDeleted, "User", Some("u1")),
                ],
            );
            let stream = created.stream;
            let (pending, _) = store.read(|c| pending_changes(c, &stream, 10)).unwrap();
            let events: Vec<_> = pending.iter().map(|c| c.event.as_str()).collect();
            assert_eq!(events, ["user.created", "user.patched", "user.deleted"]);
            let p: Vec<i64> = pending.iter().map(|c| c.position).collect();
            // Acknowledging the second first leaves the cursor before the first.
            let until = store.read(horizon).unwrap();
            let cursor = store
                .write(|c| acknowledge(c, &stream, until, &[p[1]]))
                .unwrap();
            assert_eq!(cursor, stream.cursor);
            let stream = store.read(|c| find_stream(c, &stream.id)).unwrap();
            let (pending, _) = store.read(|c| pending_changes(c, &stream, 10)).unwrap();
            assert_eq!(pending.len(), 2, "the acknowledged one is not sent again");
            let cursor = store
                .write(|c| acknowledge(c, &stream, until, &[p[0]]))
                .unwrap();
            assert_eq!(cursor, p[1], "over the group and the admin event too");
            // Replay from the start brings them all back.
            let stream = store
                .write(|c| replay_from_position(c, &stream.id, 0))
                .unwrap();
            let (pending, _) = store.read(|c| pending_changes(c, &stream, 2)).unwrap();
            assert_eq!(pending.len(), 2);
            assert_eq!(pending[0].position, p[0]);
            let stream = store
                .write(|c| replay_from_time(c, &stream.id, "2026-12-06T11:00:00.000Z"))
                .unwrap();
            assert!(store
                .read(|c| pending_changes(c, &stream, 10))
                .unwrap()
                .0
                .is_empty());
        }
    }

    /// A replay from a time moves the cursor to just before the first row
    /// recorded at or after it (a time between two rows, a time equal to
    /// a row's, a time before every row), so that the next read starts
    /// exactly there.
    #[test]
    fn a_replay_from_a_time_resumes_at_the_first_change_at_or_after_it() {
        for db in backends() {
            let store = db.store();
            let user = |id| NewChange::new(Event::UserCreated, "User", Some(id));
            add_at(store, "2026-12-06T10:00:00.000Z", &[user("u1")]);
            add_at(store, "2026-12-06T10:00:01.000Z", &[user("u2"), user("u3")]);
            add_at(store, "2026-12-06T10:00:02.000Z", &[user("u4")]);
            add_at(store, "2026-12-06T10:00:03.000Z", &[user("u5")]);
            let all = store
                .read(|c| crate::changes::read_after(c, 0, 100))
                .unwrap();
            let ids: Vec<_> = all
                .iter()
                .filter_map(|c| c.resource_id.as_deref())
                .collect();
            assert_eq!(ids, ["u1", "u2", "u3", "u4", "u5"], "{}", db.backend());
            let mut new = push("https://a.example/");
            new.delivery = Delivery::Poll;
            new.endpoint_url = None;
            new.authorization = None;
            // Created after the rows: at the end of the log, nothing pending.
            let id = store
                .write(|c| create_stream(c, OrgId::DEFAULT, &new, "2026-12-06T10:00:04.000Z"))
                .unwrap()
                .stream
                .id;
            for (at, from) in [
                // Between the rows of 10:00:01 and 10:00:02.
                ("2026-12-06T10:00:01.500Z", 3),
                // Exactly a row's time: that row is included.
                ("2026-12-06T10:00:01.000Z", 1),
                ("2026-12-06T10:00:03.000Z", 4),
                // Before every row: everything again.
                ("2026-12-06T09:00:00.000Z", 0),
            ] {
                let stream = store.write(|c| replay_from_time(c, &id, at)).unwrap();
                assert_eq!(
                    stream.cursor,
                    all[from].position - 1,
                    "{at} on {}",
                    db.backend()
                );
                let (pending, _) = store.read(|c| pending_changes(c, &stream, 100)).unwrap();
                assert_eq!(pending, all[from..], "{at} on {}", db.backend());
            }
        }
    }

    #[test]
    fn a_selective_stream_reads_past_what_it_skips_over_several_reads() {
        for db in backends() {
            let store = db.store();
            let mut new = push("https://a.example/");
            new.resource_types = vec!["Group".into()];
            let stream = store
                .write(|c| create_stream(c, OrgId::DEFAULT, &new, "2026-12-06T10:00:00.000Z"))
                .unwrap()
                .stream;
            // Three groups among 50 users: each read takes no more rows
            // than the changes still wanted, so reaching the groups takes
            // several reads past the users.
            let mut changes = Vec::new();
            for i in 0..50 {
                let id = format!("u{i}");
                changes.push(NewChange::new(Event::UserCreated, "User", Some(&id)));
                if i % 15 == 14 {
                    let id = format!("g{i}");
                    changes.push(NewChange::new(Event::GroupCreated, "Group", Some(&id)));
                }
            }
            add(store, &changes);
            let (pending, read_to) = store.read(|c| pending_changes(c, &stream, 2)).unwrap();
            let ids: Vec<_> = pending
                .iter()
                .filter_map(|c| c.resource_id.as_deref())
                .collect();
            assert_eq!(ids, ["g14", "g29"], "{}", db.backend());
            assert_eq!(
                read_to, pending[1].position,
                "read up to the last one returned"
            );
            let mut stream = stream;
            stream.cursor = read_to;
            let (pending, read_to) = store.read(|c| pending_changes(c, &stream, 2)).unwrap();
            let ids: Vec<_> = pending
                .iter()
                .filter_map(|c| c.resource_id.as_deref())
                .collect();
            assert_eq!(ids, ["g44"]);
            assert_eq!(
                read_to,
                store.read(crate::changes::last_position).unwrap(),
                "past the users after it, to the end"
            );
        }
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_keeps_publishing_the_old_one() {
        for db in backends() {
            let store = db.store();
            for alg in [Alg::Es256, Alg::EdDsa, Alg::Hs256] {
                let new = NewStream {
                    name: "k".into(),
                    delivery: Delivery::Poll,
                    endpoint_url: None,
                    authorization: None,
                    audience: "aud".into(),
                    issuer: None,
                    event_types: vec![],
                    resource_types: vec![],
                    mode: Mode::Notice,
                    alg,
                };
                let created = store
                    .write(|c| create_stream(c, OrgId::DEFAULT, &new, "2026-12-06T10:00:00.000Z"))
                    .unwrap();
                assert_eq!(created.shared_secret.is_some(), alg == Alg::Hs256);
                let id = created.stream.id;
                let first = store.read(|c| keys::signing_key(c, &id)).unwrap();
                assert!(!first.secret_bytes().unwrap().is_empty());
                let (second, _) = store
                    .write(|c| keys::rotate_key(c, &id, "2026-12-06T11:00:00.000Z"))
                    .unwrap();
                assert_eq!(
                    store.read(|c| keys::signing_key(c, &id)).unwrap().kid,
                    second.kid
                );
                let published = store.read(|c| keys::jwks(c, &id)).unwrap();
                let kids: Vec<&str> = published["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kid"].as_str().unwrap())
                    .collect();
                if alg == Alg::Hs256 {
                    assert!(kids.is_empty(), "a shared secret is never published");
                } else {
                    assert_eq!(kids, [second.kid.as_str(), first.kid.as_str()]);
                }
                assert!(matches!(
                    store.write(|c| keys::remove_key(c, &id, &second.kid)),
                    Err(StoreError::Conflict(_))
                ));
                store
                    .write(|c| keys::remove_key(c, &id, &first.kid))
                    .unwrap();
                assert_eq!(store.read(|c| keys::list_keys(c, &id)).unwrap().len(), 1);
                assert!(!format!("{first:?}").contains(&first.secret));
            }
        }
    }
}
