//! Who made a change, and from where.

use serde::{Deserialize, Serialize};

use crate::db::org::OrgId;

/// The kind of actor a change is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A SCIM bearer token (the identity provider's secret token).
    ScimToken,
    /// An OAuth client, through an access token it was issued.
    OauthClient,
    /// An administrator signed in to the console.
    Admin,
    /// An admin API token.
    AdminToken,
    /// The command line (`scimd …`), by the operating-system user.
    Cli,
    /// scimd itself (the retention purge, a background job).
    System,
    /// Someone not authenticated (a failed sign-in).
    Anonymous,
}

impl ActorKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ScimToken => "scim_token",
            ActorKind::OauthClient => "oauth_client",
            ActorKind::Admin => "admin",
            ActorKind::AdminToken => "admin_token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }

    /// The kind of a stored form.
    pub fn parse(s: &str) -> Option<ActorKind> {
        [
            ActorKind::ScimToken,
            ActorKind::OauthClient,
            ActorKind::Admin,
            ActorKind::AdminToken,
            ActorKind::Cli,
            ActorKind::System,
            ActorKind::Anonymous,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Who made a change, and the request it came with: recorded on every
/// row of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// Its id (the token's or client's id, the administrator's id).
    pub id: Option<String>,
    /// Its name at the time (the token's name, the administrator's
    /// username, the operating-system user of the CLI).
    pub name: Option<String>,
    /// The request's id, when the change came over HTTP.
    pub request_id: Option<String>,
    /// The client's address, when the change came over HTTP.
    pub address: Option<String>,
    /// The organization it acted in: the change log row's `org_id`, and
    /// the scope of the writes made on its behalf.
    #[serde(default)]
    pub org: OrgId,
}

impl Actor {
    /// An actor of `kind` with an id and a name, not yet tied to a request.
    pub fn new(kind: ActorKind, id: Option<String>, name: Option<String>) -> Actor {
        Actor {
            kind,
            id,
            name,
            request_id: None,
            address: None,
            org: OrgId::DEFAULT,
        }
    }

    /// The same actor, acting in the organization `org`.
    pub fn in_org(mut self, org: OrgId) -> Actor {
        self.org = org;
        self
    }

    /// scimd itself.
    pub fn system(job: &str) -> Actor {
        Actor::new(ActorKind::System, None, Some(job.to_owned()))
    }

    /// The command line, run by the operating-system user `user`.
    pub fn cli(user: &str) -> Actor {
        Actor::new(ActorKind::Cli, None, Some(user.to_owned()))
    }

    /// The short form some admin tables keep in their `…_by` columns
    /// (`admin:NAME`, `token:NAME`, `cli:USER`…), derived from the kind
    /// and the name.
    pub fn label(&self) -> String {
        let prefix = match self.kind {
            ActorKind::Admin => "admin",
            ActorKind::AdminToken => "token",
            ActorKind::Cli => "cli",
            ActorKind::ScimToken => "scim_token",
            ActorKind::OauthClient => "oauth_client",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        };
        match &self.name {
            Some(name) => format!("{prefix}:{name}"),
            None => prefix.to_owned(),
        }
    }

    /// The same actor, for the request `request_id` from `address`.
    pub fn with_request(mut self, request_id: Option<String>, address: Option<String>) -> Actor {
        self.request_id = request_id;
        self.address = address;
        self
    }
}

/// The id of the HTTP request being served: the request-logging middleware
/// (scimd's `logging::request_log`) puts it in the request's extensions
/// and returns it in `X-Request-Id`, and handlers copy it into the
/// [`Actor`] of the changes the request makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);
