DROP INDEX catalog_email_patterns_revision_idx;
DROP INDEX outbound_emails_recipient_recent_idx;
DROP INDEX outbound_emails_partner_recent_idx;
DROP INDEX sign_in_attempts_email_ip_idx;
CREATE INDEX sign_in_attempts_email_idx ON sign_in_attempts (email, attempted_at DESC);
DROP INDEX user_tokens_recent_idx;
DELETE FROM user_tokens WHERE purpose = 'claim_manager';
ALTER TABLE user_tokens DROP CONSTRAINT user_tokens_purpose_check;
ALTER TABLE user_tokens ADD CONSTRAINT user_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email'));
ALTER TABLE partner_managers DROP COLUMN claimed_at;
ALTER TABLE users DROP COLUMN session_generation;
