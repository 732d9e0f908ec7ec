DROP TABLE saml_requests;
