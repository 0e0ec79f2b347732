-- The name a list gave for the person invited, offered on their sign-up form.
ALTER TABLE invitations ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
