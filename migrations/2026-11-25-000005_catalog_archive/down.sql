ALTER TABLE catalogs DROP COLUMN archived_by;
ALTER TABLE catalogs DROP COLUMN archived_at;
