//! The limits on guessing a credential (an administrator's password, the
//! setup code, an OAuth client secret): each attempt is counted in
//! `login_attempts` before its secret is checked, under PostgreSQL
//! advisory locks that make the check and the count one step (the lock
//! that serialises disabling administrators, in `accounts.rs`, is one of
//! them).

use diesel::prelude::*;

use crate::db::connection::DbConnection;
use crate::db::schema::admin::login_attempts;
use crate::error::StoreError;

/// Limits on guessing one credential (an administrator's password, the
/// setup code, an OAuth client secret). They are built so that nobody
/// else's failures refuse the right password of an account that has
/// signed in from that address before, nor of any account from an address
/// without failures:
///
/// 1. per (credential, address) pair: `max_failures` in `window`, then that
///    pair is refused until the oldest failure leaves the window (other
///    pairs are untouched);
/// 2. per address, for all credentials: `address_max_failures` in
///    `window`, then the address is refused, except for a credential that
///    succeeded from it within [`REMEMBER_SUCCESS_FOR`] (a "known pair").
///    A known pair is made only by the right secret, so an attacker at a
///    shared address (behind a proxy, a NAT) cannot make one, and the
///    colleagues who signed in from there before still get in;
/// 3. per credential, from all addresses: beyond `slow_after` failures in
///    `window`, an address that has failed at that credential waits before
///    each further attempt (1 s, doubling per failure beyond, at most
///    `max_delay`). An address that has not failed at it is never slowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failures allowed per (credential, address) in `window`.
    pub max_failures: i64,
    /// How long a failure counts.
    pub window: time::Duration,
    /// Failures allowed per address (all credentials) in `window` before
    /// the address is refused for every credential but its known pairs;
    /// 0: no such cap.
    pub address_max_failures: i64,
    /// Failures at one credential (all addresses) in `window` beyond which
    /// the addresses that failed at it are slowed down.
    pub slow_after: i64,
    /// The longest such wait.
    pub max_delay: time::Duration,
}

impl Default for AttemptLimits {
    /// Administrators' sign-in: 5 per (account, address) and 100 per
    /// address in 15 minutes; beyond 20 for an account, up to 5 minutes
    /// apart.
    fn default() -> Self {
        AttemptLimits {
            max_failures: 5,
            window: time::Duration::minutes(15),
            address_max_failures: 100,
            slow_after: 20,
            max_delay: time::Duration::minutes(5),
        }
    }
}

/// Which limit a failure locks, when the attempt turns out to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    /// The (credential, address) pair reaches `max_failures`.
    Pair,
    /// The address reaches `address_max_failures`.
    Address,
}

/// An attempt counted (as a failure until it is known to have succeeded)
/// before its secret is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    id: String,
    credential: String,
    address: String,
    locks: Option<Lockout>,
}

impl Attempt {
    /// The limit this attempt's failure locks (to be logged), if any.
    pub fn lockout_if_failed(&self) -> Option<Lockout> {
        self.locks
    }
}

/// How long a failure is kept at most, whatever the window.
pub const FORGET_AFTER: time::Duration = time::Duration::days(1);

/// How long a success keeps its (credential, address) pair past the
/// address cap.
pub const REMEMBER_SUCCESS_FOR: time::Duration = time::Duration::days(90);

/// What [`reserve_attempt`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Check the secret, then finish the attempt.
    Admitted(Attempt),
    /// Too many attempts: try again in this many seconds.
    Refused {
        /// Seconds until an attempt from this address can be admitted.
        retry_after_secs: u64,
    },
}

/// Longest credential or address key stored as it is in `login_attempts`.
const MAX_ATTEMPT_KEY_BYTES: usize = 256;

/// `key` as `login_attempts` stores it: as it is when short and free of
/// NUL, otherwise `sha256:` and its hash. Credentials and addresses come
/// from clients (a username, a client id, an `X-Forwarded-For` value), and
/// PostgreSQL refuses NUL in text and index entries over about 2.7 KB;
/// the hash gives every such key the same answer on both backends.
fn attempt_key(key: &str) -> String {
    if key.len() <= MAX_ATTEMPT_KEY_BYTES && !key.contains('\0') {
        return key.to_owned();
    }
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// PostgreSQL: a transaction-scoped advisory lock on `key`, so that the
/// check-and-count of concurrent attempts on one key (from any replica)
/// runs one at a time. SQLite needs none: its writes are serialised by
/// the one writer connection.
pub(super) fn lock_key(conn: &mut DbConnection, class: &str, key: &str) -> Result<(), StoreError> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(advisory_key(class, key))
            .execute(pg)?;
    }
    Ok(())
}

/// The advisory lock number of (`class`, `key`).
pub(super) fn advisory_key(class: &str, key: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("scimd-attempts\0{class}\0{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_be_bytes(first)
}

fn secs_until(at: time::OffsetDateTime, now: time::OffsetDateTime) -> u64 {
    let d = at - now;
    let whole = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
    whole.max(1).unsigned_abs()
}

fn parse_at(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// Deletes failures older than the window (at least [`FORGET_AFTER`]) and
/// successes older than [`REMEMBER_SUCCESS_FOR`].
fn forget_old_attempts(
    conn: &mut DbConnection,
    now: time::OffsetDateTime,
    window: time::Duration,
) -> Result<(), StoreError> {
    use login_attempts::dsl as a;
    // Every limiter shares the table, each with its own window (at most a
    // day, `scimd` checks): what is older than a day counts for none.
    let failures_before = scim_core::datetime::format(now - window.max(FORGET_AFTER));
    let successes_before = scim_core::datetime::format(now - REMEMBER_SUCCESS_FOR);
    diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::at.lt(&failures_before)),
    )
    .execute(conn)?;
    diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(true))
            .filter(a::at.lt(&successes_before)),
    )
    .execute(conn)?;
    Ok(())
}

/// Counts an attempt at `credential` from `address` at `now`, unless the
/// limits refuse it ([`AttemptLimits`]); run inside
/// [`crate::engine::Store::write`], so the check and the count are one
/// step no concurrent attempt can slip between (on PostgreSQL under
/// advisory locks on the credential and the address, taken in that order
/// by every caller). Old attempts are deleted on the way.
pub fn reserve_attempt(
    conn: &mut DbConnection,
    credential: &str,
    address: &str,
    now: time::OffsetDateTime,
    limits: &AttemptLimits,
) -> Result<Admission, StoreError> {
    use login_attempts::dsl as a;
    let credential = &attempt_key(credential);
    let address = &attempt_key(address);
    lock_key(conn, "credential", credential)?;
    lock_key(conn, "address", address)?;
    forget_old_attempts(conn, now, limits.window)?;
    let since = scim_core::datetime::format(now - limits.window);
    let failures = a::login_attempts
        .filter(a::succeeded.eq(false))
        .filter(a::at.ge(&since));
    // The pair's most recent failures, newest first.
    let pair: Vec<String> = failures
        .filter(a::username_ci.eq(credential))
        .filter(a::address.eq(address))
        .select(a::at)
        .order(a::at.desc())
        .limit(limits.max_failures.max(1))
        .load(conn)?;
    let pair_count = i64::try_from(pair.len()).unwrap_or(i64::MAX);
    if pair_count >= limits.max_failures {
        // A slot frees when the oldest of the last `max_failures` leaves.
        let oldest = pair.last().and_then(|at| parse_at(at)).unwrap_or(now);
        return Ok(Admission::Refused {
            retry_after_secs: secs_until(oldest + limits.window, now),
        });
    }
    let mut locks = (pair_count + 1 == limits.max_failures).then_some(Lockout::Pair);
    if limits.address_max_failures > 0 {
        let known: bool = diesel::select(diesel::dsl::exists(
            a::login_attempts
                .filter(a::succeeded.eq(true))
                .filter(a::username_ci.eq(credential))
                .filter(a::address.eq(address)),
        ))
        .get_result(conn)?;
        if !known {
            let by_address: i64 = failures
                .filter(a::address.eq(address))
                .count()
                .get_result(conn)?;
            if by_address >= limits.address_max_failures {
                // A slot frees when the oldest of the last
                // `address_max_failures` leaves the window.
                let oldest: Option<String> = failures
                    .filter(a::address.eq(address))
                    .select(a::at)
                    .order(a::at.desc())
                    .offset(limits.address_max_failures - 1)
                    .first(conn)
                    .optional()?;
                let oldest = oldest.as_deref().and_then(parse_at).unwrap_or(now);
                return Ok(Admission::Refused {
                    retry_after_secs: secs_until(oldest + limits.window, now),
                });
            }
            if by_address + 1 == limits.address_max_failures {
                locks = Some(Lockout::Address);
            }
        }
    }
    if let Some(last) = pair.first().and_then(|at| parse_at(at)) {
        let by_credential: i64 = failures
            .filter(a::username_ci.eq(credential))
            .count()
            .get_result(conn)?;
        let beyond = by_credential - limits.slow_after;
        if beyond > 0 {
            let delay = time::Duration::seconds(1i64 << (beyond - 1).min(30)).min(limits.max_delay);
            if now < last + delay {
                return Ok(Admission::Refused {
                    retry_after_secs: secs_until(last + delay, now),
                });
            }
        }
    }
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        credential: credential.to_owned(),
        address: address.to_owned(),
        locks,
    };
    insert_attempt(conn, &attempt, now)?;
    Ok(Admission::Admitted(attempt))
}

fn insert_attempt(
    conn: &mut DbConnection,
    attempt: &Attempt,
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::id.eq(&attempt.id),
            login_attempts::username_ci.eq(&attempt.credential),
            login_attempts::address.eq(&attempt.address),
            login_attempts::at.eq(scim_core::datetime::format(now)),
            login_attempts::succeeded.eq(false),
        ))
        .execute(conn)?;
    Ok(())
}

/// The attempt succeeded: the earlier failures of the same (credential,
/// address) stop counting (other addresses' failures stay), and the
/// attempt is kept as the pair's last success, which lets it past the
/// address cap for [`REMEMBER_SUCCESS_FOR`].
pub fn succeed_attempt(conn: &mut DbConnection, attempt: &Attempt) -> Result<(), StoreError> {
    use login_attempts::dsl as a;
    diesel::delete(
        a::login_attempts
            .filter(a::username_ci.eq(&attempt.credential))
            .filter(a::address.eq(&attempt.address))
            .filter(a::id.ne(&attempt.id)),
    )
    .execute(conn)?;
    diesel::update(a::login_attempts.filter(a::id.eq(&attempt.id)))
        .set(a::succeeded.eq(true))
        .execute(conn)?;
    Ok(())
}

/// The attempt was never decided (the request was malformed, or the
/// server too busy to check it): it stops counting.
pub fn abandon_attempt(conn: &mut DbConnection, attempt: &Attempt) -> Result<(), StoreError> {
    diesel::delete(login_attempts::table.filter(login_attempts::id.eq(&attempt.id)))
        .execute(conn)?;
    Ok(())
}

/// Counts a failure at `credential` from `address` found after the
/// credential itself was accepted (an invalid OAuth code or refresh
/// token), without a limit check.
pub fn record_failure(
    conn: &mut DbConnection,
    credential: &str,
    address: &str,
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        credential: attempt_key(credential),
        address: attempt_key(address),
        locks: None,
    };
    insert_attempt(conn, &attempt, now)
}

/// Forgets every failure at `credential`, from every address (an unlock);
/// returns how many. Known pairs stay.
pub fn unlock_credential(conn: &mut DbConnection, credential: &str) -> Result<usize, StoreError> {
    use login_attempts::dsl as a;
    Ok(diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::username_ci.eq(attempt_key(credential))),
    )
    .execute(conn)?)
}

/// Forgets every failure from `address`, at every credential (lifts the
/// address cap and every pair lock of that address); returns how many.
pub fn unlock_address(conn: &mut DbConnection, address: &str) -> Result<usize, StoreError> {
    use login_attempts::dsl as a;
    Ok(diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::address.eq(attempt_key(address))),
    )
    .execute(conn)?)
}

/// The failures at `credential` since `since`, per address: (address,
/// failures), most failures first.
pub fn failures_by_address(
    conn: &mut DbConnection,
    credential: &str,
    since: time::OffsetDateTime,
) -> Result<Vec<(String, i64)>, StoreError> {
    use login_attempts::dsl as a;
    let mut rows: Vec<(String, i64)> = a::login_attempts
        .filter(a::succeeded.eq(false))
        .filter(a::username_ci.eq(attempt_key(credential)))
        .filter(a::at.ge(scim_core::datetime::format(since)))
        .group_by(a::address)
        .select((a::address, diesel::dsl::count_star()))
        .load(conn)?;
    rows.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    /// An attacker at a shared address reaches the address cap: accounts
    /// that signed in from there before still get in, others wait (or are
    /// unlocked), and other addresses are untouched.
    #[test]
    fn the_address_cap_spares_known_pairs_and_unlocks() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
                address_max_failures: 4,
                slow_after: 100,
                max_delay: time::Duration::minutes(1),
            };
            let reserve = |c: &str, a: &str, at: time::OffsetDateTime| {
                store
                    .write(|conn| reserve_attempt(conn, c, a, at, &limits))
                    .unwrap()
            };
            let admitted = |adm: Admission| match adm {
                Admission::Admitted(a) => a,
                other => panic!("refused: {other:?}"),
            };
            // alice signed in from the shared address before.
            let ok = admitted(reserve("alice", "shared", t0));
            store.write(|c| succeed_attempt(c, &ok)).unwrap();
            // The attacker: three failures at admin lock that pair (the
            // third says so), a fourth at x reaches the address cap.
            for i in 0..3 {
                let a = admitted(reserve("admin", "shared", t0 + secs(i)));
                let expected = (i == 2).then_some(Lockout::Pair);
                assert_eq!(a.lockout_if_failed(), expected);
            }
            let a = admitted(reserve("x", "shared", t0 + secs(10)));
            assert_eq!(a.lockout_if_failed(), Some(Lockout::Address));
            // bob never signed in from there: refused until the oldest of
            // the four failures leaves the window.
            assert_eq!(
                reserve("bob", "shared", t0 + secs(60)),
                Admission::Refused {
                    retry_after_secs: 840
                }
            );
            // alice is a known pair: admitted, and her success stays known.
            let ok = admitted(reserve("alice", "shared", t0 + secs(60)));
            store.write(|c| succeed_attempt(c, &ok)).unwrap();
            admitted(reserve("alice", "shared", t0 + secs(61)));
            // bob from his own address is untouched.
            admitted(reserve("bob", "home", t0 + secs(60)));
            assert_eq!(
                store.read(|c| failures_by_address(c, "admin", t0)).unwrap(),
                vec![("shared".to_owned(), 3)]
            );
            // Unlocking the account lifts its pair lock (and its share of
            // the cap); unlocking the address lifts the cap.
            assert_eq!(store.write(|c| unlock_credential(c, "admin")).unwrap(), 3);
            assert!(store
                .read(|c| failures_by_address(c, "admin", t0))
                .unwrap()
                .is_empty());
            admitted(reserve("bob", "shared", t0 + secs(62)));
            admitted(reserve("y", "shared", t0 + secs(63)));
            assert!(matches!(
                reserve("bob", "shared", t0 + secs(64)),
                Admission::Refused { .. }
            ));
            assert!(store.write(|c| unlock_address(c, "shared")).unwrap() >= 4);
            admitted(reserve("bob", "shared", t0 + secs(65)));
            // A success is remembered for REMEMBER_SUCCESS_FOR, no longer.
            let later = t0 + REMEMBER_SUCCESS_FOR + time::Duration::days(1);
            for i in 0..4 {
                admitted(reserve(&format!("z{i}"), "shared", later));
            }
            assert!(matches!(
                reserve("alice", "shared", later),
                Admission::Refused { .. }
            ));
        }
    }

    #[test]
    fn attempts_are_limited_per_credential_and_address() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
                address_max_failures: 0,
                slow_after: 100,
                max_delay: time::Duration::minutes(1),
            };
            let reserve = |c: &str, a: &str, at: time::OffsetDateTime, l: &AttemptLimits| {
                store
                    .write(|conn| reserve_attempt(conn, c, a, at, l))
                    .unwrap()
            };
            let admitted = |adm: Admission| match adm {
                Admission::Admitted(a) => a,
                other => panic!("refused: {other:?}"),
            };
            for i in 0..3 {
                admitted(reserve("alice", "10.0.0.1", t0 + secs(i), &limits));
            }
            // The pair is refused until its oldest attempt leaves the window…
            assert_eq!(
                reserve("alice", "10.0.0.1", t0 + secs(60), &limits),
                Admission::Refused {
                    retry_after_secs: 840
                }
            );
            // …but not the credential from another address, nor the address
            // for another credential.
            let other = admitted(reserve("alice", "10.0.0.2", t0 + secs(60), &limits));
            admitted(reserve("bob", "10.0.0.1", t0 + secs(60), &limits));
            // A success clears its own pair only.
            store.write(|c| succeed_attempt(c, &other)).unwrap();
            for i in 0..3 {
                admitted(reserve("alice", "10.0.0.2", t0 + secs(61 + i), &limits));
            }
            assert!(matches!(
                reserve("alice", "10.0.0.2", t0 + secs(70), &limits),
                Admission::Refused { .. }
            ));
            // An abandoned attempt does not count.
            let carol = admitted(reserve("carol", "10.0.0.3", t0, &limits));
            store.write(|c| abandon_attempt(c, &carol)).unwrap();
            for _ in 0..3 {
                admitted(reserve("carol", "10.0.0.3", t0, &limits));
            }
            // Once the window has passed, the pair is admitted again.
            let later = t0 + time::Duration::minutes(15) + secs(1);
            admitted(reserve("alice", "10.0.0.1", later, &limits));
            // Failures found after the credential was accepted count too.
            store
                .write(|c| record_failure(c, "dave", "10.0.0.4", later))
                .unwrap();
            for _ in 0..2 {
                admitted(reserve("dave", "10.0.0.4", later, &limits));
            }
            assert!(matches!(
                reserve("dave", "10.0.0.4", later, &limits),
                Admission::Refused { .. }
            ));
        }
    }

    /// Concurrent attempts on one pair (threads released together, each
    /// with its own connection on PostgreSQL) never exceed the limit.
    #[test]
    fn concurrent_reservations_cannot_pass_the_limit() {
        for db in backends() {
            let store = db.store();
            let limits = AttemptLimits {
                max_failures: 3,
                ..AttemptLimits::default()
            };
            let now = time::OffsetDateTime::now_utc();
            let barrier = std::sync::Barrier::new(16);
            let admitted = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..16 {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..4 {
                            let got = store
                                .write(|c| reserve_attempt(c, "root", "10.9.9.9", now, &limits))
                                .unwrap();
                            if matches!(got, Admission::Admitted(_)) {
                                admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                    });
                }
            });
            assert_eq!(admitted.into_inner(), 3);
        }
    }

    /// Many addresses failing at one credential slow down the addresses
    /// that failed, exponentially, and never a clean address.
    #[test]
    fn a_credential_under_attack_slows_dirty_addresses_only() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 5,
                window: time::Duration::minutes(5),
                address_max_failures: 0,
                slow_after: 2,
                max_delay: secs(4),
            };
            let reserve = |a: &str, at: time::OffsetDateTime| {
                store
                    .write(|conn| reserve_attempt(conn, "client", a, at, &limits))
                    .unwrap()
            };
            // Ten addresses, one failure each: each was clean, so admitted.
            for i in 0..10 {
                assert!(matches!(
                    reserve(&format!("a{i}"), t0),
                    Admission::Admitted(_)
                ));
            }
            // A failed address must now wait: 10 attempts is 8 beyond 2,
            // so 2^7 s, capped at 4 s.
            assert_eq!(
                reserve("a0", t0 + secs(1)),
                Admission::Refused {
                    retry_after_secs: 3
                }
            );
            // The real client, from its own clean address, gets in at once.
            let Admission::Admitted(real) = reserve("entra", t0 + secs(1)) else {
                panic!("a clean address was refused")
            };
            store.write(|c| succeed_attempt(c, &real)).unwrap();
            // The failed address is slowed, not locked out.
            assert!(matches!(
                reserve("a0", t0 + secs(4)),
                Admission::Admitted(_)
            ));
            assert_eq!(
                reserve("a0", t0 + secs(5)),
                Admission::Refused {
                    retry_after_secs: 3
                }
            );
            // An address that has not failed at the credential is not
            // slowed by failures elsewhere.
            assert!(matches!(
                store
                    .write(|conn| reserve_attempt(conn, "other", "a0", t0 + secs(5), &limits))
                    .unwrap(),
                Admission::Admitted(_)
            ));
        }
    }
}
