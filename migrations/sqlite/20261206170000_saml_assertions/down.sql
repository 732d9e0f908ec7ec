DROP TABLE saml_assertions;
