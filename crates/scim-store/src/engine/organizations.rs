//! The organizations as every request resolves them, from memory: a SCIM
//! request names its organization in the URL (`/scim/v2/o/{slug}`) or by
//! its `Host`, and resolving that must cost no database round trip.
//!
//! The whole list (small: one row per customer directory) is read again
//! when it is older than [`REFRESH`], or at once after this process
//! changed it ([`OrganizationCache::invalidate`]). Another replica's
//! change (a new organization, a suspension, a deletion) is therefore seen
//! within [`REFRESH`] on every replica (docs/ORGANIZATIONS.md). A deleted
//! organization's tokens are deleted with it, so during that second its
//! slug still resolves but every request gets 401.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::admin::organizations::Organization;

/// How long the list is used before it is read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The organizations by slug and by host name.
#[derive(Debug, Default)]
pub struct Organizations {
    by_slug: HashMap<String, Arc<Organization>>,
    by_host: HashMap<String, Arc<Organization>>,
}

impl Organizations {
    fn new(list: Vec<Organization>) -> Organizations {
        let mut by_slug = HashMap::with_capacity(list.len());
        let mut by_host = HashMap::new();
        for org in list {
            let org = Arc::new(org);
            if let Some(host) = &org.host {
                by_host.insert(host.clone(), Arc::clone(&org));
            }
            by_slug.insert(org.slug.clone(), org);
        }
        Organizations { by_slug, by_host }
    }

    /// The organization whose slug is `slug`.
    pub fn by_slug(&self, slug: &str) -> Option<&Arc<Organization>> {
        self.by_slug.get(slug)
    }

    /// The organization whose id is `id`.
    pub fn by_id(&self, id: crate::db::org::OrgId) -> Option<&Arc<Organization>> {
        self.by_slug.values().find(|o| o.id == id)
    }

    /// Every organization, the default one first, then by slug.
    pub fn all(&self) -> Vec<&Arc<Organization>> {
        let mut all: Vec<&Arc<Organization>> = self.by_slug.values().collect();
        all.sort_by(|a, b| {
            (a.id != crate::db::org::OrgId::DEFAULT, &a.slug)
                .cmp(&(b.id != crate::db::org::OrgId::DEFAULT, &b.slug))
        });
        all
    }

    /// The organization whose host name is `host` (a `Host` header value:
    /// any port is ignored, and case).
    pub fn by_host(&self, host: &str) -> Option<&Arc<Organization>> {
        if self.by_host.is_empty() {
            return None;
        }
        let name = match host.rsplit_once(':') {
            // Not an IPv6 literal's colon.
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        self.by_host.get(&name.to_ascii_lowercase())
    }
}

/// The cached list ([`Organizations`]).
#[derive(Debug, Default)]
pub(crate) struct OrganizationCache {
    state: RwLock<Option<(Instant, Arc<Organizations>)>>,
}

impl OrganizationCache {
    /// The cached list if it is fresh.
    pub(crate) fn fresh(&self) -> Option<Arc<Organizations>> {
        let s = self.state.read().ok()?;
        let (read_at, orgs) = s.as_ref()?;
        (read_at.elapsed() < REFRESH).then(|| Arc::clone(orgs))
    }

    /// Records the list just read (at `read_at`).
    pub(crate) fn store(&self, list: Vec<Organization>, read_at: Instant) -> Arc<Organizations> {
        let orgs = Arc::new(Organizations::new(list));
        if let Ok(mut s) = self.state.write() {
            *s = Some((read_at, Arc::clone(&orgs)));
        }
        orgs
    }

    /// Makes the next request read the list again.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut s) = self.state.write() {
            *s = None;
        }
    }
}
