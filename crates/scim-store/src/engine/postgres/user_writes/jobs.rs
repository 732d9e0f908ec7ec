//! The writes a batcher queues: a create ([`InsertJob`]) and an edit
//! whose answer type is erased ([`EditJob`]).

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::changes::Actor;
use crate::db::org::OrgId;
use crate::engine::edit::{Edit, EditBy, Found};
use crate::engine::queue::catch;
use crate::error::StoreError;
use crate::scim::users::{PasswordChange, UserRecord};

/// An edit's write, as the batch needs it.
pub(crate) struct PendingWrite {
    pub(crate) current: UserRecord,
    pub(crate) attrs: Map<String, Value>,
    pub(crate) password: PasswordChange,
    /// Who, and which event, for the change log.
    pub(crate) by: EditBy,
}

/// An edit whose answer type has been erased, so that edits of different
/// handlers share a batch.
pub(crate) trait EditJob: Send {
    fn id(&self) -> &str;
    /// The organization the edit acts in (its actor's).
    fn org(&self) -> OrgId;
    fn with_groups(&self) -> bool;
    /// Runs the edit's closure on `found`: `Some` when it writes (the
    /// answer then waits for [`EditJob::stored`]), `None` when it has
    /// answered.
    fn decide(&mut self, found: Found) -> Option<PendingWrite>;
    /// The write of [`EditJob::decide`] was committed as `rec`.
    fn stored(&mut self, rec: UserRecord);
    /// Answers `e` without running the edit.
    fn force(&mut self, e: StoreError);
    /// Sends the answer (an error if there is none).
    fn answer(self: Box<Self>);
}

pub(crate) struct EditTask<T, F> {
    pub(crate) id: String,
    pub(crate) with_groups: bool,
    pub(crate) by: EditBy,
    pub(crate) f: F,
    pub(crate) then: Option<Box<dyn FnOnce(UserRecord) -> T + Send>>,
    pub(crate) result: Option<Result<T, StoreError>>,
    pub(crate) reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> EditJob for EditTask<T, F>
where
    T: Send + 'static,
    F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
{
    fn id(&self) -> &str {
        &self.id
    }

    fn org(&self) -> OrgId {
        self.by.actor.org
    }

    fn with_groups(&self) -> bool {
        self.with_groups
    }

    fn decide(&mut self, found: Found) -> Option<PendingWrite> {
        self.then = None;
        match catch("user edit", || (self.f)(found)) {
            Ok(Edit::Answer(t)) => {
                self.result = Some(Ok(t));
                None
            }
            Ok(Edit::Store {
                current,
                attrs,
                password,
                then,
            }) => {
                self.result = None;
                self.then = Some(then);
                Some(PendingWrite {
                    current,
                    attrs,
                    password,
                    by: self.by.clone(),
                })
            }
            Err(e) => {
                self.result = Some(Err(e));
                None
            }
        }
    }

    fn stored(&mut self, rec: UserRecord) {
        self.result = Some(match self.then.take() {
            Some(then) => catch("user edit", || Ok(then(rec))),
            None => Err(StoreError::Internal(
                "a batched edit was stored without being decided".to_owned(),
            )),
        });
    }

    fn force(&mut self, e: StoreError) {
        self.then = None;
        self.result = Some(Err(e));
    }

    fn answer(self: Box<Self>) {
        let result = self.result.unwrap_or_else(|| {
            Err(StoreError::Internal(
                "a batched edit ended without an answer".to_owned(),
            ))
        });
        // The caller may have gone away (a dropped request).
        let _ = self.reply.send(result);
    }
}

/// A queued create.
pub(crate) struct InsertJob {
    pub(crate) attrs: Map<String, Value>,
    pub(crate) password_hash: Option<String>,
    pub(crate) actor: Actor,
    pub(crate) result: Option<Result<UserRecord, StoreError>>,
    pub(crate) reply: oneshot::Sender<Result<UserRecord, StoreError>>,
}

impl InsertJob {
    pub(crate) fn answer(self) {
        let result = self.result.unwrap_or_else(|| {
            Err(StoreError::Internal(
                "a batched create ended without an answer".to_owned(),
            ))
        });
        let _ = self.reply.send(result);
    }
}

pub(crate) enum Job {
    Insert(Box<InsertJob>),
    Edit(Box<dyn EditJob>),
}

impl Job {
    /// The organization the write acts in.
    pub(crate) fn org(&self) -> OrgId {
        match self {
            Job::Insert(j) => j.actor.org,
            Job::Edit(j) => j.org(),
        }
    }
}
