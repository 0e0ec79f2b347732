-- Sessions are revocable: a session cookie carries the generation it was issued under,
-- and logout, password changes, deactivation and "sign out everywhere" move it on.
ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;

-- A manager role takes effect once claimed: at once for a verified account, otherwise
-- when the person follows the emailed link and sets their password.
ALTER TABLE partner_managers ADD COLUMN claimed_at TIMESTAMPTZ;
UPDATE partner_managers pm SET claimed_at = pm.assigned_at
    FROM users u WHERE u.id = pm.user_id AND u.email_verified_at IS NOT NULL;

ALTER TABLE user_tokens DROP CONSTRAINT user_tokens_purpose_check;
ALTER TABLE user_tokens ADD CONSTRAINT user_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'claim_manager'));
-- Rate limits count a person's recent links of one purpose.
CREATE INDEX user_tokens_recent_idx ON user_tokens (user_id, purpose, created_at DESC);

-- Sign-in throttling counts failures per (account, client address) and per client address.
DROP INDEX sign_in_attempts_email_idx;
CREATE INDEX sign_in_attempts_email_ip_idx ON sign_in_attempts (email, client_ip, attempted_at DESC);

-- The hourly cap on a partner's invitation emails, and the once-an-hour notices to an
-- address, count recent emails.
CREATE INDEX outbound_emails_partner_recent_idx ON outbound_emails (partner_id, created_at DESC)
    WHERE partner_id IS NOT NULL;
CREATE INDEX outbound_emails_recipient_recent_idx ON outbound_emails (to_address, kind, created_at DESC);

-- Compiled pattern sets are cached per catalog, keyed by the newest pattern row.
CREATE INDEX catalog_email_patterns_revision_idx ON catalog_email_patterns (catalog_id, id);
