DROP TABLE sign_in_attempts;
DROP TABLE external_identities;
DROP TABLE user_tokens;
DROP TABLE users;
