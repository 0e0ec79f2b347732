DROP TABLE outbound_emails;
DROP TABLE tracking_events;
DROP TABLE audit_entries;
DROP TABLE api_tokens;
