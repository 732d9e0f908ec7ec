//! Provisioning health, recorded: each credential's SCIM traffic in this
//! process (`scim_store::health::Traffic`), counted by [`crate::metrics::observe`]
//! for every request of the SCIM scope, and saved to the database by
//! [`Health::save`] (scimd calls it every few seconds) so that the admin
//! side can merge the traffic of every replica.
//!
//! The cost per request is one uncontended lock and a few integer
//! updates; the database is written only by [`Health::save`], and only
//! when something changed since the last save.
//!
//! A request without a valid token is counted against the credential it
//! named when scimd knows it (a revoked or expired token,
//! [`identify_refused`], one extra query on the 401 path only), else
//! against the `unknown` credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServiceRequest;
use actix_web::web;
use scim_store::health::{Credential, Refusal, Request, Traffic};
use scim_store::Store;

use crate::ScimApi;

/// Each credential's traffic in this process. Cheap to clone (one per
/// process, shared by every worker's app).
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    replica_id: String,
    records: Mutex<HashMap<Credential, Record>>,
}

#[derive(Debug, Default)]
struct Record {
    traffic: Traffic,
    changed: bool,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

/// Who a request came from, as far as authentication got: left in
/// [`crate::metrics::CredentialSlot`] by [`crate::auth::require_bearer`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The credential (`unknown` when none was recognised).
    pub credential: Credential,
    /// Its name, when known.
    pub name: Option<String>,
    /// Why a known credential was refused.
    pub refusal: Option<Refusal>,
}

impl Health {
    /// An empty record under a new replica id (one per process).
    pub fn new() -> Self {
        Health {
            inner: Arc::new(Inner {
                replica_id: uuid::Uuid::new_v4().to_string(),
                records: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// This process's replica id (the rows it saves).
    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    /// Counts one request of `caller` (`None`: no valid token presented).
    pub fn record(&self, caller: Option<&Caller>, request: &Request<'_>) {
        let Ok(mut records) = self.inner.records.lock() else {
            return;
        };
        let unknown;
        let credential = match caller {
            Some(c) => &c.credential,
            None => {
                unknown = Credential::unknown();
                &unknown
            }
        };
        if !records.contains_key(credential) {
            records.insert(credential.clone(), Record::default());
        }
        let Some(record) = records.get_mut(credential) else {
            return;
        };
        if let Some(name) = caller.and_then(|c| c.name.as_ref()) {
            if record.traffic.name.as_ref() != Some(name) {
                record.traffic.name = Some(name.clone());
            }
        }
        record.traffic.record(request);
        record.changed = true;
    }

    /// What this process recorded of every credential.
    pub fn snapshot(&self) -> Vec<(Credential, Traffic)> {
        match self.inner.records.lock() {
            Ok(records) => records
                .iter()
                .map(|(c, r)| (c.clone(), r.traffic.clone()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Writes this process's records to the database if any changed since
    /// the last save (`scim_store::health::save_traffic`). Blocking: call
    /// it on the blocking pool. On failure the records stay marked as
    /// changed, and the next save writes them.
    pub fn save(
        &self,
        store: &Store,
        now: time::OffsetDateTime,
    ) -> Result<bool, scim_store::StoreError> {
        let records = {
            let Ok(mut records) = self.inner.records.lock() else {
                return Ok(false);
            };
            if !records.values().any(|r| r.changed) {
                return Ok(false);
            }
            records.values_mut().for_each(|r| r.changed = false);
            records
                .iter()
                .map(|(c, r)| (c.clone(), r.traffic.clone()))
                .collect::<Vec<_>>()
        };
        let replica = self.inner.replica_id.clone();
        let saved =
            store.write(|conn| scim_store::health::save_traffic(conn, &replica, now, &records));
        if saved.is_err() {
            if let Ok(mut records) = self.inner.records.lock() {
                records.values_mut().for_each(|r| r.changed = true);
            }
        }
        saved.map(|()| true)
    }
}

/// After a 401 with a bearer token: the credential it belongs to when
/// scimd knows it (revoked or expired), for the record of this request.
/// A database failure leaves the request counted as `unknown`.
pub(crate) async fn identify_refused(api: &ScimApi, req: &ServiceRequest, secret: &str) {
    let store = api.store().clone();
    let secret = secret.to_owned();
    let now = api.config().clock.now_text();
    let found = web::block(move || {
        store.read(|conn| scim_store::health::identify_refused(conn, &secret, &now))
    })
    .await;
    if let Ok(Ok(Some(refused))) = found {
        crate::metrics::CredentialSlot::fill(
            req,
            None,
            Caller {
                credential: refused.credential,
                name: Some(refused.name),
                refusal: Some(refused.refusal),
            },
        );
    }
}
