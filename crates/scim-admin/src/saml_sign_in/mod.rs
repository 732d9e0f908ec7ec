//! SAML 2.0 sign-in to the console: scimd is a service provider (SP) for
//! its own console, with the identity provider (IdP) whose SAML settings
//! User Synchronization requires (crate::saml, `scim_store::admin::saml`).
//!
//! - [`sp_metadata`]: the SP's metadata (SAML 2.0 Metadata §2.4.4), with
//!   its entity ID and its Assertion Consumer Service (ACS) URL.
//! - [`authn_request`]: the SP-initiated sign-in, an `AuthnRequest` over
//!   the HTTP-Redirect binding (SAML 2.0 Bindings §3.4). Its `ID` is
//!   remembered in the database, bound to the browser that asked
//!   ([`console`]).
//! - [`verify`]: the IdP's `Response` over the HTTP-POST binding (Bindings
//!   §3.5), verified by samael with libxmlsec1 (XML Signature), then timed
//!   against scimd's own [`scim_core::Clock`]. A response with
//!   `InResponseTo` must answer one of the browser's outstanding requests;
//!   one without (IdP-initiated) is accepted only when
//!   [`SamlSignInConfig::allow_idp_initiated`] is set.
//! - [`console`]: the routes, the administrator mapping and the session.

pub mod console;
#[cfg(any(test, feature = "testing"))]
pub mod test_idp;

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::{Error as SpError, ServiceProvider};
use time::OffsetDateTime;

/// Where the SP's metadata is served; also its entity ID (the value to
/// paste into Entra's "Identifier (Entity ID)").
pub const METADATA_PATH: &str = "/admin/saml/metadata";
/// The Assertion Consumer Service (Entra's "Reply URL").
pub const ACS_PATH: &str = "/admin/saml/acs";
/// Where the "Sign in with SAML" button leads.
pub const SIGN_IN_PATH: &str = "/admin/saml/sign-in";

/// The longest `ID` of an assertion that is remembered (replay
/// protection); SAML 2.0 Core §1.3.4 IDs are short random strings.
const MAX_ASSERTION_ID: usize = 256;
/// The largest `SAMLResponse` accepted, base64 (Entra's are a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// How assertions map to administrators, and the clock skew allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlSignInConfig {
    /// The attribute whose value is an administrator's username; `None`:
    /// the assertion's `NameID` (Entra's default is the user principal
    /// name).
    pub username_attribute: Option<String>,
    /// The attribute carrying the user's groups (Entra's group claim).
    pub group_attribute: String,
    /// When set, the assertion must carry this value in
    /// `group_attribute`, on top of naming an administrator.
    pub required_group: Option<String>,
    /// How far scimd's clock and the IdP's may differ: added to both ends
    /// of every validity window.
    pub clock_skew: time::Duration,
    /// Whether a response that answers no request (IdP-initiated: Entra's
    /// My Apps tile, its Test button) may sign in. Off by default: such a
    /// response is not bound to the browser that posts it, so one captured
    /// or issued to someone else can be posted from anywhere until it
    /// expires (SAML 2.0 Profiles §4.1.5; only the assertion ID's replay
    /// check stands in its way).
    pub allow_idp_initiated: bool,
}

impl Default for SamlSignInConfig {
    fn default() -> Self {
        SamlSignInConfig {
            username_attribute: None,
            group_attribute: "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
                .into(),
            required_group: None,
            clock_skew: time::Duration::minutes(2),
            allow_idp_initiated: false,
        }
    }
}

/// The SP's own addresses, derived from the public base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpUrls {
    /// The SP's entity ID: the metadata URL.
    pub entity_id: String,
    /// The ACS URL.
    pub acs_url: String,
    /// Where SP-initiated sign-in starts (Entra's optional "Sign on URL").
    pub sign_in_url: String,
}

impl SpUrls {
    /// The addresses under `base` (scheme and host, no trailing slash).
    pub fn under(base: &str) -> SpUrls {
        let base = base.trim_end_matches('/');
        SpUrls {
            entity_id: format!("{base}{METADATA_PATH}"),
            acs_url: format!("{base}{ACS_PATH}"),
            sign_in_url: format!("{base}{SIGN_IN_PATH}"),
        }
    }

    /// The addresses of the organization `slug`'s own sign-in under `base`
    /// (`/admin/o/{slug}/saml/…`, docs/ORGANIZATIONS.md); `None`: the
    /// default organization's, [`SpUrls::under`].
    pub fn of_org(base: &str, slug: Option<&str>) -> SpUrls {
        let Some(slug) = slug else {
            return SpUrls::under(base);
        };
        let base = base.trim_end_matches('/');
        let prefix = format!("{base}/admin/o/{slug}/saml");
        SpUrls {
            entity_id: format!("{prefix}/metadata"),
            acs_url: format!("{prefix}/acs"),
            sign_in_url: format!("{prefix}/sign-in"),
        }
    }
}

/// Why a SAML response did not sign anyone in: each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No IdP is configured.
    #[error("SAML sign-in is not configured: sign in with your password, then enter the identity provider's values on the SAML page")]
    NotConfigured,
    /// Not a SAML response at all.
    #[error("the identity provider's answer is not a SAML response ({0}); start again with Sign in with SAML")]
    Malformed(String),
    /// Neither the response nor the assertion is signed.
    #[error("the SAML response is not signed: set the identity provider to sign the SAML response or assertion (Entra: SAML Signing Certificate, Signing Option)")]
    Unsigned,
    /// Signed, but not by the configured certificate (or altered).
    #[error("the SAML response's signature does not verify with the identity provider certificate configured in scimd: if the identity provider's signing certificate changed, enter the new one on the SAML page")]
    BadSignature,
    /// Past its `NotOnOrAfter`.
    #[error("the SAML assertion expired at {0}: sign in again (if this repeats, check that the clocks of scimd and the identity provider agree)")]
    Expired(String),
    /// Before its `NotBefore`.
    #[error("the SAML assertion is not valid before {0}: check that the clocks of scimd and the identity provider agree")]
    NotYetValid(String),
    /// Meant for another SP.
    #[error("the SAML assertion is meant for another application: set the Identifier (Entity ID) in the identity provider to {0}")]
    Audience(String),
    /// Sent to another address.
    #[error("the SAML response was addressed to another URL: set the Reply URL (Assertion Consumer Service URL) in the identity provider to {0}")]
    Destination(String),
    /// Issued by another IdP.
    #[error("the SAML response was issued by {got:?}, not by the identity provider configured in scimd ({expected:?}): check the entity ID on the SAML page")]
    Issuer {
        /// The issuer in the response.
        got: String,
        /// The configured IdP.
        expected: String,
    },
    /// The IdP answered with an error status.
    #[error("the identity provider did not sign you in (status {0})")]
    Status(String),
    /// Already used.
    #[error("this SAML assertion was already used to sign in: start again with Sign in with SAML")]
    Replayed,
    /// `InResponseTo` names no request this browser has outstanding.
    #[error("this SAML response answers a sign-in that was not started in this browser, or that expired or was already answered: start again with Sign in with SAML on scimd's sign-in page (the sign-in must finish in the browser that started it, within 10 minutes)")]
    UnknownRequest,
    /// A response to no request, while IdP-initiated sign-in is off.
    #[error("this SAML response answers no sign-in request of scimd's (IdP-initiated sign-in, e.g. from the identity provider's app portal), which scimd refuses: use Sign in with SAML on scimd's sign-in page (an operator may allow IdP-initiated sign-in with admin.saml_allow_idp_initiated)")]
    IdpInitiated,
    /// Too many sign-ins in progress to remember another.
    #[error("too many SAML sign-ins are in progress: try again in a few minutes, or sign in with your password")]
    TooManyRequests,
    /// No username in the assertion.
    #[error(
        "the SAML assertion names no user ({0}): check the claims the identity provider sends"
    )]
    NoUser(String),
    /// The asserted user is no administrator.
    #[error("{0:?} is not a scimd administrator: an administrator must create an account of that name (console: Administrators), or sign in with a password")]
    UnknownAdmin(String),
    /// The asserted user is no organization administrator of the
    /// organization whose sign-in it used.
    #[error("{0:?} is not an organization administrator of this organization: its identity provider signs in only the administrators granted to it (console: Administrators); others sign in at the console's own sign-in page")]
    NotOfOrganization(String),
    /// The asserted user lacks the required group.
    #[error("{0:?} is not in the group that may sign in to scimd: add the user to that group in the identity provider")]
    MissingGroup(String),
    /// The administrator is disabled.
    #[error("the administrator {0:?} is disabled; another administrator can enable it (console: Administrators, or scimd admin enable NAME)")]
    Disabled(String),
}

impl Rejection {
    /// A short fixed code, recorded in the change log (never text from
    /// the response).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotConfigured => "not_configured",
            Rejection::Malformed(_) => "malformed",
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired(_) => "expired",
            Rejection::NotYetValid(_) => "not_yet_valid",
            Rejection::Audience(_) => "audience",
            Rejection::Destination(_) => "destination",
            Rejection::Issuer { .. } => "issuer",
            Rejection::Status(_) => "status",
            Rejection::Replayed => "replayed",
            Rejection::UnknownRequest => "unknown_request",
            Rejection::IdpInitiated => "idp_initiated",
            Rejection::TooManyRequests => "too_many_requests",
            Rejection::NoUser(_) => "no_user",
            Rejection::UnknownAdmin(_) => "unknown_admin",
            Rejection::NotOfOrganization(_) => "not_of_organization",
            Rejection::MissingGroup(_) => "missing_group",
            Rejection::Disabled(_) => "disabled",
        }
    }
}

/// What a verified assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The assertion's `ID`, remembered until `expires_at`.
    pub assertion_id: String,
    /// When the assertion stops being valid (with the skew): the end of
    /// its replay window.
    pub expires_at: OffsetDateTime,
    /// The asserted username (NameID or the configured attribute).
    pub username: String,
    /// The values of the group attribute.
    pub groups: Vec<String>,
    /// The request answered (its `InResponseTo`); `None`: IdP-initiated.
    pub in_response_to: Option<String>,
}

/// An SP-initiated sign-in: where to send the browser, and the request's
/// `ID` to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    /// The IdP's SSO URL with the deflated request and the `RelayState`.
    pub url: String,
    /// The request's `ID` (SAML 2.0 Core §3.2.1), which the response's
    /// `InResponseTo` names.
    pub id: String,
}

/// Escapes text for an XML attribute or element.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The SP's metadata document: entity ID, the ACS (HTTP-POST) and that
/// assertions must be signed (SAML 2.0 Metadata §2.4.4).
pub fn sp_metadata(sp: &SpUrls) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = xml_escape(&sp.entity_id),
        acs = xml_escape(&sp.acs_url),
    )
}

/// The base64 DER inside the stored PEM certificate.
fn certificate_base64(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect()
}

/// samael's service provider for the configured IdP. Its own time checks
/// read the system clock, so they are widened out of the way here and
/// [`verify`] times the assertion against scimd's clock instead (the one
/// sessions and tests share). `allow_idp_initiated`: skip samael's
/// `InResponseTo` checks (the response answers no request).
fn service_provider(
    idp: &scim_store::admin::saml::SamlSettings,
    sp: &SpUrls,
    allow_idp_initiated: bool,
) -> Result<ServiceProvider, Rejection> {
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        entity = xml_escape(&idp.entity_id),
        cert = certificate_base64(&idp.certificate_pem),
        sso = xml_escape(&idp.sso_url),
    );
    let idp_metadata = EntityDescriptor::from_str(&metadata).map_err(|e| {
        tracing::error!(error = %e, "the stored SAML settings do not make IdP metadata");
        Rejection::NotConfigured
    })?;
    let wide = chrono::Duration::days(365 * 100);
    Ok(ServiceProvider {
        entity_id: Some(sp.entity_id.clone()),
        acs_url: Some(sp.acs_url.clone()),
        metadata_url: Some(sp.entity_id.clone()),
        slo_url: None,
        idp_metadata,
        // Otherwise samael requires the response's and the bearer
        // confirmation's InResponseTo to be among the IDs given to
        // `parse_xml_response` (SAML 2.0 Profiles §4.1.4.3).
        allow_idp_initiated,
        max_issue_delay: wide,
        max_clock_skew: wide,
        allowed_signature_algorithms: Some(vec![
            samael::crypto::AllowedSignatureAlgorithm::RsaSha256,
            samael::crypto::AllowedSignatureAlgorithm::RsaSha384,
            samael::crypto::AllowedSignatureAlgorithm::RsaSha512,
            samael::crypto::AllowedSignatureAlgorithm::EcdsaSha256,
            samael::crypto::AllowedSignatureAlgorithm::EcdsaSha384,
            samael::crypto::AllowedSignatureAlgorithm::EcdsaSha512,
        ]),
        ..ServiceProvider::default()
    })
}

/// A new `AuthnRequest`: the IdP's SSO URL with the deflated request and
/// `RelayState` (HTTP-Redirect binding, SAML 2.0 Bindings §3.4.4), and
/// the request's `ID` (random, from samael).
pub fn authn_request(
    idp: &scim_store::admin::saml::SamlSettings,
    sp: &SpUrls,
    relay_state: &str,
) -> Result<AuthnRequest, Rejection> {
    let provider = service_provider(idp, sp, false)?;
    let request = provider
        .make_authentication_request(&idp.sso_url)
        .map_err(|e| Rejection::Malformed(e.to_string()))?;
    let id = request.id.clone();
    match request.redirect(relay_state) {
        Ok(Some(url)) => Ok(AuthnRequest {
            url: url.to_string(),
            id,
        }),
        Ok(None) => Err(Rejection::NotConfigured),
        Err(e) => Err(Rejection::Malformed(e.to_string())),
    }
}

/// What a first look at the document tells: whether it holds an XML
/// Signature element anywhere, and whether any element carries
/// `InResponseTo` (the response answers a request). Both only choose the
/// path and the message; the verification is samael's, over the signed
/// content. roxmltree refuses a DTD, so a document declaring entities
/// (XXE, entity expansion) is turned away here, before libxml2 sees it.
fn inspect(xml: &str) -> Result<(bool, bool), Rejection> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| Rejection::Malformed(format!("not well-formed XML without a DTD: {e}")))?;
    let signed = doc.descendants().any(|n| {
        n.tag_name().name() == "Signature"
            && n.tag_name().namespace() == Some("http://www.w3.org/2000/09/xmldsig#")
    });
    let answers = doc
        .descendants()
        .any(|n| n.attribute("InResponseTo").is_some());
    Ok((signed, answers))
}

fn rejection(e: SpError, sp: &SpUrls, idp_initiated: bool) -> Rejection {
    match e {
        SpError::ResponseInResponseToInvalid { .. }
        | SpError::AssertionInResponseToInvalid { .. } => {
            if idp_initiated {
                Rejection::IdpInitiated
            } else {
                Rejection::UnknownRequest
            }
        }
        SpError::FailedToValidateSignature => Rejection::BadSignature,
        SpError::AssertionConditionAudienceRestrictionFailed { .. } => {
            Rejection::Audience(sp.entity_id.clone())
        }
        SpError::DestinationValidationError { .. } | SpError::AssertionRecipientMismatch { .. } => {
            Rejection::Destination(sp.acs_url.clone())
        }
        SpError::ResponseIssuerMismatch { issuer, entity_id }
        | SpError::AssertionIssuerMismatch { issuer, entity_id } => Rejection::Issuer {
            got: issuer.unwrap_or_default(),
            expected: entity_id.unwrap_or_default(),
        },
        SpError::ResponseBadStatusCode { code } => Rejection::Status(code),
        other => Rejection::Malformed(other.to_string()),
    }
}

fn to_time(t: chrono::DateTime<chrono::Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map(|s| s + time::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos())))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Verifies the base64 `SAMLResponse` posted to the ACS at `now`: signed
/// by the configured certificate (the response or the assertion), from
/// the configured IdP, for this SP (audience, destination and recipient),
/// and within its validity windows widened by `config.clock_skew`
/// (SAML 2.0 Core §2.5.1.2: `NotOnOrAfter` is exclusive). A response
/// with `InResponseTo` must answer one of `outstanding` (the requests the
/// posting browser started); one without is refused unless
/// `config.allow_idp_initiated`. Replay is checked by the caller, which
/// remembers [`Verified::assertion_id`] and answers
/// [`Verified::in_response_to`] once.
pub fn verify(
    idp: &scim_store::admin::saml::SamlSettings,
    sp: &SpUrls,
    saml_response: &str,
    now: OffsetDateTime,
    config: &SamlSignInConfig,
    outstanding: &[String],
) -> Result<Verified, Rejection> {
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(Rejection::Malformed("too large".into()));
    }
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| Rejection::Malformed("SAMLResponse is not base64".into()))?;
    let xml = String::from_utf8(bytes)
        .map_err(|_| Rejection::Malformed("SAMLResponse is not UTF-8 XML".into()))?;
    let (signed, answers) = inspect(&xml)?;
    if !signed {
        return Err(Rejection::Unsigned);
    }
    let idp_initiated = !answers;
    let provider = service_provider(idp, sp, idp_initiated && config.allow_idp_initiated)?;
    let candidates: Vec<&str> = outstanding.iter().map(String::as_str).collect();
    let assertion = provider
        .parse_xml_response(&xml, Some(&candidates))
        .map_err(|e| rejection(e, sp, idp_initiated))?;
    // The request answered, from the signed assertion's bearer
    // confirmation (samael checked that it is among the candidates).
    let in_response_to = if idp_initiated {
        None
    } else {
        let answered = assertion
            .subject
            .iter()
            .flat_map(|s| s.subject_confirmations.iter().flatten())
            .filter_map(|c| c.subject_confirmation_data.as_ref()?.in_response_to.clone())
            .find(|id| outstanding.contains(id));
        Some(answered.ok_or(Rejection::UnknownRequest)?)
    };
    let expires_at = check_times(&assertion, now, config.clock_skew)?;
    if assertion.id.is_empty() || assertion.id.len() > MAX_ASSERTION_ID {
        return Err(Rejection::Malformed(
            "the assertion's ID is missing or too long".into(),
        ));
    }
    let username = asserted_username(&assertion, config)?;
    let groups = attribute_values(&assertion, &config.group_attribute);
    Ok(Verified {
        assertion_id: assertion.id.clone(),
        expires_at,
        username,
        groups,
        in_response_to,
    })
}

/// Checks the assertion's windows (its `Conditions` and its bearer
/// `SubjectConfirmationData`, SAML 2.0 Profiles §4.1.4.2) at `now`, with
/// `skew` on both ends; returns the end of the shortest window.
fn check_times(
    assertion: &Assertion,
    now: OffsetDateTime,
    skew: time::Duration,
) -> Result<OffsetDateTime, Rejection> {
    let fmt = scim_core::datetime::format;
    let mut not_before = Vec::new();
    let mut not_on_or_after = Vec::new();
    if let Some(c) = &assertion.conditions {
        not_before.extend(c.not_before.map(to_time));
        not_on_or_after.extend(c.not_on_or_after.map(to_time));
    }
    for confirmation in assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
    {
        if let Some(data) = &confirmation.subject_confirmation_data {
            not_before.extend(data.not_before.map(to_time));
            not_on_or_after.extend(data.not_on_or_after.map(to_time));
        }
    }
    if let Some(start) = not_before.into_iter().max() {
        if now < start - skew {
            return Err(Rejection::NotYetValid(fmt(start)));
        }
    }
    // samael requires the bearer confirmation's NotOnOrAfter, so there is
    // always an end.
    let end = not_on_or_after
        .into_iter()
        .min()
        .ok_or_else(|| Rejection::Malformed("the assertion has no NotOnOrAfter".into()))?;
    if now >= end + skew {
        return Err(Rejection::Expired(fmt(end)));
    }
    Ok(end + skew)
}

/// The values of the attribute `name` in the assertion's statements.
fn attribute_values(assertion: &Assertion, name: &str) -> Vec<String> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
        .flat_map(|a| a.values.iter().filter_map(|v| v.value.clone()))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn asserted_username(
    assertion: &Assertion,
    config: &SamlSignInConfig,
) -> Result<String, Rejection> {
    match &config.username_attribute {
        Some(name) => attribute_values(assertion, name)
            .into_iter()
            .next()
            .ok_or_else(|| Rejection::NoUser(format!("no attribute {name:?}"))),
        None => assertion
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .map(|n| n.value.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Rejection::NoUser("no NameID".into())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sp_urls_and_metadata() {
        let sp = SpUrls::under("https://scim.example.com/");
        assert_eq!(sp.entity_id, "https://scim.example.com/admin/saml/metadata");
        assert_eq!(sp.acs_url, "https://scim.example.com/admin/saml/acs");
        assert_eq!(
            sp.sign_in_url,
            "https://scim.example.com/admin/saml/sign-in"
        );
        let xml = sp_metadata(&SpUrls::under("https://a.example/?x=\"<&"));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(
            root.attribute("entityID"),
            Some("https://a.example/?x=\"<&/admin/saml/metadata")
        );
        let acs = doc
            .descendants()
            .find(|n| n.has_tag_name("AssertionConsumerService"))
            .unwrap();
        assert_eq!(
            acs.attribute("Binding"),
            Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
        );
    }

    #[test]
    fn the_authn_request_goes_to_the_sso_url_deflated_with_relay_state() {
        let idp = scim_store::admin::saml::SamlSettings {
            entity_id: "https://idp.example/".into(),
            sso_url: "https://idp.example/sso".into(),
            certificate_pem: include_str!("../../tests/fixtures/idp-signing.pem").into(),
            updated_at: String::new(),
            updated_by: String::new(),
        };
        let request =
            authn_request(&idp, &SpUrls::under("https://sp.example"), "/admin/users").unwrap();
        let url = request.url;
        assert!(!request.id.is_empty());
        assert!(
            url.starts_with("https://idp.example/sso?SAMLRequest="),
            "{url}"
        );
        assert!(url.ends_with("&RelayState=%2Fadmin%2Fusers"), "{url}");
    }

    #[test]
    fn garbage_is_malformed_and_an_unsigned_response_is_unsigned() {
        let idp = scim_store::admin::saml::SamlSettings {
            entity_id: "https://idp.example/".into(),
            sso_url: "https://idp.example/sso".into(),
            certificate_pem: include_str!("../../tests/fixtures/idp-signing.pem").into(),
            updated_at: String::new(),
            updated_by: String::new(),
        };
        let sp = SpUrls::under("https://sp.example");
        let now = OffsetDateTime::now_utc();
        let config = SamlSignInConfig::default();
        let check = |b64: &str| verify(&idp, &sp, b64, now, &config, &[]).unwrap_err();
        assert!(matches!(check("%%%"), Rejection::Malformed(_)));
        assert!(matches!(
            check(&STANDARD.encode([0xff, 0xfe])),
            Rejection::Malformed(_)
        ));
        let unsigned = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-12-06T10:00:00Z"/>"#;
        assert_eq!(check(&STANDARD.encode(unsigned)), Rejection::Unsigned);
        let dtd = format!("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{unsigned}");
        assert!(
            matches!(check(&STANDARD.encode(dtd)), Rejection::Malformed(m) if m.contains("DTD"))
        );
        assert!(matches!(
            check(&"A".repeat(MAX_RESPONSE_BYTES + 4)),
            Rejection::Malformed(_)
        ));
    }
}
