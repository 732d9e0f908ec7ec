//! A stream and its settings: push or poll, the receiver, the SETs'
//! audience, issuer, mode and algorithm, the event and resource types it
//! selects; their stored form and their checks; creating a stream (with
//! its receiver token and first signing key), listing, finding, pausing
//! and deleting it, and authenticating its receiver.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::changes::{Change, Event};
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
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

pub(super) fn invalid(detail: impl Into<String>) -> StoreError {
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
///
/// [`replay_from_position`]: crate::events::streams::replay_from_position
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
