DROP TABLE user_values;
DROP TABLE users;
DROP TABLE scim_tokens;
