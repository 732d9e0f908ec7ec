//! Password hashing and verification (Argon2id, PHC strings), on one
//! bounded gate shared by the SCIM API and the admin side.
//!
//! One Argon2id run with the default parameters (RFC 9106 §4's second
//! recommended option, m = 19 MiB) allocates its 19 MiB for as long as it
//! runs, and keeps a CPU core busy. Unbounded, N parallel sign-ins or
//! password-bearing SCIM writes cost N × 19 MiB and starve every other
//! request. [`PasswordHasher`] runs at most `max_concurrent` of them at a
//! time on the blocking pool; the others wait, asynchronously (holding
//! neither a thread nor an Argon2 buffer, only their request), for at most
//! `queue_timeout`, and then fail with [`PasswordError::Busy`] (503 with
//! `Retry-After`).
//!
//! It lives here, not in `scim-core` (which has no tokio), because waiting
//! without a thread needs an async semaphore and a timer, and this crate
//! already runs the process's other bounded resources (pools, the writer,
//! the read queue) on tokio.

#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Every slot stayed busy for the whole queue timeout (503).
    #[error("too many passwords are being checked at once; retry in {retry_after_secs} seconds")]
    Busy {
        /// What to send in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Argon2 failed or its task panicked (500, logged).
    #[error("password hashing failed")]
    Failed,
}

/// The bounded Argon2id gate. Cheap to clone; build one per process and
/// share it, or the bound is per clone's origin.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    queue_timeout: Duration,
    /// What tests count; not compiled into scimd.
    #[cfg(any(test, feature = "testing"))]
    counted: Counted,
}

/// Argon2 runs started, running now, and the most seen running at once.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
struct Counted {
    started: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

/// A hash of a password nobody has, verified when the account does not
/// exist so that response times do not tell which accounts exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2NpbWQtZHVtbXktc2FsdA$ZkL1y7dO3gA1Y9t4p1bd6pCR2WZ2a3cwm0bOqQ3Fz1A";

impl Default for PasswordHasher {
    /// One run per available core, and a 5 s queue.
    fn default() -> Self {
        PasswordHasher::new(default_concurrency(), Duration::from_secs(5))
    }
}

/// One per core (`std::thread::available_parallelism`), at least 1.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl PasswordHasher {
    /// A gate running at most `max_concurrent` (at least 1) Argon2 runs at
    /// once, whose callers wait at most `queue_timeout` for a slot.
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Self {
        let max_concurrent = max_concurrent.max(1);
        PasswordHasher {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_concurrent)),
                max_concurrent,
                queue_timeout,
                #[cfg(any(test, feature = "testing"))]
                counted: Counted::default(),
            }),
        }
    }

    /// The bound.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent
    }

    /// Argon2id of `password` with a random salt, as a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches the PHC string `hash`. With `None` (no
    /// such account) a dummy hash is checked, so that the answer takes as
    /// long either way; it is then always `false`.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move || {
            let known = hash.is_some();
            let phc = hash.as_deref().unwrap_or(DUMMY_HASH);
            verify_now(&password, phc) && known
        })
        .await
    }

    /// Runs `f` on the blocking pool once a slot is free: the slot is
    /// awaited (no thread held) for at most the queue timeout, and held
    /// until `f` returns.
    async fn run<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permits = self.inner.permits.clone();
        let permit =
            match tokio::time::timeout(self.inner.queue_timeout, permits.acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                // The semaphore is never closed; treat it like a timeout.
                Ok(Err(_)) | Err(_) => {
                    return Err(PasswordError::Busy {
                        retry_after_secs: self.inner.queue_timeout.as_secs().max(1),
                    })
                }
            };
        #[cfg(any(test, feature = "testing"))]
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            #[cfg(any(test, feature = "testing"))]
            let counted = {
                let c = &inner.counted;
                c.started.fetch_add(1, Ordering::SeqCst);
                let now = c.running.fetch_add(1, Ordering::SeqCst) + 1;
                c.max_running.fetch_max(now, Ordering::SeqCst);
                c
            };
            let out = f();
            #[cfg(any(test, feature = "testing"))]
            counted.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            PasswordError::Failed
        })
    }

    /// Runs `f` in a slot of the gate, as a password would be: tests fill
    /// the gate with closures they release when they choose.
    #[cfg(feature = "testing")]
    pub async fn run_in_slot<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run(f).await
    }

    /// How many Argon2 runs have started (tests count checked passwords).
    #[cfg(any(test, feature = "testing"))]
    pub fn runs_started(&self) -> usize {
        self.inner.counted.started.load(Ordering::SeqCst)
    }

    /// The most runs seen at once.
    #[cfg(any(test, feature = "testing"))]
    pub fn max_running(&self) -> usize {
        self.inner.counted.max_running.load(Ordering::SeqCst)
    }
}

/// Argon2id of `password` on the calling thread (inside the gate).
fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "argon2 hashing failed");
            PasswordError::Failed
        })
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash_now("correct horse").unwrap();
        let b = hash_now("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b);
        assert!(!a.contains("correct horse"));
        assert!(verify_now("correct horse", &a));
        assert!(!verify_now("wrong horse", &a));
        assert!(!verify_now("x", "not a phc string"));
        // The dummy hash parses, so an unknown account costs a real check.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_answers_through_the_gate() {
        let gate = PasswordHasher::new(2, Duration::from_secs(5));
        let hash = gate.hash("a long password".into()).await.unwrap();
        assert!(gate
            .verify("a long password".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!gate.verify("nope".into(), Some(hash)).await.unwrap());
        assert!(!gate.verify("a long password".into(), None).await.unwrap());
        assert_eq!(gate.runs_started(), 4);
    }

    /// The gate never runs more than its bound, and a caller that finds
    /// every slot taken past its (zero) queue timeout gets `Busy`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_are_bounded_and_the_queue_has_a_deadline() {
        let gate = PasswordHasher::new(2, Duration::ZERO);
        let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
        let mut releases = Vec::new();
        let mut holders = Vec::new();
        for _ in 0..2 {
            let (release_tx, release) = std::sync::mpsc::channel::<()>();
            releases.push(release_tx);
            let (gate, entered_tx) = (gate.clone(), entered_tx.clone());
            holders.push(tokio::spawn(async move {
                gate.run(move || {
                    entered_tx.send(()).unwrap();
                    release.recv().unwrap();
                })
                .await
            }));
        }
        // Both slots are held now.
        entered.recv().await.unwrap();
        entered.recv().await.unwrap();
        let err = gate.hash("a long password".into()).await.unwrap_err();
        assert_eq!(
            err,
            PasswordError::Busy {
                retry_after_secs: 1
            }
        );
        assert_eq!(gate.runs_started(), 2);
        for r in releases {
            r.send(()).unwrap();
        }
        for h in holders {
            h.await.unwrap().unwrap();
        }
        // Free again: a zero deadline still takes a free slot.
        gate.hash("a long password".into()).await.unwrap();
        assert_eq!(gate.max_running(), 2);

        // Many callers at once never exceed the bound.
        let gate = PasswordHasher::new(2, Duration::from_secs(600));
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.hash(format!("password {i}")).await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        assert_eq!(gate.runs_started(), 8);
        assert!(gate.max_running() <= 2, "{}", gate.max_running());
    }
}
