ALTER TABLE invitations DROP COLUMN full_name;
