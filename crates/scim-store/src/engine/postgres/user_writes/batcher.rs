//! The queue of User creates and edits in front of the batcher threads,
//! and a batcher's turn: the writes waiting, grouped into batches.

use std::collections::HashSet;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::changes::Actor;
use crate::db::connection::ConnectionManager;
use crate::db::org::OrgId;
use crate::engine::edit::{Edit, EditBy, Found};
use crate::engine::postgres::user_writes::batch::run;
use crate::engine::postgres::user_writes::jobs::{EditJob, EditTask, InsertJob, Job};
use crate::engine::queue::{Behind, Workers};
use crate::error::StoreError;
use crate::scim::users::UserRecord;

type Pool = r2d2::Pool<ConnectionManager>;

/// The most writes one batch takes. Under load a batch holds what queued
/// while the previous one ran (with 16 clients, up to 16); the cap only
/// bounds the locks one transaction holds.
pub(crate) const MAX_BATCH: usize = 64;

/// Batcher threads. Two let one batch build while the other waits for its
/// COMMIT to reach the disk; more only split the queue into smaller
/// batches (docs/BENCHMARKS.md).
pub(crate) const BATCHERS: usize = 2;

/// The queue in front of the batcher threads. Dropping it closes the
/// queue: the batchers finish what was queued and exit (not joined).
pub(crate) struct UserBatcher {
    jobs: Workers<Job>,
}

impl UserBatcher {
    /// Starts [`BATCHERS`] threads writing through `pool`.
    pub(crate) fn start(pool: Pool) -> Result<UserBatcher, StoreError> {
        let jobs = Workers::start("user-batcher", BATCHERS, |_| {
            let pool = pool.clone();
            move |job, behind: &mut Behind<'_, Job>| serve(&pool, job, behind)
        })?;
        Ok(UserBatcher { jobs })
    }

    /// Queues the creation of a user (behind the gate).
    pub(crate) fn insert(
        &self,
        attrs: Map<String, Value>,
        password_hash: Option<String>,
        actor: Actor,
    ) -> oneshot::Receiver<Result<UserRecord, StoreError>> {
        let (reply, receiver) = oneshot::channel();
        self.submit(Job::Insert(Box::new(InsertJob {
            attrs,
            password_hash,
            actor,
            result: None,
            reply,
        })));
        receiver
    }

    /// Queues an edit of the user `id` (behind the gate).
    pub(crate) fn edit<T, F>(
        &self,
        id: String,
        with_groups: bool,
        by: EditBy,
        f: F,
    ) -> oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        self.submit(Job::Edit(Box::new(EditTask {
            id,
            with_groups,
            by,
            f,
            then: None,
            result: None,
            reply,
        })));
        receiver
    }

    fn submit(&self, job: Job) {
        if let Err(job) = self.jobs.push(job) {
            fail_all(
                vec![job],
                &StoreError::Unavailable("the user batcher threads have stopped".to_owned()),
            );
        }
    }
}

fn fail_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        match job {
            Job::Insert(mut j) => {
                j.result = Some(Err(e.clone()));
                j.answer();
            }
            Job::Edit(mut j) => {
                j.force(e.clone());
                j.answer();
            }
        }
    }
}

/// A batcher's turn: `first` and every write waiting behind it (at most
/// [`MAX_BATCH`]), run as one batch. At most one edit per user goes in a
/// batch: a second edit of the same user goes in the next batch, run
/// right after, so that it sees the first one's result.
fn serve(pool: &Pool, first: Job, behind: &mut Behind<'_, Job>) {
    let mut jobs = vec![first];
    while !jobs.is_empty() {
        while jobs.len() < MAX_BATCH {
            match behind.next() {
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        let mut inserts = Vec::new();
        let mut edits: Vec<Box<dyn EditJob>> = Vec::new();
        let mut editing = HashSet::new();
        let mut next = Vec::new();
        // A batch is one organization's (its gate is read once): writes of
        // another organization go in the next batch.
        let org = jobs.first().map_or(OrgId::DEFAULT, Job::org);
        for job in jobs {
            match job {
                job if job.org() != org => next.push(job),
                Job::Insert(j) => inserts.push(*j),
                Job::Edit(j) if editing.contains(j.id()) => next.push(Job::Edit(j)),
                Job::Edit(j) => {
                    editing.insert(j.id().to_owned());
                    edits.push(j);
                }
            }
        }
        match pool.get() {
            Ok(mut conn) => run(&mut conn, org, &mut inserts, &mut edits),
            Err(e) => {
                let e = StoreError::from(e);
                for j in &mut inserts {
                    j.result = Some(Err(e.clone()));
                }
                for j in &mut edits {
                    j.force(e.clone());
                }
            }
        }
        for j in inserts {
            j.answer();
        }
        for j in edits {
            j.answer();
        }
        jobs = next;
    }
}
