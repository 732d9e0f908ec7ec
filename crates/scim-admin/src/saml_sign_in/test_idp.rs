//! A test identity provider: an RSA key and a self-signed certificate
//! made at run time, and signed SAML responses shaped as each test needs
//! (samael builds and libxmlsec1 signs them, as a real IdP would).
//! Feature `testing`; never part of the served binary's behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use samael::attribute::{Attribute, AttributeValue};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use samael::schema::{
    Assertion, AttributeStatement, AudienceRestriction, Conditions, Issuer, Response, Status,
    StatusCode, Subject, SubjectConfirmation, SubjectConfirmationData, SubjectNameID,
};
use samael::signature::{DigestAlgorithm, Signature};
use samael::traits::ToXml;
use time::OffsetDateTime;

/// A key pair and its certificate.
pub struct TestIdp {
    pub entity_id: String,
    key_der: Vec<u8>,
    cert: CertificateDer,
}

/// What the next response says; [`TestIdp::assertion`] fills in a valid
/// one for the SP.
#[derive(Debug, Clone)]
pub struct Spec {
    pub issuer: String,
    pub name_id: String,
    pub audience: String,
    pub destination: String,
    pub recipient: String,
    pub assertion_id: String,
    pub issued: OffsetDateTime,
    pub not_before: OffsetDateTime,
    pub not_on_or_after: OffsetDateTime,
    pub attributes: Vec<(String, Vec<String>)>,
    /// The request answered (`InResponseTo` of the response and of the
    /// bearer confirmation); `None`: IdP-initiated.
    pub in_response_to: Option<String>,
    /// Sign the whole response (else only the assertion).
    pub sign_response: bool,
    /// Sign at all.
    pub signed: bool,
}

fn chrono_of(t: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap()
}

impl TestIdp {
    /// A new IdP with a fresh RSA-2048 key.
    pub fn new(entity_id: &str) -> TestIdp {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
        let cert = idp
            .create_certificate(&CertificateParams {
                common_name: "scimd test IdP",
                issuer_name: "scimd test IdP",
                days_until_expiration: 30,
            })
            .unwrap();
        TestIdp {
            entity_id: entity_id.to_owned(),
            key_der: idp.export_private_key_der().unwrap(),
            cert,
        }
    }

    /// The certificate, PEM (what an operator pastes into scimd).
    pub fn certificate_pem(&self) -> String {
        let b64 = STANDARD.encode(self.cert.der_data());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// A valid response for `name_id`, to the SP with entity ID
    /// `entity_id` and ACS `acs_url`, issued at `now`, valid 5 minutes.
    pub fn assertion(
        &self,
        name_id: &str,
        entity_id: &str,
        acs_url: &str,
        now: OffsetDateTime,
    ) -> Spec {
        Spec {
            issuer: self.entity_id.clone(),
            name_id: name_id.to_owned(),
            audience: entity_id.to_owned(),
            destination: acs_url.to_owned(),
            recipient: acs_url.to_owned(),
            assertion_id: format!("_a{}", uuid_like()),
            issued: now,
            not_before: now,
            not_on_or_after: now + time::Duration::minutes(5),
            attributes: Vec::new(),
            in_response_to: None,
            sign_response: true,
            signed: true,
        }
    }

    /// The response of `spec`, as the base64 `SAMLResponse` form field.
    pub fn response(&self, spec: &Spec) -> String {
        STANDARD.encode(self.response_xml(spec))
    }

    /// The response of `spec`, XML.
    pub fn response_xml(&self, spec: &Spec) -> String {
        let issuer = Issuer {
            value: Some(spec.issuer.clone()),
            ..Default::default()
        };
        let response_id = format!("_r{}", uuid_like());
        let assertion = Assertion {
            id: spec.assertion_id.clone(),
            issue_instant: chrono_of(spec.issued),
            version: "2.0".into(),
            issuer: issuer.clone(),
            signature: (spec.signed && !spec.sign_response)
                .then(|| template(&spec.assertion_id, &self.cert)),
            subject: Some(Subject {
                name_id: Some(SubjectNameID {
                    format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into()),
                    value: spec.name_id.clone(),
                }),
                subject_confirmations: Some(vec![SubjectConfirmation {
                    method: Some("urn:oasis:names:tc:SAML:2.0:cm:bearer".into()),
                    name_id: None,
                    subject_confirmation_data: Some(SubjectConfirmationData {
                        not_before: None,
                        not_on_or_after: Some(chrono_of(spec.not_on_or_after)),
                        recipient: Some(spec.recipient.clone()),
                        in_response_to: spec.in_response_to.clone(),
                        address: None,
                        content: None,
                    }),
                }]),
            }),
            conditions: Some(Conditions {
                not_before: Some(chrono_of(spec.not_before)),
                not_on_or_after: Some(chrono_of(spec.not_on_or_after)),
                audience_restrictions: Some(vec![AudienceRestriction {
                    audience: vec![spec.audience.clone()],
                }]),
                one_time_use: None,
                proxy_restriction: None,
            }),
            authn_statements: None,
            attribute_statements: (!spec.attributes.is_empty()).then(|| {
                vec![AttributeStatement {
                    attributes: spec
                        .attributes
                        .iter()
                        .map(|(name, values)| Attribute {
                            friendly_name: None,
                            name: Some(name.clone()),
                            name_format: None,
                            values: values
                                .iter()
                                .map(|v| AttributeValue {
                                    attribute_type: None,
                                    value: Some(v.clone()),
                                })
                                .collect(),
                        })
                        .collect(),
                }]
            }),
        };
        let response = Response {
            id: response_id.clone(),
            in_response_to: spec.in_response_to.clone(),
            version: "2.0".into(),
            issue_instant: chrono_of(spec.issued),
            destination: Some(spec.destination.clone()),
            consent: None,
            issuer: Some(issuer),
            signature: (spec.signed && spec.sign_response)
                .then(|| template(&response_id, &self.cert)),
            status: Some(Status {
                status_code: StatusCode {
                    value: Some("urn:oasis:names:tc:SAML:2.0:status:Success".into()),
                },
                status_message: None,
                status_detail: None,
            }),
            encrypted_assertion: None,
            assertion: Some(assertion),
        };
        let xml = response.to_string().unwrap();
        if spec.signed {
            Crypto::sign_xml(xml, &self.key_der).unwrap()
        } else {
            xml
        }
    }
}

/// The `ID` of the `AuthnRequest` in the `SAMLRequest` parameter of
/// `redirect_url` (the HTTP-Redirect binding: deflated, base64, URL
/// encoded; SAML 2.0 Bindings §3.4.4.1), as an IdP reads it.
pub fn request_id(redirect_url: &str) -> String {
    use std::io::Read;
    let query = redirect_url.split_once('?').unwrap().1;
    let encoded = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "SAMLRequest")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let deflated = STANDARD.decode(encoded).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut xml)
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "AuthnRequest", "{xml}");
    root.attribute("ID").unwrap().to_owned()
}

/// An enveloped RSA-SHA256 signature over the element `id`, with a
/// SHA-256 digest (as Entra signs; samael's template digests with SHA-1,
/// which scimd does not accept).
fn template(id: &str, cert: &CertificateDer) -> Signature {
    let mut sig = Signature::template(id, cert);
    for r in &mut sig.signed_info.reference {
        r.digest_method.algorithm = DigestAlgorithm::Sha256;
    }
    sig
}

/// A random hex string (assertion and response IDs must start with a
/// letter or `_`, SAML 2.0 Core §1.3.4).
fn uuid_like() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
