DROP INDEX invitations_catalog_open_idx;
DROP INDEX users_full_name_trgm_idx;
DROP INDEX users_email_trgm_idx;
DROP INDEX invitations_email_trgm_idx;
DROP EXTENSION IF EXISTS pg_trgm;
