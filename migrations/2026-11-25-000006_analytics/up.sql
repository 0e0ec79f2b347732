-- Analytics: an accepted invitation's first enrolment through its catalog.
CREATE INDEX tracking_events_enrolments_idx ON tracking_events (catalog_id, user_id, occurred_at)
    WHERE name = 'enrollment.activated';
-- Analytics over the whole platform: invitations by creation time.
CREATE INDEX invitations_invited_at_idx ON invitations (invited_at);
