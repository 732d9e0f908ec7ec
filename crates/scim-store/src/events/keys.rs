//! The signing keys of the event streams.
//!
//! ES256 and EdDSA keys are generated here (ring) and kept as PKCS#8;
//! their public halves are kept as JWKs (RFC 7517), published as the
//! stream's JWKS. HS256 streams get a random secret shared with the
//! receiver. The newest unretired key signs; rotating adds a new one and
//! retires the others, which stay in the JWKS (receivers still verify SETs
//! signed before the rotation) until an operator removes them.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use diesel::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::db::connection::DbConnection;
use crate::db::schema::events::event_keys;
use crate::error::StoreError;

/// How a stream's SETs are signed (JWS `alg`, RFC 7518 §3.1, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA on P-256 with SHA-256: the default.
    Es256,
    /// Ed25519.
    EdDsa,
    /// HMAC SHA-256 with a secret shared with the receiver.
    Hs256,
}

impl Alg {
    /// The JWS name, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }

    /// The algorithm of a JWS name.
    pub fn parse(s: &str) -> Option<Alg> {
        [Alg::Es256, Alg::EdDsa, Alg::Hs256]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// A signing key of a stream.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = event_keys)]
pub struct SigningKey {
    /// The JWS `kid`.
    pub kid: String,
    /// The stream.
    pub stream_id: String,
    /// `ES256`, `EdDSA` or `HS256`.
    pub alg: String,
    /// Base64 PKCS#8 (ES256, EdDSA) or the base64url HMAC secret (HS256).
    pub secret: String,
    /// The public JWK (JSON text); `None` for HS256.
    pub public_jwk: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// When it stopped signing (rotated out).
    pub retired_at: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The private key as DER (PKCS#8), or the HMAC key: the shared
    /// secret's text as the application was given it (docs/EVENTS.md: it
    /// verifies with the secret as it is, not decoded).
    pub fn secret_bytes(&self) -> Result<Vec<u8>, StoreError> {
        if self.alg == Alg::Hs256.as_str() {
            return Ok(self.secret.as_bytes().to_vec());
        }
        STANDARD
            .decode(&self.secret)
            .map_err(|e| StoreError::internal("a stored signing key is not readable", &e))
    }
}

fn generation_failed() -> StoreError {
    StoreError::Internal("generating a signing key failed".to_owned())
}

/// A new key for `alg`: (secret as stored, public JWK).
fn generate(alg: Alg, kid: &str) -> Result<(String, Option<serde_json::Value>), StoreError> {
    let rng = SystemRandom::new();
    match alg {
        Alg::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| generation_failed())?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .map_err(|_| generation_failed())?;
            // An uncompressed point: 0x04, then x and y (SEC 1 §2.3.3).
            let point = pair.public_key().as_ref();
            let (x, y) = match (point.get(1..33), point.get(33..65)) {
                (Some(x), Some(y)) if point.len() == 65 => (x, y),
                _ => return Err(generation_failed()),
            };
            Ok((
                STANDARD.encode(pkcs8.as_ref()),
                Some(serde_json::json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                    "kid": kid, "alg": "ES256", "use": "sig",
                })),
            ))
        }
        Alg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| generation_failed())?;
            let pair =
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| generation_failed())?;
            // RFC 8037 §2: an OKP key.
            Ok((
                STANDARD.encode(pkcs8.as_ref()),
                Some(serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                    "kid": kid, "alg": "EdDSA", "use": "sig",
                })),
            ))
        }
        Alg::Hs256 => {
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&rng, &mut bytes).map_err(|_| generation_failed())?;
            Ok((URL_SAFE_NO_PAD.encode(bytes), None))
        }
    }
}

/// Adds a new signing key for `alg` to the stream `stream_id`; returns it
/// and, for HS256, the shared secret to give the receiver (shown once).
pub fn create_key(
    conn: &mut DbConnection,
    stream_id: &str,
    alg: Alg,
    now: &str,
) -> Result<(SigningKey, Option<String>), StoreError> {
    let kid = uuid::Uuid::new_v4().simple().to_string();
    let (secret, jwk) = generate(alg, &kid)?;
    let key = SigningKey {
        kid,
        stream_id: stream_id.to_owned(),
        alg: alg.as_str().to_owned(),
        secret,
        public_jwk: jwk.map(|j| j.to_string()),
        created_at: now.to_owned(),
        retired_at: None,
    };
    diesel::insert_into(event_keys::table)
        .values((
            event_keys::kid.eq(&key.kid),
            event_keys::stream_id.eq(&key.stream_id),
            event_keys::alg.eq(&key.alg),
            event_keys::secret.eq(&key.secret),
            event_keys::public_jwk.eq(&key.public_jwk),
            event_keys::created_at.eq(&key.created_at),
        ))
        .execute(conn)?;
    let shared = (alg == Alg::Hs256).then(|| key.secret.clone());
    Ok((key, shared))
}

/// The key that signs the stream's SETs: its newest unretired one.
pub fn signing_key(conn: &mut DbConnection, stream_id: &str) -> Result<SigningKey, StoreError> {
    Ok(event_keys::table
        .filter(event_keys::stream_id.eq(stream_id))
        .filter(event_keys::retired_at.is_null())
        .order((event_keys::created_at.desc(), event_keys::kid.desc()))
        .select(SigningKey::as_select())
        .first(conn)?)
}

/// Every key of the stream, newest first (retired ones included).
pub fn list_keys(conn: &mut DbConnection, stream_id: &str) -> Result<Vec<SigningKey>, StoreError> {
    Ok(event_keys::table
        .filter(event_keys::stream_id.eq(stream_id))
        .order((event_keys::created_at.desc(), event_keys::kid.desc()))
        .select(SigningKey::as_select())
        .load(conn)?)
}

/// Rotates the stream's key: a new key (of the stream's algorithm) signs
/// from now on; the previous ones are retired but still published.
/// Returns the new key and, for HS256, the new shared secret.
pub fn rotate_key(
    conn: &mut DbConnection,
    stream_id: &str,
    now: &str,
) -> Result<(SigningKey, Option<String>), StoreError> {
    let newest = list_keys(conn, stream_id)?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)?;
    let alg = Alg::parse(&newest.alg)
        .ok_or_else(|| StoreError::Internal("a stored signing key is not readable".to_owned()))?;
    diesel::update(
        event_keys::table
            .filter(event_keys::stream_id.eq(stream_id))
            .filter(event_keys::retired_at.is_null()),
    )
    .set(event_keys::retired_at.eq(now))
    .execute(conn)?;
    create_key(conn, stream_id, alg, now)
}

/// Removes a retired key of the stream: SETs it signed no longer verify
/// with the JWKS. The signing key cannot be removed (`Conflict`: rotate
/// first).
pub fn remove_key(conn: &mut DbConnection, stream_id: &str, kid: &str) -> Result<(), StoreError> {
    let key: SigningKey = event_keys::table
        .find(kid)
        .filter(event_keys::stream_id.eq(stream_id))
        .select(SigningKey::as_select())
        .first(conn)?;
    if key.retired_at.is_none() {
        return Err(StoreError::Conflict(
            "this key signs the stream's SETs; rotate the key first, then remove the old one"
                .to_owned(),
        ));
    }
    diesel::delete(event_keys::table.find(kid)).execute(conn)?;
    Ok(())
}

/// The stream's JWKS (RFC 7517 §5): the public keys of every key it has
/// (an HS256 stream publishes none).
pub fn jwks(conn: &mut DbConnection, stream_id: &str) -> Result<serde_json::Value, StoreError> {
    let keys = list_keys(conn, stream_id)?
        .into_iter()
        .filter_map(|k| k.public_jwk)
        .map(|j| {
            serde_json::from_str::<serde_json::Value>(&j)
                .map_err(|e| StoreError::internal("a stored JWK is not readable", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({ "keys": keys }))
}
