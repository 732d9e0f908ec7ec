//! Cursor pagination (RFC 9865) over keyset pages of the store.
//!
//! A cursor is a position in the list's order (`scim_store::ListKey`: the
//! `sortBy` key, `meta.created`, the id), which page of the list it leads
//! to (the next or the previous), the query it belongs to and when it was
//! issued. The next page is read in SQL as "the rows after this position",
//! so paging holds no state on the server, costs the same at the end of
//! the collection as at its start, and neither repeats nor skips a
//! resource that existed throughout, whatever was inserted or deleted
//! between pages (as long as its own `sortBy` value did not change).
//!
//! The token is base64url (RFC 4648 §5, only RFC 3986 unreserved
//! characters, as RFC 9865 §2 requires) of a checksum and a small JSON
//! document. It is validated strictly: a token that does not decode, whose
//! checksum does not match, that was issued for another query or endpoint,
//! or that names an issue time in the future is `invalidCursor`; one older
//! than [`CURSOR_TIMEOUT_SECS`] is `expiredCursor`. The checksum catches
//! damaged or hand-edited tokens; it is not a secret, and needs not be: a
//! cursor only says where in a result set to continue, and the bearer
//! token that presents it can list that whole result set anyway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scim_core::{ScimError, ScimType};
use scim_store::{KeysetPage, ListKey, Seek, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a cursor stays valid, in seconds (advertised as
/// `pagination.cursorTimeout` in `/ServiceProviderConfig`, RFC 9865 §4).
/// Every page hands out fresh cursors, so this bounds the pause between
/// two page requests, not the walk through the whole list.
pub const CURSOR_TIMEOUT_SECS: i64 = 600;

/// Longest token accepted: a real one is a few hundred characters (the
/// sort key is at most a stored attribute value).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The token format; a token of another format is `invalidCursor`.
const VERSION: u8 = 1;
/// Domain separation for the checksum.
const CHECKSUM_CONTEXT: &[u8] = b"scimd RFC 9865 cursor v1\0";
const CHECKSUM_LEN: usize = 8;
/// Issue times this far ahead of the clock are tolerated (replicas'
/// clocks differ a little); further ahead, the token was not issued here.
const CLOCK_SKEW_SECS: i64 = 60;

/// Which page a cursor leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The page after the position (`nextCursor`).
    Next,
    /// The page before the position (`previousCursor`).
    Previous,
}

/// A decoded cursor: from which position, in which direction. `phase` is
/// the resource type's place in a search over several types (`/.search`:
/// Users are 0, Groups 1); a single-type list has only phase 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) direction: Direction,
    pub(crate) phase: u8,
    pub(crate) key: ListKey,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Format version.
    v: u8,
    /// The query fingerprint ([`fingerprint`]).
    q: String,
    /// Issue time, Unix seconds.
    t: i64,
    /// `n` (next) or `p` (previous).
    d: String,
    /// Phase.
    p: u8,
    /// The position: sort key, created, id.
    s: Option<String>,
    c: String,
    i: String,
}

/// What a cursor is bound to: the endpoint's resource types and the query
/// (RFC 9865 §2: every parameter but the cursor stays identical from page
/// to page), hashed.
pub(crate) fn fingerprint(endpoint: &str, query: &str) -> String {
    let mut h = Sha256::new();
    h.update(endpoint.as_bytes());
    h.update([0]);
    h.update(query.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize().get(..12).unwrap_or_default())
}

fn checksum(json: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Sha256::new();
    h.update(CHECKSUM_CONTEXT);
    h.update(json);
    let digest = h.finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(digest.get(..CHECKSUM_LEN).unwrap_or(&[0; CHECKSUM_LEN]));
    out
}

/// The token for `cursor`, issued at `now` (Unix seconds) for the query
/// with fingerprint `query`.
pub(crate) fn encode(cursor: &Cursor, query: &str, now: i64) -> Result<String, ScimError> {
    let token = Token {
        v: VERSION,
        q: query.to_owned(),
        t: now,
        d: match cursor.direction {
            Direction::Next => "n".into(),
            Direction::Previous => "p".into(),
        },
        p: cursor.phase,
        s: cursor.key.sort.clone(),
        c: cursor.key.created.clone(),
        i: cursor.key.id.clone(),
    };
    let json = serde_json::to_vec(&token)
        .map_err(|e| ScimError::invalid_value(format!("the cursor cannot be built: {e}")))?;
    let mut raw = Vec::with_capacity(CHECKSUM_LEN + json.len());
    raw.extend_from_slice(&checksum(&json));
    raw.extend_from_slice(&json);
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

fn invalid(detail: &str) -> ScimError {
    ScimError::new(
        ScimType::InvalidCursor,
        format!(
            "{detail}; send an empty cursor for the first page, then the nextCursor or previousCursor of the previous response, with the same filter, sortBy and sortOrder"
        ),
    )
}

/// Decodes `token` for the query with fingerprint `query` at `now` (Unix
/// seconds), with `phases` resource types behind the endpoint.
pub(crate) fn decode(token: &str, query: &str, now: i64, phases: u8) -> Result<Cursor, ScimError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid(
            "the cursor is too long to be one this service issued",
        ));
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid("the cursor is not one this service issued (it is not base64url)"))?;
    let (sum, json) = raw
        .split_at_checked(CHECKSUM_LEN)
        .ok_or_else(|| invalid("the cursor is not one this service issued (it is truncated)"))?;
    if sum != checksum(json) {
        return Err(invalid(
            "the cursor is not one this service issued (it was altered or truncated)",
        ));
    }
    let t: Token = serde_json::from_slice(json)
        .map_err(|_| invalid("the cursor is not one this service issued"))?;
    if t.v != VERSION {
        return Err(invalid(
            "the cursor was issued by another version of this service",
        ));
    }
    if t.q != query {
        return Err(invalid(
            "the cursor belongs to another query or endpoint (the filter, sortBy or sortOrder differ)",
        ));
    }
    if t.p >= phases {
        return Err(invalid("the cursor belongs to another endpoint"));
    }
    let direction = match t.d.as_str() {
        "n" => Direction::Next,
        "p" => Direction::Previous,
        _ => return Err(invalid("the cursor is not one this service issued")),
    };
    // The checksum is no secret, so the position is checked as well: it
    // is bound into SQL, and PostgreSQL refuses text with U+0000.
    let well_formed = scim_core::datetime::normalize(&t.c).is_some()
        && !t.i.is_empty()
        && t.i.len() <= 64
        && !t.i.contains('\0')
        && !t.s.as_deref().is_some_and(|s| s.contains('\0'));
    if !well_formed {
        return Err(invalid("the cursor is not one this service issued"));
    }
    if t.t > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(invalid("the cursor's issue time lies in the future"));
    }
    if now.saturating_sub(t.t) > CURSOR_TIMEOUT_SECS {
        return Err(ScimError::new(
            ScimType::ExpiredCursor,
            format!(
                "the cursor has expired: cursors are valid for {CURSOR_TIMEOUT_SECS} seconds (cursorTimeout in /ServiceProviderConfig); start again with an empty cursor"
            ),
        ));
    }
    Ok(Cursor {
        direction,
        phase: t.p,
        key: ListKey {
            sort: t.s,
            created: t.c,
            id: t.i,
        },
    })
}

/// One cursor page: the items in list order with their phase, and the
/// cursors to the neighbouring pages.
#[derive(Debug)]
pub(crate) struct CursorPage<T> {
    pub(crate) items: Vec<(u8, T, ListKey)>,
    pub(crate) links: Links,
}

/// The cursors to the pages around one page (`None`: no such page).
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    pub(crate) next: Option<Cursor>,
    pub(crate) previous: Option<Cursor>,
}

/// Reads one resource type's keyset page: `fetch(phase, seek, limit)`.
pub(crate) type Fetch<'a, T> =
    dyn FnMut(u8, Seek<'_>, i64) -> Result<KeysetPage<T>, StoreError> + 'a;

/// Reads one page of at most `count` (≥ 1) items from `start` (`None`: the
/// first page) over `phases` resource types listed one after the other.
/// `fetch(phase, seek, limit)` reads one type's keyset page.
pub(crate) fn page<T>(
    phases: u8,
    start: Option<&Cursor>,
    count: i64,
    fetch: &mut Fetch<'_, T>,
) -> Result<CursorPage<T>, StoreError> {
    if let Some(c) = start.filter(|c| c.direction == Direction::Previous) {
        let back = backward(c, count, fetch)?;
        if !back.items.is_empty() {
            return Ok(back);
        }
        // Everything before the position is gone: the previous page of
        // the first page is the first page.
    }
    forward(phases, start, count, fetch)
}

fn position<T>(item: Option<&(u8, T, ListKey)>, direction: Direction) -> Option<Cursor> {
    item.map(|(phase, _, key)| Cursor {
        direction,
        phase: *phase,
        key: key.clone(),
    })
}

fn forward<T>(
    phases: u8,
    start: Option<&Cursor>,
    count: i64,
    fetch: &mut Fetch<'_, T>,
) -> Result<CursorPage<T>, StoreError> {
    let start = start.filter(|c| c.direction == Direction::Next);
    let mut items: Vec<(u8, T, ListKey)> = Vec::new();
    let mut more = false;
    let mut phase = start.map_or(0, |c| c.phase);
    let mut after = start.map(|c| &c.key);
    while phase < phases {
        let need = count.saturating_sub(i64::try_from(items.len()).unwrap_or(i64::MAX));
        let got = fetch(phase, Seek::After(after), need)?;
        items.extend(got.items.into_iter().map(|(t, k)| (phase, t, k)));
        if got.more {
            more = true;
            break;
        }
        phase += 1;
        after = None;
    }
    // Past the first page something lies before: at least the position's
    // own resource, unless it was deleted.
    let previous = if start.is_some() {
        position(items.first(), Direction::Previous)
    } else {
        None
    };
    let next = if more {
        position(items.last(), Direction::Next)
    } else {
        None
    };
    Ok(CursorPage {
        items,
        links: Links { next, previous },
    })
}

fn backward<T>(
    start: &Cursor,
    count: i64,
    fetch: &mut Fetch<'_, T>,
) -> Result<CursorPage<T>, StoreError> {
    let mut items: Vec<(u8, T, ListKey)> = Vec::new();
    let mut more = false;
    let mut phase = Some(start.phase);
    let mut before = Some(&start.key);
    while let Some(p) = phase {
        let need = count.saturating_sub(i64::try_from(items.len()).unwrap_or(i64::MAX));
        let got = fetch(p, Seek::Before(before), need)?;
        let mut page: Vec<(u8, T, ListKey)> =
            got.items.into_iter().map(|(t, k)| (p, t, k)).collect();
        page.append(&mut items);
        items = page;
        if got.more {
            more = true;
            break;
        }
        phase = p.checked_sub(1);
        before = None;
    }
    let previous = if more {
        position(items.first(), Direction::Previous)
    } else {
        None
    };
    // The position's own resource follows this page.
    let next = position(items.last(), Direction::Next);
    Ok(CursorPage {
        items,
        links: Links { next, previous },
    })
}

/// What a cursor-paged request asks for: the query's fingerprint, the
/// time, and where to start.
#[derive(Debug)]
pub(crate) struct Request {
    query: String,
    now: i64,
    /// `None`: the first page.
    pub(crate) start: Option<Cursor>,
}

impl Request {
    /// Reads `token` (empty: the first page) for `endpoint`, which lists
    /// `phases` resource types, at the API's clock.
    pub(crate) fn new(
        api: &crate::ScimApi,
        endpoint: &str,
        query_text: &str,
        token: &str,
        phases: u8,
    ) -> Result<Request, ScimError> {
        let query = fingerprint(endpoint, query_text);
        let now = api.config().clock.now().unix_timestamp();
        let start = match token.trim() {
            "" => None,
            token => Some(decode(token, &query, now, phases)?),
        };
        Ok(Request { query, now, start })
    }

    /// The ListResponse members of `page` (RFC 9865 §2): no `startIndex`,
    /// and `nextCursor` / `previousCursor` where there is such a page.
    pub(crate) fn list_head(
        &self,
        total: i64,
        items: usize,
        links: &Links,
    ) -> Result<serde_json::Value, ScimError> {
        let token = |c: &Option<Cursor>| {
            c.as_ref()
                .map(|c| encode(c, &self.query, self.now))
                .transpose()
        };
        let mut head = serde_json::json!({
            "schemas": [scim_core::schema::LIST_RESPONSE_SCHEMA],
            "totalResults": total,
            "itemsPerPage": items,
        });
        if let Some(obj) = head.as_object_mut() {
            if let Some(n) = token(&links.next)? {
                obj.insert("nextCursor".into(), n.into());
            }
            if let Some(p) = token(&links.previous)? {
                obj.insert("previousCursor".into(), p.into());
            }
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            direction: Direction::Next,
            phase: 1,
            key: ListKey {
                sort: Some("bjensen".into()),
                created: "2026-12-06T10:00:00.000000Z".into(),
                id: "0193a1b2-0000-7000-8000-000000000001".into(),
            },
        }
    }

    #[test]
    fn round_trips_and_uses_unreserved_characters_only() {
        let q = fingerprint("Users", "filter");
        let token = encode(&cursor(), &q, 1_000).unwrap();
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode(&token, &q, 1_000, 2).unwrap(), cursor());
        assert_eq!(
            decode(&token, &q, 1_000 + CURSOR_TIMEOUT_SECS, 2).unwrap(),
            cursor()
        );
    }

    #[test]
    fn refuses_bad_tokens() {
        let q = fingerprint("Users", "filter");
        let token = encode(&cursor(), &q, 1_000).unwrap();
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let long = "A".repeat(MAX_TOKEN_LEN + 1);
        for (bad, query, now, phases, want) in [
            ("!!!", q.as_str(), 1_000, 2, ScimType::InvalidCursor),
            ("AAAA", &q, 1_000, 2, ScimType::InvalidCursor),
            (&altered, &q, 1_000, 2, ScimType::InvalidCursor),
            (
                &token[..token.len() - 4],
                &q,
                1_000,
                2,
                ScimType::InvalidCursor,
            ),
            (&long, &q, 1_000, 2, ScimType::InvalidCursor),
            (&token, "other", 1_000, 2, ScimType::InvalidCursor),
            (&token, &q, 1_000, 1, ScimType::InvalidCursor),
            (
                &token,
                &q,
                1_000 - CLOCK_SKEW_SECS - 1,
                2,
                ScimType::InvalidCursor,
            ),
            (
                &token,
                &q,
                1_000 + CURSOR_TIMEOUT_SECS + 1,
                2,
                ScimType::ExpiredCursor,
            ),
        ] {
            let e = decode(bad, query, now, phases).unwrap_err();
            assert_eq!(e.scim_type, want, "{bad}: {}", e.detail);
            assert!(!e.detail.is_empty());
        }
        assert_ne!(fingerprint("Users", "x"), fingerprint("Groups", "x"));
        // Forged with a valid checksum: the position is checked too.
        for key in [
            ListKey {
                sort: Some("a\0b".into()),
                ..cursor().key
            },
            ListKey {
                id: "a\0".into(),
                ..cursor().key
            },
            ListKey {
                id: String::new(),
                ..cursor().key
            },
            ListKey {
                created: "yesterday".into(),
                ..cursor().key
            },
        ] {
            let forged = Cursor { key, ..cursor() };
            let token = encode(&forged, &q, 1_000).unwrap();
            let e = decode(&token, &q, 1_000, 2).unwrap_err();
            assert_eq!(e.scim_type, ScimType::InvalidCursor, "{forged:?}");
        }
    }
}
