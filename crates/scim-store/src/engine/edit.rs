//! The public edit API of User writes: an edit is a closure that is given
//! the user as stored ([`Found`]) and decides what to write ([`Edit`]).

use serde_json::{Map, Value};

use crate::changes::{Actor, Event, NewChange};
use crate::error::StoreError;
use crate::scim::members::GroupRef;
use crate::scim::recorded::user_edited;
use crate::scim::users::{PasswordChange, UserRecord};

/// A user as stored and its direct groups (empty unless asked for), or
/// `None` when there is no such user: what an edit decides on.
pub type Found = Option<(UserRecord, Vec<GroupRef>)>;

/// What an edit ([`crate::engine::Store::queue_user_edit`]) makes of the user it
/// was given.
pub enum Edit<T> {
    /// Nothing to write: answer with this (a 404, a 412, an unchanged
    /// user, an invalid PATCH…).
    Answer(T),
    /// Store `attrs` (and the password change) over `current`, the record
    /// the edit was given, and answer with `then` of the stored record.
    Store {
        /// The record the edit was given (its version is checked again).
        current: UserRecord,
        /// The new attributes.
        attrs: Map<String, Value>,
        /// What happens to the password hash.
        password: PasswordChange,
        /// The answer, from the stored record.
        then: Box<dyn FnOnce(UserRecord) -> T + Send>,
    },
}

/// Who makes a User edit and what kind of edit it is, for the change log.
#[derive(Debug, Clone)]
pub struct EditBy {
    /// Who.
    pub actor: Actor,
    /// [`Event::UserReplaced`] (PUT) or [`Event::UserPatched`] (PATCH).
    pub event: Event,
}

impl EditBy {
    /// The change log rows of storing `stored` over the attributes
    /// `before` (`scim::recorded::user_edited`).
    pub(crate) fn changes(
        &self,
        before: &Map<String, Value>,
        stored: &UserRecord,
        password: &PasswordChange,
    ) -> Result<Vec<NewChange>, StoreError> {
        user_edited(
            self.event,
            before,
            stored,
            matches!(password, PasswordChange::Set(_)),
        )
    }
}
