DROP TABLE schema_extensions;
