//! Validation of SAML sign-in settings: the IdP's signing certificate (PEM
//! or bare base64 DER, parsed as X.509 — RFC 5280) and IdP metadata XML
//! (SAML 2.0 Metadata, OASIS saml-metadata-2.0-os §2.4.3), from which the
//! entity ID, the SSO URL and the signing certificate are extracted.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::FieldError;

/// Largest accepted metadata document or certificate, in bytes.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// What the API shows about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CertificateInfo {
    /// The subject's distinguished name.
    #[schema(example = "CN=Microsoft Azure Federated SSO Certificate")]
    pub subject: String,
    /// The issuer's distinguished name.
    #[schema(example = "CN=Microsoft Azure Federated SSO Certificate")]
    pub issuer: String,
    /// SHA-256 of the DER encoding, upper-case hex pairs separated by colons.
    #[schema(
        example = "3A:1F:C2:07:9B:5E:D4:88:61:0C:AF:23:E9:7D:4B:15:92:C6:0E:F8:37:A1:5D:B2:6C:09:E4:7F:18:D3:A5:2B"
    )]
    pub sha256_fingerprint: String,
    /// Start of validity (RFC 3339).
    #[schema(example = "2026-01-15T00:00:00Z")]
    pub not_before: String,
    /// End of validity (RFC 3339).
    #[schema(example = "2029-01-15T00:00:00Z")]
    pub not_after: String,
}

/// A validated certificate: its normalised PEM and what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCertificate {
    /// `-----BEGIN CERTIFICATE-----` … with 64-column base64.
    pub pem: String,
    /// What to show.
    pub info: CertificateInfo,
}

/// What is wrong with a certificate x509-parser could not read, in words
/// an operator can act on (its own errors read `Der(UnexpectedTag { … })`).
fn der_problem(der: &[u8], e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    use x509_parser::der_parser::error::BerError;
    use x509_parser::error::X509Error;
    use x509_parser::nom::error::ErrorKind;
    const WHAT_TO_SEND: &str = "send the identity provider's SAML signing certificate \
        (in Entra: Certificate (Base64)), from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----";
    // Every certificate is a DER SEQUENCE (tag 0x30, RFC 5280 §4.1).
    if der.first() != Some(&0x30) {
        return format!(
            "not an X.509 certificate: the data decodes, but not to a certificate (it may be a key, a certificate request or another file); {WHAT_TO_SEND}"
        );
    }
    match e {
        x509_parser::nom::Err::Incomplete(_)
        | x509_parser::nom::Err::Error(
            X509Error::NomError(ErrorKind::Eof) | X509Error::Der(BerError::Incomplete(_)),
        )
        | x509_parser::nom::Err::Failure(
            X509Error::NomError(ErrorKind::Eof) | X509Error::Der(BerError::Incomplete(_)),
        ) => {
            format!("the certificate is cut short (part of it is missing); {WHAT_TO_SEND}")
        }
        x509_parser::nom::Err::Error(X509Error::Der(_))
        | x509_parser::nom::Err::Failure(X509Error::Der(_)) => format!(
            "not an X.509 certificate: the data decodes, but not to a certificate (it may be a key, a certificate request or another file); {WHAT_TO_SEND}"
        ),
        x509_parser::nom::Err::Error(inner) | x509_parser::nom::Err::Failure(inner) => format!(
            "not an X.509 certificate that scimd can read: one of its parts is damaged ({inner}); {WHAT_TO_SEND}"
        ),
    }
}

/// Parses `input` (PEM, or the bare base64 found in metadata) as an X.509
/// certificate that is valid now. Errors name the field `field`.
pub fn parse_certificate(input: &str, field: &str) -> Result<ValidCertificate, FieldError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(FieldError::new(field, "a PEM certificate is required"));
    }
    if input.len() > MAX_INPUT_BYTES {
        return Err(FieldError::new(field, "the certificate is too large"));
    }
    let b64: String = if input.contains("-----BEGIN") {
        let start = "-----BEGIN CERTIFICATE-----";
        let end = "-----END CERTIFICATE-----";
        let (Some(a), Some(b)) = (input.find(start), input.find(end)) else {
            return Err(FieldError::new(
                field,
                "expected a PEM block between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- (not a key or a request)",
            ));
        };
        if b < a {
            return Err(FieldError::new(field, "malformed PEM block"));
        }
        input[a + start.len()..b].to_owned()
    } else {
        input.to_owned()
    };
    let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64.as_bytes()).map_err(|_| {
        FieldError::new(
            field,
            "the certificate is not valid base64 inside its PEM block",
        )
    })?;
    let (rest, cert) = X509Certificate::from_der(&der)
        .map_err(|e| FieldError::new(field, der_problem(&der, &e)))?;
    if !rest.is_empty() {
        return Err(FieldError::new(
            field,
            "unexpected data after the certificate; send exactly one certificate",
        ));
    }
    let validity = cert.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| scim_core::datetime::format(t);
    if not_after <= now {
        return Err(FieldError::new(
            field,
            format!(
                "the certificate expired on {}; download the identity provider's current signing certificate",
                fmt(not_after)
            ),
        ));
    }
    if not_before > now {
        return Err(FieldError::new(
            field,
            format!("the certificate is not valid before {}", fmt(not_before)),
        ));
    }
    let digest = Sha256::digest(&der);
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let encoded = STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(ValidCertificate {
        pem,
        info: CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sha256_fingerprint: fingerprint,
            not_before: fmt(not_before),
            not_after: fmt(not_after),
        },
    })
}

/// Checks an entity ID: non-empty, at most 1024 characters (SAML 2.0
/// Core §8.3.6 limits entity identifiers to 1024).
pub fn check_entity_id(raw: &str, field: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "the identity provider's entity ID is required (e.g. https://sts.windows.net/<tenant-id>/)"));
    }
    if v.chars().count() > 1024 {
        return Err(FieldError::new(field, "at most 1024 characters"));
    }
    Ok(v.to_owned())
}

/// Checks an SSO URL: an absolute `https://` URL with a host.
pub fn check_sso_url(raw: &str, field: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    let host = v
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !v.contains(char::is_whitespace) && v.len() <= 2048 => {
            Ok(v.to_owned())
        }
        _ => Err(FieldError::new(
            field,
            "must be an absolute https:// URL, e.g. https://login.microsoftonline.com/<tenant-id>/saml2",
        )),
    }
}

/// What IdP metadata yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMetadata {
    /// `EntityDescriptor/@entityID`.
    pub entity_id: String,
    /// The `SingleSignOnService` location (HTTP-Redirect preferred, else HTTP-POST).
    pub sso_url: String,
    /// The signing certificate.
    pub certificate: ValidCertificate,
}

const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Parses IdP metadata XML. Errors name the field `field`.
pub fn parse_metadata(xml: &str, field: &str) -> Result<ParsedMetadata, FieldError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(FieldError::new(field, "the metadata document is too large"));
    }
    // roxmltree rejects DTDs by default, so entity-expansion attacks fail.
    let doc = roxmltree::Document::parse(xml.trim_start_matches('\u{feff}'))
        .map_err(|e| FieldError::new(field, format!("not well-formed XML: {e}")))?;
    let descriptor = doc
        .descendants()
        .find(|n| n.has_tag_name("EntityDescriptor"))
        .ok_or_else(|| {
            FieldError::new(field, "no EntityDescriptor: expected SAML 2.0 IdP metadata")
        })?;
    let entity_id = descriptor
        .attribute("entityID")
        .ok_or_else(|| FieldError::new(field, "the EntityDescriptor has no entityID attribute"))?;
    let entity_id = check_entity_id(entity_id, field)?;
    let idp = descriptor
        .descendants()
        .find(|n| n.has_tag_name("IDPSSODescriptor"))
        .ok_or_else(|| {
            FieldError::new(
                field,
                "no IDPSSODescriptor: this is not an identity provider's metadata",
            )
        })?;
    let services: Vec<_> = idp
        .children()
        .filter(|n| n.has_tag_name("SingleSignOnService"))
        .collect();
    let location = [REDIRECT, POST]
        .iter()
        .find_map(|b| {
            services
                .iter()
                .find(|s| s.attribute("Binding") == Some(*b))
                .and_then(|s| s.attribute("Location"))
        })
        .ok_or_else(|| {
            FieldError::new(
                field,
                "no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding",
            )
        })?;
    let sso_url = check_sso_url(location, field)?;
    let cert_text = idp
        .children()
        .filter(|n| n.has_tag_name("KeyDescriptor"))
        .filter(|k| matches!(k.attribute("use"), None | Some("signing")))
        .find_map(|k| {
            k.descendants()
                .find(|n| n.has_tag_name("X509Certificate"))
                .and_then(|n| n.text())
        })
        .ok_or_else(|| {
            FieldError::new(
                field,
                "no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate)",
            )
        })?;
    let certificate = parse_certificate(cert_text, field)?;
    Ok(ParsedMetadata {
        entity_id,
        sso_url,
        certificate,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const PEM: &str = include_str!("../tests/fixtures/idp-signing.pem");
    const EXPIRED: &str = include_str!("../tests/fixtures/expired.pem");

    fn bare(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    pub(crate) fn metadata(cert_b64: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_x" entityID="https://sts.windows.net/0000-tenant/" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>bm90IHRoaXM=</X509Certificate></X509Data></KeyInfo></KeyDescriptor></RoleDescriptor>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{cert_b64}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://login.microsoftonline.com/0000-tenant/saml2/post" />
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/0000-tenant/saml2" />
  </IDPSSODescriptor>
</EntityDescriptor>"#
        )
    }

    #[test]
    fn a_pem_certificate_is_described() {
        let c = parse_certificate(PEM, "certificate_pem").unwrap();
        assert_eq!(
            c.info.subject,
            "CN=Microsoft Azure Federated SSO Certificate"
        );
        assert_eq!(c.info.sha256_fingerprint.len(), 32 * 3 - 1);
        assert!(c.info.not_after.starts_with("2126-"));
        assert!(c.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        // The same certificate as bare base64, as metadata carries it.
        let again = parse_certificate(&bare(PEM), "x").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_certificates_say_why() {
        let whole = bare(PEM);
        let cases = [
            ("", "required"),
            (
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
                "base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "PEM block",
            ),
            ("aGVsbG8gd29ybGQ=", "not an X.509"),
            // The first bytes of a real certificate only: cut short.
            (&whole[..40], "cut short"),
            (EXPIRED, "expired on 2021-01-01"),
        ];
        for (input, why) in cases {
            let err = parse_certificate(input, "certificate_pem").unwrap_err();
            assert_eq!(err.field, "certificate_pem");
            assert!(err.message.contains(why), "{input:?}: {}", err.message);
            assert!(!err.message.contains("Der("), "{}", err.message);
        }
    }

    #[test]
    fn metadata_yields_entity_id_sso_url_and_signing_certificate() {
        let m = parse_metadata(&metadata(&bare(PEM)), "metadata_xml").unwrap();
        assert_eq!(m.entity_id, "https://sts.windows.net/0000-tenant/");
        // HTTP-Redirect is preferred over HTTP-POST.
        assert_eq!(
            m.sso_url,
            "https://login.microsoftonline.com/0000-tenant/saml2"
        );
        assert_eq!(
            m.certificate.info.subject,
            "CN=Microsoft Azure Federated SSO Certificate"
        );
    }

    #[test]
    fn bad_metadata_says_why() {
        let cases = [
            ("not xml".to_string(), "well-formed"),
            ("<a/>".to_string(), "EntityDescriptor"),
            (
                r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"/>"#.to_string(),
                "entityID",
            ),
            (
                r#"<EntityDescriptor entityID="x" xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><SPSSODescriptor/></EntityDescriptor>"#.to_string(),
                "IDPSSODescriptor",
            ),
            (metadata(&bare(EXPIRED)), "expired"),
            (
                metadata(&bare(PEM)).replace("https://login", "http://login"),
                "https://",
            ),
            (
                "<!DOCTYPE x [<!ENTITY a \"b\">]><EntityDescriptor/>".to_string(),
                "well-formed",
            ),
        ];
        for (xml, why) in cases {
            let err = parse_metadata(&xml, "metadata_xml").unwrap_err();
            assert_eq!(err.field, "metadata_xml");
            assert!(err.message.contains(why), "{why}: {}", err.message);
        }
    }

    #[test]
    fn urls_and_entity_ids() {
        assert!(check_sso_url("https://idp.example.com/sso", "f").is_ok());
        for bad in ["http://idp", "https://", "idp.example.com", "https://a b"] {
            assert!(check_sso_url(bad, "f").is_err(), "{bad}");
        }
        assert!(check_entity_id("  ", "f").is_err());
        assert!(check_entity_id(&"x".repeat(1025), "f").is_err());
        assert_eq!(check_entity_id(" urn:x ", "f").unwrap(), "urn:x");
    }
}
