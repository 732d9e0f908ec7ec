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

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::changes::{horizon, Change, Event};
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::changes::change_log;
use crate::db::schema::events::{event_acks, event_streams};
use crate::error::StoreError;
use crate::events::keys;
pub use crate::events::keys::Alg;

/// The fixed start of every receiver token, so that a leaked one is
/// recognisable by secret scanners.
pub const RECEIVER_TOKEN_PREFIX: &str = "scimd_rcv_";

/// How a stream's events reach the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// scimd POSTs each SET to the receiver's URL (RFC 8935).
    Push,
    /// The receiver polls scimd for SETs (RFC 8936).
    Poll,
}

impl Delivery {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Push => "push",
            Delivery::Poll => "poll",
        }
    }

    /// The delivery of a stored form.
    pub fn parse(s: &str) -> Option<Delivery> {
        [Delivery::Push, Delivery::Poll]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Whether a SET carries the resource or only a reference to it
/// (RFC 9967 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `…:full`: the resource after the change, in `data`.
    Full,
    /// `…:notice`: the changed attributes' names, in `attributes`.
    Notice,
}

impl Mode {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Notice => "notice",
        }
    }

    /// The mode of a stored form.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Full, Mode::Notice]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The SCIM provisioning events of RFC 9967 §2.4 a stream may select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A resource was created (`prov:create`).
    Create,
    /// A resource was replaced (`prov:put`).
    Put,
    /// A resource was modified, members included (`prov:patch`).
    Patch,
    /// A resource was deleted (`prov:delete`).
    Delete,
    /// A User's `active` became true (`prov:activate`).
    Activate,
    /// A User's `active` became false (`prov:deactivate`).
    Deactivate,
}

impl EventType {
    /// Every type, in the order of RFC 9967 §2.4.
    pub const ALL: &'static [EventType] = &[
        EventType::Create,
        EventType::Patch,
        EventType::Put,
        EventType::Delete,
        EventType::Activate,
        EventType::Deactivate,
    ];

    /// The stored form (the verb of the event URI).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Create => "create",
            EventType::Put => "put",
            EventType::Patch => "patch",
            EventType::Delete => "delete",
            EventType::Activate => "activate",
            EventType::Deactivate => "deactivate",
        }
    }

    /// The type of a stored form.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// The event a change of the log is delivered as, if any: admin
    /// events are not SCIM events, and a purge follows a soft delete that
    /// was already delivered as `delete`.
    pub fn of(event: Event) -> Option<EventType> {
        Some(match event {
            Event::UserCreated | Event::GroupCreated => EventType::Create,
            Event::UserReplaced | Event::GroupReplaced => EventType::Put,
            Event::UserPatched
            | Event::GroupPatched
            | Event::MembersAdded
            | Event::MembersRemoved => EventType::Patch,
            Event::UserDeleted | Event::UserSoftDeleted | Event::GroupDeleted => EventType::Delete,
            Event::UserActivated => EventType::Activate,
            Event::UserSuspended => EventType::Deactivate,
            _ => return None,
        })
    }

    /// Whether the event URI takes a `:full` / `:notice` suffix
    /// (RFC 9967 §2.4.4–2.4.6: delete, activate and deactivate do not).
    pub fn has_payload(self) -> bool {
        matches!(self, EventType::Create | EventType::Put | EventType::Patch)
    }
}

/// The resource types a stream may select.
pub const RESOURCE_TYPES: &[&str] = &["User", "Group"];

/// What a new stream is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    /// The operator's label.
    pub name: String,
    /// Push or poll.
    pub delivery: Delivery,
    /// The receiver's URL (push only): `https://` or `http://`.
    pub endpoint_url: Option<String>,
    /// The Authorization header value for the receiver (push only).
    pub authorization: Option<String>,
    /// The SETs' `aud`.
    pub audience: String,
    /// The SETs' `iss` for this stream (`None`: the server's).
    pub issuer: Option<String>,
    /// The selected event types (empty: all).
    pub event_types: Vec<EventType>,
    /// The selected resource types (empty: all).
    pub resource_types: Vec<String>,
    /// Full events or notices.
    pub mode: Mode,
    /// The signing algorithm.
    pub alg: Alg,
}

/// A stream as stored, without its secrets (the Authorization value,
/// the receiver token's hash and the keys never leave the store through
/// it).
#[derive(Clone, PartialEq, Eq)]
pub struct Stream {
    /// UUID text.
    pub id: String,
    /// The organization whose changes it delivers.
    pub org: OrgId,
    /// The operator's label.
    pub name: String,
    /// Push or poll.
    pub delivery: Delivery,
    /// The receiver's URL (push).
    pub endpoint_url: Option<String>,
    /// Whether an Authorization header is sent to the receiver.
    pub has_authorization: bool,
    /// The SETs' `aud`.
    pub audience: String,
    /// The SETs' `iss` for this stream (`None`: the server's).
    pub issuer: Option<String>,
    /// The selected event types.
    pub event_types: Vec<EventType>,
    /// The selected resource types.
    pub resource_types: Vec<String>,
    /// Full events or notices.
    pub mode: Mode,
    /// The signing algorithm.
    pub alg: Alg,
    /// Whether an operator paused it.
    pub paused: bool,
    /// The last change_log position it is done with.
    pub cursor: i64,
    /// Consecutive failed deliveries.
    pub failures: i32,
    /// The last delivery error (never a secret).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<String>,
    /// No delivery before this time (backoff).
    pub next_attempt_at: Option<String>,
    /// The last successful delivery.
    pub delivered_at: Option<String>,
    /// Creation time.
    pub created_at: String,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("org", &self.org)
            .field("name", &self.name)
            .field("delivery", &self.delivery)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// Whether the stream delivers `change`: a SCIM event of a selected
    /// type, on a selected resource type.
    pub fn selects(&self, change: &Change) -> bool {
        let Some(event) = Event::parse(&change.event).and_then(EventType::of) else {
            return false;
        };
        (self.event_types.is_empty() || self.event_types.contains(&event))
            && (self.resource_types.is_empty()
                || self.resource_types.contains(&change.resource_type))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = event_streams)]
struct StreamRow {
    id: String,
    name: String,
    delivery: String,
    settings: String,
    receiver_authorization: Option<String>,
    state: String,
    cursor_position: i64,
    failures: i32,
    last_error: Option<String>,
    last_error_at: Option<String>,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
    org_id: i32,
}

/// The `settings` column: what a stream delivers, to whom, how.
#[derive(serde::Serialize, serde::Deserialize)]
struct Settings {
    endpoint_url: Option<String>,
    audience: String,
    issuer: Option<String>,
    event_types: Vec<String>,
    resource_types: Vec<String>,
    mode: String,
    alg: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::internal("an event stream row is not readable", &what)
}

impl StreamRow {
    fn into_stream(self) -> Result<(Stream, Option<String>), StoreError> {
        let settings: Settings =
            serde_json::from_str(&self.settings).map_err(|_| corrupt("settings"))?;
        let event_types = settings
            .event_types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt("event_types")))
            .collect::<Result<_, _>>()?;
        let stream = Stream {
            delivery: Delivery::parse(&self.delivery).ok_or_else(|| corrupt("delivery"))?,
            mode: Mode::parse(&settings.mode).ok_or_else(|| corrupt("mode"))?,
            alg: Alg::parse(&settings.alg).ok_or_else(|| corrupt("alg"))?,
            event_types,
            resource_types: settings.resource_types,
            id: self.id,
            org: OrgId(self.org_id),
            name: self.name,
            endpoint_url: settings.endpoint_url,
            has_authorization: self.receiver_authorization.is_some(),
            audience: settings.audience,
            issuer: settings.issuer,
            paused: self.state == "paused",
            cursor: self.cursor_position,
            failures: self.failures,
            last_error: self.last_error,
            last_error_at: self.last_error_at,
            next_attempt_at: self.next_attempt_at,
            delivered_at: self.delivered_at,
            created_at: self.created_at,
        };
        Ok((stream, self.receiver_authorization))
    }
}

#[derive(Insertable)]
#[diesel(table_name = event_streams)]
struct NewStreamRow<'a> {
    id: &'a str,
    name: &'a str,
    delivery: &'static str,
    settings: String,
    receiver_authorization: Option<&'a str>,
    receiver_token_hash: String,
    state: &'static str,
    cursor_position: i64,
    failures: i32,
    created_at: &'a str,
    org_id: i32,
}

/// A stream just created, with the secrets shown once.
#[derive(Clone)]
pub struct CreatedStream {
    /// The stream.
    pub stream: Stream,
    /// The receiver token (polling and the JWKS); only its hash is kept.
    pub receiver_token: String,
    /// The HS256 secret shared with the receiver (HS256 streams only).
    pub shared_secret: Option<String>,
}

impl std::fmt::Debug for CreatedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedStream")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

fn invalid(detail: impl Into<String>) -> StoreError {
    StoreError::Invalid(scim_core::ScimError::invalid_value(detail.into()))
}

/// Checks a receiver URL: absolute `http(s)://` with a host, no user
/// information (credentials go in the Authorization header), no fragment.
/// Whether its address may be reached is the deliverer's decision, made
/// at each delivery on the resolved addresses.
pub fn check_endpoint_url(url: &str) -> Result<(), StoreError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(format!(
                "endpoint_url \"{url}\" must be an absolute http:// or https:// URL, e.g. https://app.example.com/scim-events"
            ))
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid(format!("endpoint_url \"{url}\" has no host")));
    }
    if authority.contains('@') {
        return Err(invalid(
            "endpoint_url must not carry credentials; give them as the authorization header value",
        ));
    }
    if url.contains('#') || url.chars().any(char::is_whitespace) || url.len() > 2048 {
        return Err(invalid(format!(
            "endpoint_url \"{url}\" must have no fragment, no white space and at most 2048 characters"
        )));
    }
    Ok(())
}

fn validate(new: &NewStream) -> Result<(), StoreError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("a stream needs a name of 1 to 200 characters"));
    }
    if new.audience.trim().is_empty() || new.audience.len() > 2048 {
        return Err(invalid(
            "audience (the SETs' aud) must be 1 to 2048 characters, e.g. the application's URL",
        ));
    }
    match new.delivery {
        Delivery::Push => match &new.endpoint_url {
            Some(url) => check_endpoint_url(url)?,
            None => {
                return Err(invalid(
                    "a push stream needs endpoint_url, the receiver's URL",
                ))
            }
        },
        Delivery::Poll => {
            if new.endpoint_url.is_some() || new.authorization.is_some() {
                return Err(invalid(
                    "endpoint_url and authorization are for push streams; a poll stream's receiver calls scimd",
                ));
            }
        }
    }
    if let Some(value) = &new.authorization {
        if value.is_empty() || value.len() > 4096 || value.chars().any(char::is_control) {
            return Err(invalid(
                "authorization must be a header value of 1 to 4096 characters without control characters, e.g. \"Bearer <token>\"",
            ));
        }
    }
    for t in &new.resource_types {
        if !RESOURCE_TYPES.contains(&t.as_str()) {
            return Err(invalid(format!(
                "resource type \"{t}\" is not one of User, Group"
            )));
        }
    }
    Ok(())
}

/// SHA-256 (hex) of a receiver token.
fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a stream of the organization `org`'s changes, starting at the
/// end of the change log (it delivers the changes committed from now on;
/// [`replay_from_position`] goes back), with its receiver token and its
/// first signing key.
pub fn create_stream(
    conn: &mut DbConnection,
    org: OrgId,
    new: &NewStream,
    now: &str,
) -> Result<CreatedStream, StoreError> {
    validate(new)?;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let receiver_token = format!("{RECEIVER_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let id = uuid::Uuid::new_v4().to_string();
    let cursor = crate::changes::last_position(conn)?;
    let settings = Settings {
        endpoint_url: new.endpoint_url.clone(),
        audience: new.audience.trim().to_owned(),
        issuer: new.issuer.clone(),
        event_types: new
            .event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        resource_types: new.resource_types.clone(),
        mode: new.mode.as_str().to_owned(),
        alg: new.alg.as_str().to_owned(),
    };
    let settings = serde_json::to_string(&settings)
        .map_err(|e| StoreError::internal("encoding a stream's settings failed", &e))?;
    diesel::insert_into(event_streams::table)
        .values(NewStreamRow {
            id: &id,
            name: new.name.trim(),
            delivery: new.delivery.as_str(),
            settings,
            receiver_authorization: new.authorization.as_deref(),
            receiver_token_hash: token_hash(&receiver_token),
            state: "active",
            cursor_position: cursor,
            failures: 0,
            created_at: now,
            org_id: org.0,
        })
        .execute(conn)?;
    let (_, shared_secret) = keys::create_key(conn, &id, new.alg, now)?;
    Ok(CreatedStream {
        stream: find_stream(conn, &id)?,
        receiver_token,
        shared_secret,
    })
}

/// Every stream of the organization `org`, oldest first.
pub fn list_streams(conn: &mut DbConnection, org: OrgId) -> Result<Vec<Stream>, StoreError> {
    event_streams::table
        .filter(event_streams::org_id.eq(org.0))
        .order((event_streams::created_at, event_streams::id))
        .select(StreamRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| r.into_stream().map(|(s, _)| s))
        .collect()
}

/// The stream `id`; `NotFound` if there is none.
pub fn find_stream(conn: &mut DbConnection, id: &str) -> Result<Stream, StoreError> {
    Ok(find_with_authorization(conn, id)?.0)
}

/// The stream `id` of the organization `org`; `NotFound` if there is
/// none, or if it is another organization's (an administrator acting on
/// one organization learns nothing of the others' streams).
pub fn find_org_stream(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
) -> Result<Stream, StoreError> {
    crate::error::known_id(id)?;
    event_streams::table
        .find(id)
        .filter(event_streams::org_id.eq(org.0))
        .select(StreamRow::as_select())
        .first(conn)?
        .into_stream()
        .map(|(s, _)| s)
}

/// The stream `id` and the Authorization value to send its receiver: for
/// the deliverer only.
pub fn find_with_authorization(
    conn: &mut DbConnection,
    id: &str,
) -> Result<(Stream, Option<String>), StoreError> {
    event_streams::table
        .find(id)
        .select(StreamRow::as_select())
        .first(conn)?
        .into_stream()
}

/// The stream `id` if `token` is its receiver token (compared in constant
/// time); `NotFound` for an unknown stream or a wrong token alike, so a
/// caller learns nothing about which streams exist.
pub fn authenticate_receiver(
    conn: &mut DbConnection,
    id: &str,
    token: &str,
) -> Result<Stream, StoreError> {
    let stored: Option<String> = event_streams::table
        .find(id)
        .select(event_streams::receiver_token_hash)
        .first(conn)
        .optional()?;
    let presented = token_hash(token);
    match stored {
        Some(hash) if bool::from(hash.as_bytes().ct_eq(presented.as_bytes())) => {
            find_stream(conn, id)
        }
        _ => Err(StoreError::NotFound),
    }
}

/// Deletes the stream `id`, its keys and its acknowledgements.
pub fn delete_stream(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    diesel::delete(event_acks::table.filter(event_acks::stream_id.eq(id))).execute(conn)?;
    diesel::delete(
        crate::db::schema::events::event_keys::table
            .filter(crate::db::schema::events::event_keys::stream_id.eq(id)),
    )
    .execute(conn)?;
    match diesel::delete(event_streams::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Pauses (`true`) or resumes (`false`) the stream `id`. Resuming clears
/// the backoff, so delivery starts again at once, from the cursor.
pub fn set_paused(conn: &mut DbConnection, id: &str, paused: bool) -> Result<Stream, StoreError> {
    let updated = if paused {
        diesel::update(event_streams::table.find(id))
            .set(event_streams::state.eq("paused"))
            .execute(conn)?
    } else {
        diesel::update(event_streams::table.find(id))
            .set((
                event_streams::state.eq("active"),
                event_streams::next_attempt_at.eq(None::<String>),
            ))
            .execute(conn)?
    };
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    find_stream(conn, id)
}

/// Moves the cursor of the stream `id` to `position`: the changes after
/// it are delivered (again). Clears the backoff and the acknowledgements.
pub fn replay_from_position(
    conn: &mut DbConnection,
    id: &str,
    position: i64,
) -> Result<Stream, StoreError> {
    if position < 0 {
        return Err(invalid("a replay position is 0 or more (0: the whole log)"));
    }
    let updated = diesel::update(event_streams::table.find(id))
        .set((
            event_streams::cursor_position.eq(position),
            event_streams::next_attempt_at.eq(None::<String>),
            event_streams::failures.eq(0),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    diesel::delete(event_acks::table.filter(event_acks::stream_id.eq(id))).execute(conn)?;
    find_stream(conn, id)
}

/// Moves the cursor of the stream `id` back to just before the first
/// change of its organization recorded at or after `at` (stored time
/// form), so that everything from `at` on is delivered (again).
pub fn replay_from_time(conn: &mut DbConnection, id: &str, at: &str) -> Result<Stream, StoreError> {
    let org = find_stream(conn, id)?.org;
    let first: Option<i64> = change_log::table
        .filter(change_log::org_id.eq(org.0))
        .filter(change_log::at.ge(at))
        .select(diesel::dsl::min(change_log::position))
        .first(conn)?;
    let position = match first {
        Some(p) => p - 1,
        None => crate::changes::last_position(conn)?,
    };
    replay_from_position(conn, id, position)
}

/// Where a stream stands against its organization's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    /// The newest position of the organization's changes.
    pub last_position: i64,
    /// `last_position - cursor` (0 when the cursor is past it): how far,
    /// in log positions, it is behind its organization's newest change.
    pub lag: i64,
    /// When the oldest change after the cursor was recorded.
    pub oldest_pending_at: Option<String>,
    /// `paused`, `failing` (failed at least `failing_after` times in a
    /// row) or `active`.
    pub state: &'static str,
}

/// The status of `stream`: a stream counts as failing once it has failed
/// `failing_after` times in a row.
pub fn stream_status(
    conn: &mut DbConnection,
    stream: &Stream,
    failing_after: i32,
) -> Result<StreamStatus, StoreError> {
    let last = change_log::table
        .filter(change_log::org_id.eq(stream.org.0))
        .select(diesel::dsl::max(change_log::position))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    let oldest_pending_at = change_log::table
        .filter(change_log::org_id.eq(stream.org.0))
        .filter(change_log::position.gt(stream.cursor))
        .order(change_log::position.asc())
        .select(change_log::at)
        .first::<String>(conn)
        .optional()?;
    let state = if stream.paused {
        "paused"
    } else if stream.failures >= failing_after.max(1) {
        "failing"
    } else {
        "active"
    };
    Ok(StreamStatus {
        last_position: last,
        lag: (last - stream.cursor).max(0),
        oldest_pending_at,
        state,
    })
}

/// The push streams due for delivery at `now` against a change log whose
/// newest position is `last`: active, behind the log and past their
/// backoff (leases aside).
#[diesel::dsl::auto_type(no_type_alias)]
fn due_push_streams<'a>(last: i64, now: &'a str) -> _ {
    let push: &'static str = "push";
    let active: &'static str = "active";
    event_streams::table
        .filter(event_streams::delivery.eq(push))
        .filter(event_streams::state.eq(active))
        .filter(event_streams::cursor_position.lt(last))
        .filter(
            event_streams::next_attempt_at
                .is_null()
                .or(event_streams::next_attempt_at.le(now)),
        )
}

/// Whether a push stream waits for delivery at `now` (leases aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDue {
    /// No active push stream exists.
    NoStreams,
    /// Active push streams exist, none due now.
    NotDue,
    /// At least one is due.
    Due,
}

/// Whether a push stream is due for delivery at `now` (leases aside): a
/// read, so that the deliverer, woken by every committed write, asks for a
/// write (the claim) only when there is something to deliver.
pub fn push_stream_due(conn: &mut DbConnection, now: &str) -> Result<PushDue, StoreError> {
    let active_push: bool = diesel::select(diesel::dsl::exists(
        event_streams::table
            .filter(event_streams::delivery.eq("push"))
            .filter(event_streams::state.eq("active")),
    ))
    .get_result(conn)?;
    if !active_push {
        return Ok(PushDue::NoStreams);
    }
    let last = crate::changes::last_position(conn)?;
    let due: bool =
        diesel::select(diesel::dsl::exists(due_push_streams(last, now))).get_result(conn)?;
    Ok(if due { PushDue::Due } else { PushDue::NotDue })
}

/// Claims a push stream that is due for delivery for `owner` until
/// `lease_until`: active, past its backoff, behind the log, and not leased
/// by another replica (or its lease expired). On PostgreSQL the candidate
/// row is locked `FOR UPDATE SKIP LOCKED`, so replicas claiming at the
/// same moment take different streams instead of waiting for each other.
/// On SQLite one process serves the database and delivers: a lease left
/// behind by a process that died is not waited out.
pub fn claim_due_stream(
    conn: &mut DbConnection,
    owner: &str,
    now: &str,
    lease_until: &str,
) -> Result<Option<(Stream, Option<String>)>, StoreError> {
    let last = crate::changes::last_position(conn)?;
    let due = due_push_streams(last, now)
        .order((event_streams::delivered_at.asc(), event_streams::id.asc()))
        .select(event_streams::id);
    let id: Option<String> = match conn {
        DbConnection::Postgres(pg) => due
            .filter(
                event_streams::lease_until
                    .is_null()
                    .or(event_streams::lease_until.lt(now))
                    .or(event_streams::lease_owner.eq(owner)),
            )
            .for_update()
            .skip_locked()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => due.first(lite).optional()?,
    };
    let Some(id) = id else {
        return Ok(None);
    };
    diesel::update(event_streams::table.find(&id))
        .set((
            event_streams::lease_owner.eq(owner),
            event_streams::lease_until.eq(lease_until),
        ))
        .execute(conn)?;
    find_with_authorization(conn, &id).map(Some)
}

/// Ends `owner`'s lease of the stream `id`.
pub fn release_lease(conn: &mut DbConnection, id: &str, owner: &str) -> Result<(), StoreError> {
    diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner)),
    )
    .set((
        event_streams::lease_owner.eq(None::<String>),
        event_streams::lease_until.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// After a successful push: the cursor moves to `position` (never back),
/// the failure count and backoff clear, and `owner`'s lease is extended to
/// `lease_until`. `false` when `owner` no longer holds the lease (another
/// replica took the stream over): the caller stops delivering it.
pub fn record_delivered(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    position: i64,
    now: &str,
    lease_until: &str,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner))
            .filter(event_streams::cursor_position.le(position)),
    )
    .set((
        event_streams::cursor_position.eq(position),
        event_streams::failures.eq(0),
        event_streams::next_attempt_at.eq(None::<String>),
        event_streams::delivered_at.eq(now),
        event_streams::lease_until.eq(lease_until),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// After a failed push: the error (never a secret) is kept, the failure
/// count grows and no delivery is tried before `next_attempt_at`; the
/// lease ends. The cursor stays, so nothing is lost.
pub fn record_failure(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    error: &str,
    now: &str,
    next_attempt_at: &str,
) -> Result<(), StoreError> {
    diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner)),
    )
    .set((
        event_streams::failures.eq(event_streams::failures + 1),
        event_streams::last_error.eq(error),
        event_streams::last_error_at.eq(now),
        event_streams::next_attempt_at.eq(next_attempt_at),
        event_streams::lease_owner.eq(None::<String>),
        event_streams::lease_until.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Keeps `error` as the stream's last error without counting a failure:
/// a SET the receiver rejected for good (RFC 8935 §2.3, RFC 8936 `setErrs`)
/// that delivery moved past.
pub fn record_rejected(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    now: &str,
) -> Result<(), StoreError> {
    diesel::update(event_streams::table.find(id))
        .set((
            event_streams::last_error.eq(error),
            event_streams::last_error_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many rows of the change log one read takes while looking for a
/// stream's next events.
const SCAN: i64 = 500;

/// Up to `limit` rows of the organization `org` after `after`
/// (exclusive) and up to `until` (inclusive, a [`horizon`] taken before),
/// oldest first: [`crate::changes::read_between`] for one organization,
/// served by `change_log_org (org_id, position)`.
fn read_org_between(
    conn: &mut DbConnection,
    org: OrgId,
    after: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(change_log::table
        .filter(change_log::org_id.eq(org.0))
        .filter(change_log::position.gt(after))
        .filter(change_log::position.le(until))
        .order(change_log::position.asc())
        .limit(limit.max(0))
        .select(Change::as_select())
        .load(conn)?)
}

/// The next changes of its organization after the cursor of `stream`
/// that it selects, up to `max`, oldest first, skipping those
/// acknowledged already (poll); and the position up to which the log was
/// read (the cursor may move there once the changes returned are done
/// with: the rest it does not select, or another organization's). It
/// reads up to the change log's [`horizon`], so on PostgreSQL it must not
/// run inside a transaction.
pub fn pending_changes(
    conn: &mut DbConnection,
    stream: &Stream,
    max: usize,
) -> Result<(Vec<Change>, i64), StoreError> {
    let acked: std::collections::HashSet<i64> = event_acks::table
        .filter(event_acks::stream_id.eq(&stream.id))
        .select(event_acks::position)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let until = horizon(conn)?;
    let mut out = Vec::new();
    let mut read_to = stream.cursor;
    while out.len() < max {
        let rows = read_org_between(conn, stream.org, read_to, until, SCAN)?;
        let short = rows.len() < usize::try_from(SCAN).unwrap_or(usize::MAX);
        for change in rows {
            if out.len() >= max {
                return Ok((out, read_to));
            }
            read_to = change.position;
            if stream.selects(&change) && !acked.contains(&change.position) {
                out.push(change);
            }
        }
        if short {
            // Every row of the organization up to the horizon was read.
            read_to = read_to.max(until);
            break;
        }
    }
    Ok((out, read_to))
}

/// Acknowledges `positions` of the poll stream `stream` (RFC 8936 §2.4:
/// the receiver is done with those SETs, delivered or in error), then
/// moves its cursor over every change after it that is acknowledged or
/// not selected, up to the first still outstanding and at most to `until`,
/// the change log's [`horizon`] taken before the transaction this runs
/// in. Returns the new cursor.
pub fn acknowledge(
    conn: &mut DbConnection,
    stream: &Stream,
    until: i64,
    positions: &[i64],
) -> Result<i64, StoreError> {
    for &position in positions {
        if position <= stream.cursor {
            continue;
        }
        let exists: i64 = event_acks::table
            .filter(event_acks::stream_id.eq(&stream.id))
            .filter(event_acks::position.eq(position))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            diesel::insert_into(event_acks::table)
                .values((
                    event_acks::stream_id.eq(&stream.id),
                    event_acks::position.eq(position),
                ))
                .execute(conn)?;
        }
    }
    let acked: std::collections::HashSet<i64> = event_acks::table
        .filter(event_acks::stream_id.eq(&stream.id))
        .select(event_acks::position)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut cursor = stream.cursor;
    'scan: loop {
        let rows = read_org_between(conn, stream.org, cursor, until, SCAN)?;
        let short = rows.len() < usize::try_from(SCAN).unwrap_or(usize::MAX);
        for change in rows {
            if stream.selects(&change) && !acked.contains(&change.position) {
                break 'scan;
            }
            cursor = change.position;
        }
        if short {
            // Nothing outstanding of the organization up to the horizon.
            cursor = cursor.max(until);
            break;
        }
    }
    if cursor != stream.cursor {
        diesel::update(
            event_streams::table
                .find(&stream.id)
                .filter(event_streams::cursor_position.lt(cursor)),
        )
        .set(event_streams::cursor_position.eq(cursor))
        .execute(conn)?;
        diesel::delete(
            event_acks::table
                .filter(event_acks::stream_id.eq(&stream.id))
                .filter(event_acks::position.le(cursor)),
        )
        .execute(conn)?;
    }
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::changes::{record, Actor, NewChange};
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
        store
            .write(|c| record(c, &Actor::cli("t"), "2026-12-06T10:00:00.000Z", changes))
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
