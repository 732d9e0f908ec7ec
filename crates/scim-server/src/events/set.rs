//! Building and signing Security Event Tokens (RFC 8417) for the changes
//! a stream delivers, with the SCIM event URIs and payloads of RFC 9967.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scim_store::changes::{Change, Event};
use scim_store::events::{Alg, EventType, Mode, SigningKey, Stream};
use scim_store::OrgId;
use serde_json::{json, Map, Value};

use crate::events::EventsConfig;

/// The `typ` header of a SET (RFC 8417 §2.3).
pub const SET_TYP: &str = "secevent+jwt";
/// The media type a SET is pushed as (RFC 8417 §7.2, RFC 8935 §2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";
/// The prefix of the provisioning event URIs (RFC 9967 §2.4).
pub const PROV_PREFIX: &str = "urn:ietf:params:scim:event:prov";

/// The `iss` of the SETs of the organization `org` (slug `slug`) when its
/// stream sets none. A SET's `sub_id.uri` is relative to the SCIM base URL
/// of the service provider that issued it (RFC 9967 §2.1), so `iss` names
/// that base URL: for an organization other than the default one,
/// `{events.issuer}{scim.base_path}/o/{slug}`, the URL its identity
/// provider provisions (docs/ORGANIZATIONS.md). The default organization's
/// SETs carry `events.issuer` itself, as a single-directory installation's
/// always did.
pub fn org_issuer(config: &EventsConfig, org: OrgId, slug: &str) -> String {
    if org == OrgId::DEFAULT {
        config.issuer.clone()
    } else {
        format!(
            "{}{}/o/{slug}",
            config.issuer.trim_end_matches('/'),
            config.scim_base_path.trim_end_matches('/')
        )
    }
}

/// The `iss` of the SETs of `stream` when it sets none: its
/// organization's ([`org_issuer`]), read from the store.
pub fn stream_issuer(
    conn: &mut scim_store::DbConnection,
    config: &EventsConfig,
    stream: &Stream,
) -> Result<String, scim_store::StoreError> {
    if stream.org == OrgId::DEFAULT {
        return Ok(config.issuer.clone());
    }
    let org = scim_store::organizations::get_organization(conn, stream.org)?;
    Ok(org_issuer(config, stream.org, &org.slug))
}

/// The `jti` of the SET for `position` in stream `stream_id`: the same on
/// every retransmission, so that a receiver deduplicates by it.
pub fn jti(stream_id: &str, position: i64) -> String {
    format!("{stream_id}:{position}")
}

/// The position of a `jti` of stream `stream_id` (`None` for another
/// stream's or a malformed one).
pub fn position_of(stream_id: &str, jti: &str) -> Option<i64> {
    let (stream, position) = jti.rsplit_once(':')?;
    (stream == stream_id)
        .then(|| position.parse().ok())
        .flatten()
}

/// The event URI of `event` in `mode` (RFC 9967 §2.4: create, patch and
/// put end in `:full` or `:notice`; delete, activate and deactivate take
/// no suffix).
pub fn event_uri(event: EventType, mode: Mode) -> String {
    if event.has_payload() {
        format!("{PROV_PREFIX}:{}:{}", event.as_str(), mode.as_str())
    } else {
        format!("{PROV_PREFIX}:{}", event.as_str())
    }
}

fn endpoint(resource_type: &str) -> &str {
    match resource_type {
        "Group" => "Groups",
        _ => "Users",
    }
}

/// The attribute names a notice lists (RFC 9967 §2.2 `attributes`): the
/// paths a change recorded, `members` for a membership change, else the
/// top-level attributes of the resource.
fn changed_attributes(change: &Change, event: Event, data: Option<&Value>) -> Vec<Value> {
    let detail: Value = serde_json::from_str(&change.detail).unwrap_or(Value::Null);
    if let Some(paths) = detail.get("paths").and_then(Value::as_array) {
        return paths.clone();
    }
    if matches!(event, Event::MembersAdded | Event::MembersRemoved) {
        return vec![json!("members")];
    }
    data.and_then(Value::as_object)
        .map(|o| {
            o.keys()
                .filter(|k| !matches!(k.as_str(), "schemas" | "meta"))
                .map(|k| json!(k))
                .collect()
        })
        .unwrap_or_default()
}

/// The claims of the SET announcing `change` on `stream`, or `None` when
/// the stream does not deliver it. `issuer` is the stream's `iss` unless
/// it sets its own.
pub fn claims(stream: &Stream, change: &Change, issuer: &str) -> Option<Value> {
    if !stream.selects(change) {
        return None;
    }
    let event = Event::parse(&change.event)?;
    let kind = EventType::of(event)?;
    let id = change.resource_id.as_deref().unwrap_or_default();
    let data: Option<Value> = change
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let mut sub_id = Map::new();
    sub_id.insert("format".into(), json!("scim"));
    sub_id.insert(
        "uri".into(),
        json!(format!("/{}/{id}", endpoint(&change.resource_type))),
    );
    if let Some(external) = &change.external_id {
        sub_id.insert("externalId".into(), json!(external));
    }
    let mut payload = Map::new();
    // Full events need their `data` (the resource, or a patch's
    // operations); a change recorded without it goes out as a notice
    // (exactly one of data/attributes, RFC 9967 §2.4).
    let mode = match (stream.mode, &data) {
        (Mode::Full, Some(_)) => Mode::Full,
        _ => Mode::Notice,
    };
    if kind.has_payload() {
        match (mode, &data) {
            (Mode::Full, Some(d)) => {
                payload.insert("data".into(), d.clone());
            }
            _ => {
                payload.insert(
                    "attributes".into(),
                    Value::Array(changed_attributes(change, event, data.as_ref())),
                );
            }
        }
        if let Some(v) = change.resource_version {
            payload.insert("version".into(), json!(crate::request::etag(v)));
        }
    }
    let iat =
        time::OffsetDateTime::parse(&change.at, &time::format_description::well_known::Rfc3339)
            .map_or(0, time::OffsetDateTime::unix_timestamp);
    let mut events = Map::new();
    events.insert(event_uri(kind, mode), Value::Object(payload));
    Some(json!({
        "iss": stream.issuer.as_deref().unwrap_or(issuer),
        "aud": stream.audience,
        "iat": iat,
        "jti": jti(&stream.id, change.position),
        // RFC 9967 §2.2: the same for every SET of one transaction; the
        // request's id when the change came over HTTP.
        "txn": change.request_id.clone().unwrap_or_else(|| change.position.to_string()),
        "sub_id": Value::Object(sub_id),
        "events": Value::Object(events),
    }))
}

/// Why a SET could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("signing a SET failed: {0}")]
pub struct SignError(String);

/// Signs `claims` with `key` as a compact JWS with `typ` `secevent+jwt`
/// and the key's `kid`.
pub fn sign(claims: &Value, key: &SigningKey) -> Result<String, SignError> {
    let secret = key.secret_bytes().map_err(|e| SignError(e.to_string()))?;
    let (alg, encoding) = match Alg::parse(&key.alg) {
        Some(Alg::Es256) => (Algorithm::ES256, EncodingKey::from_ec_der(&secret)),
        Some(Alg::EdDsa) => (Algorithm::EdDSA, EncodingKey::from_ed_der(&secret)),
        Some(Alg::Hs256) => (Algorithm::HS256, EncodingKey::from_secret(&secret)),
        None => return Err(SignError(format!("unknown algorithm {}", key.alg))),
    };
    let header = Header {
        typ: Some(SET_TYP.into()),
        alg,
        kid: Some(key.kid.clone()),
        ..Header::default()
    };
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|e| SignError(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn stream(mode: Mode) -> Stream {
        Stream {
            id: "s1".into(),
            org: OrgId::DEFAULT,
            name: "app".into(),
            delivery: scim_store::events::Delivery::Poll,
            endpoint_url: None,
            has_authorization: false,
            audience: "https://app.example.com".into(),
            issuer: None,
            event_types: vec![],
            resource_types: vec![],
            mode,
            alg: Alg::Es256,
            paused: false,
            cursor: 0,
            failures: 0,
            last_error: None,
            last_error_at: None,
            next_attempt_at: None,
            delivered_at: None,
            created_at: String::new(),
        }
    }

    fn change(event: &str, data: Option<&str>, detail: &str) -> Change {
        Change {
            position: 7,
            at: "2026-12-06T10:00:00.000Z".into(),
            event: event.into(),
            resource_type: "User".into(),
            resource_id: Some("u1".into()),
            resource_version: Some(3),
            actor_kind: "scim_token".into(),
            actor_id: None,
            actor_name: None,
            request_id: Some("req-9".into()),
            client_address: None,
            detail: detail.into(),
            data: data.map(str::to_owned),
            external_id: data
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|d| d["externalId"].as_str().map(str::to_owned)),
        }
    }

    #[test]
    fn an_organizations_sets_are_issued_by_its_scim_base_url() {
        let config = EventsConfig {
            issuer: "https://scim.example.com/".into(),
            ..EventsConfig::default()
        };
        assert_eq!(
            org_issuer(&config, OrgId::DEFAULT, "default"),
            "https://scim.example.com/"
        );
        assert_eq!(
            org_issuer(&config, OrgId(7), "acme"),
            "https://scim.example.com/scim/v2/o/acme"
        );
    }

    #[test]
    fn claims_follow_rfc_9967() {
        let data = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"alice","externalId":"a-1"}"#;
        let full = claims(
            &stream(Mode::Full),
            &change("user.created", Some(data), "{}"),
            "https://scim.example.com",
        )
        .unwrap();
        assert_eq!(full["iss"], "https://scim.example.com");
        assert_eq!(full["jti"], "s1:7");
        assert_eq!(full["txn"], "req-9");
        assert_eq!(full["iat"], 1_796_551_200);
        assert_eq!(
            full["sub_id"],
            json!({"format": "scim", "uri": "/Users/u1", "externalId": "a-1"})
        );
        let ev = &full["events"]["urn:ietf:params:scim:event:prov:create:full"];
        assert_eq!(ev["data"]["userName"], "alice");
        assert_eq!(ev["version"], "W/\"3\"");
        let notice = claims(
            &stream(Mode::Notice),
            &change("user.patched", Some(data), r#"{"paths":["title"]}"#),
            "i",
        )
        .unwrap();
        assert_eq!(
            notice["events"]["urn:ietf:params:scim:event:prov:patch:notice"]["attributes"],
            json!(["title"])
        );
        // A full patch carries the PATCH operations (RFC 9967 §2.4.2).
        let ops = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Boss"}]}"#;
        let patch = claims(
            &stream(Mode::Full),
            &change("user.patched", Some(ops), r#"{"paths":["title"]}"#),
            "i",
        )
        .unwrap();
        assert_eq!(
            patch["events"]["urn:ietf:params:scim:event:prov:patch:full"]["data"],
            serde_json::from_str::<Value>(ops).unwrap()
        );
        let delete = claims(
            &stream(Mode::Full),
            &change("user.deleted", None, "{}"),
            "i",
        )
        .unwrap();
        assert_eq!(
            delete["events"],
            json!({"urn:ietf:params:scim:event:prov:delete": {}})
        );
        let off = claims(
            &stream(Mode::Full),
            &change("user.suspended", None, "{}"),
            "i",
        )
        .unwrap();
        assert_eq!(
            off["events"],
            json!({"urn:ietf:params:scim:event:prov:deactivate": {}})
        );
        // Full without the resource recorded: a notice.
        let put = claims(
            &stream(Mode::Full),
            &change("user.replaced", None, "{}"),
            "i",
        )
        .unwrap();
        assert!(put["events"]["urn:ietf:params:scim:event:prov:put:notice"].is_object());
        assert!(claims(
            &stream(Mode::Full),
            &change("sync.enabled", None, "{}"),
            "i"
        )
        .is_none());
        assert_eq!(position_of("s1", "s1:7"), Some(7));
        assert_eq!(position_of("s2", "s1:7"), None);
        assert_eq!(position_of("s1", "garbage"), None);
    }

    #[test]
    fn every_event_kind_has_its_exact_rfc_9967_uri_full_and_notice() {
        // RFC 9967 §2.4: create, patch and put take :full or :notice;
        // delete, activate and deactivate none, in either mode.
        let want = |kind: EventType| match kind {
            EventType::Create => [
                "urn:ietf:params:scim:event:prov:create:full",
                "urn:ietf:params:scim:event:prov:create:notice",
            ],
            EventType::Patch => [
                "urn:ietf:params:scim:event:prov:patch:full",
                "urn:ietf:params:scim:event:prov:patch:notice",
            ],
            EventType::Put => [
                "urn:ietf:params:scim:event:prov:put:full",
                "urn:ietf:params:scim:event:prov:put:notice",
            ],
            EventType::Delete => ["urn:ietf:params:scim:event:prov:delete"; 2],
            EventType::Activate => ["urn:ietf:params:scim:event:prov:activate"; 2],
            EventType::Deactivate => ["urn:ietf:params:scim:event:prov:deactivate"; 2],
        };
        for &kind in EventType::ALL {
            let [full, notice] = want(kind);
            assert_eq!(event_uri(kind, Mode::Full), full, "{kind:?}");
            assert_eq!(event_uri(kind, Mode::Notice), notice, "{kind:?}");
        }
        // Each SCIM event of the change log, recorded with its resource,
        // is announced under its URI in each mode.
        let data = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"alice"}"#;
        for (event, kind) in [
            ("user.created", EventType::Create),
            ("group.created", EventType::Create),
            ("user.replaced", EventType::Put),
            ("group.replaced", EventType::Put),
            ("user.patched", EventType::Patch),
            ("group.patched", EventType::Patch),
            ("group.members_added", EventType::Patch),
            ("group.members_removed", EventType::Patch),
            ("user.deleted", EventType::Delete),
            ("user.soft_deleted", EventType::Delete),
            ("group.deleted", EventType::Delete),
            ("user.activated", EventType::Activate),
            ("user.suspended", EventType::Deactivate),
        ] {
            for (mode, uri) in [Mode::Full, Mode::Notice].into_iter().zip(want(kind)) {
                let set = claims(&stream(mode), &change(event, Some(data), "{}"), "i")
                    .unwrap_or_else(|| panic!("{event} is not announced"));
                let uris: Vec<&String> = set["events"].as_object().unwrap().keys().collect();
                assert_eq!(uris, [uri], "{event} in {mode:?}");
                let payload = &set["events"][uri];
                if kind.has_payload() && mode == Mode::Full {
                    assert_eq!(payload["data"]["userName"], "alice", "{event}: {payload}");
                    assert!(payload.get("attributes").is_none(), "{event}: {payload}");
                } else if kind.has_payload() {
                    assert!(payload["attributes"].is_array(), "{event}: {payload}");
                    assert!(payload.get("data").is_none(), "{event}: {payload}");
                } else {
                    assert_eq!(payload, &json!({}), "{event} in {mode:?}");
                }
            }
        }
    }
}
