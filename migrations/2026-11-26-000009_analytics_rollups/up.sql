-- Analytics read daily roll-ups instead of scanning events and invitations. Triggers keep
-- them in the same transaction as the rows they count, whoever writes those rows. Days
-- are the local days of the catalog's partner; changing a partner's time zone rebuilds
-- its roll-ups.
--
-- Counters are written as deltas (inserts only, never an update of a shared row), so
-- concurrent writers never wait for or deadlock on each other; the background runner
-- folds the deltas of a key into one row from time to time. A reader sums the rows of a
-- key and is exact either way.

-- An accepted invitation's first course enrolment through its catalog (at or after the
-- acceptance), and whether any of those enrolments took a paid seat.
ALTER TABLE invitations ADD COLUMN first_enrolment_at TIMESTAMPTZ,
    ADD COLUMN given_paid_seat BOOLEAN NOT NULL DEFAULT false;

-- Events by day, name, reason and whether they concern a paid seat.
CREATE TABLE analytics_event_days (
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    paid_seat BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    folded BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX analytics_event_days_idx ON analytics_event_days (catalog_id, day)
    INCLUDE (name, reason, paid_seat, n);
CREATE UNIQUE INDEX analytics_event_days_folded_idx
    ON analytics_event_days (catalog_id, day, name, reason, paid_seat) WHERE folded;
CREATE INDEX analytics_event_days_unfolded_idx ON analytics_event_days (catalog_id)
    WHERE NOT folded;

-- Invitations by the day they were created, channel and whether they were emailed, with
-- what has come of them so far.
CREATE TABLE analytics_cohort_days (
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    channel TEXT NOT NULL,
    emailed BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    declined BIGINT NOT NULL,
    enrolled BIGINT NOT NULL,
    licensed BIGINT NOT NULL,
    folded BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX analytics_cohort_days_idx ON analytics_cohort_days (catalog_id, day)
    INCLUDE (channel, emailed, created, accepted, declined, enrolled, licensed);
CREATE UNIQUE INDEX analytics_cohort_days_folded_idx
    ON analytics_cohort_days (catalog_id, day, channel, emailed) WHERE folded;
CREATE INDEX analytics_cohort_days_unfolded_idx ON analytics_cohort_days (catalog_id)
    WHERE NOT folded;

-- Learners who did something on a day (accepted, enrolled, or were refused a course).
CREATE TABLE analytics_active_days (
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (catalog_id, day, user_id)
);

-- Weekly active learners without counting them again on each view: who was active in a
-- week, per catalog (level 2), per partner (level 1, scope_id the partner) and on the
-- whole platform (level 0, scope_id 0), and how many (deltas, as above). A week starts
-- on Monday of the catalog's partner's local calendar.
CREATE TABLE analytics_active_weeks (
    level SMALLINT NOT NULL CHECK (level IN (0, 1, 2)),
    scope_id BIGINT NOT NULL,
    week DATE NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (level, scope_id, week, user_id)
);
CREATE TABLE analytics_active_week_counts (
    level SMALLINT NOT NULL,
    scope_id BIGINT NOT NULL,
    week DATE NOT NULL,
    n BIGINT NOT NULL,
    folded BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX analytics_active_week_counts_idx ON analytics_active_week_counts (level, scope_id, week)
    INCLUDE (n);
CREATE UNIQUE INDEX analytics_active_week_counts_folded_idx
    ON analytics_active_week_counts (level, scope_id, week) WHERE folded;
CREATE INDEX analytics_active_week_counts_unfolded_idx ON analytics_active_week_counts (level)
    WHERE NOT folded;

-- The Monday starting a date's week.
CREATE FUNCTION analytics_week(day DATE) RETURNS DATE
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN day - (day - DATE '1970-01-05') % 7;

-- The delays: answers to emailed invitations, and first enrolments after acceptance.
CREATE INDEX invitations_answer_delay_idx ON invitations (catalog_id, invited_at)
    INCLUDE (accepted_at, declined_at)
    WHERE send_count > 0 AND (accepted_at IS NOT NULL OR declined_at IS NOT NULL);
CREATE INDEX invitations_enrolment_delay_idx ON invitations (catalog_id, invited_at)
    INCLUDE (accepted_at, first_enrolment_at)
    WHERE first_enrolment_at IS NOT NULL;

CREATE FUNCTION analytics_paid_seat(data JSONB) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN data ? 'licence_id' AND data ->> 'licence_id' IS NOT NULL;

-- New events: counted by day, their learners marked active, and accepted invitations
-- given their first enrolment.
CREATE FUNCTION analytics_events_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_event_days (catalog_id, day, name, reason, paid_seat, n)
    SELECT a.catalog_id, (a.occurred_at AT TIME ZONE p.time_zone)::date, a.name,
           COALESCE(a.reason, ''), analytics_paid_seat(a.data), COUNT(*)
    FROM added a JOIN catalogs c ON c.id = a.catalog_id JOIN partners p ON p.id = c.partner_id
    GROUP BY 1, 2, 3, 4, 5;

    WITH active AS (
        SELECT DISTINCT a.catalog_id, c.partner_id, (a.occurred_at AT TIME ZONE p.time_zone)::date AS day,
               a.user_id
        FROM added a JOIN catalogs c ON c.id = a.catalog_id JOIN partners p ON p.id = c.partner_id
        WHERE a.user_id IS NOT NULL
          AND a.name IN ('invitation.accepted', 'enrollment.activated', 'enrollment.blocked')
    ), days AS (
        INSERT INTO analytics_active_days (catalog_id, day, user_id)
        SELECT catalog_id, day, user_id FROM active ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
    ), first_in_week AS (
        INSERT INTO analytics_active_weeks (level, scope_id, week, user_id)
        SELECT * FROM (
            SELECT 2::smallint, catalog_id, analytics_week(day), user_id FROM active
            UNION SELECT 1::smallint, partner_id, analytics_week(day), user_id FROM active
            UNION SELECT 0::smallint, 0, analytics_week(day), user_id FROM active
        ) s ORDER BY 1, 2, 3, 4
        ON CONFLICT DO NOTHING
        RETURNING level, scope_id, week
    )
    INSERT INTO analytics_active_week_counts (level, scope_id, week, n)
    SELECT level, scope_id, week, COUNT(*) FROM first_in_week GROUP BY 1, 2, 3;

    UPDATE invitations i
    SET first_enrolment_at = LEAST(i.first_enrolment_at, x.first_at),
        given_paid_seat = i.given_paid_seat OR x.paid
    FROM (SELECT i2.id, MIN(a.occurred_at) AS first_at, bool_or(analytics_paid_seat(a.data)) AS paid
          FROM added a
          JOIN invitations i2 ON i2.catalog_id = a.catalog_id AND i2.user_id = a.user_id
               AND i2.accepted_at <= a.occurred_at
          WHERE a.name = 'enrollment.activated'
          GROUP BY i2.id) x
    WHERE i.id = x.id
      AND (i.first_enrolment_at IS NULL OR x.first_at < i.first_enrolment_at
           OR (x.paid AND NOT i.given_paid_seat));
    RETURN NULL;
END $$;

CREATE TRIGGER analytics_events_added AFTER INSERT ON tracking_events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_added();

-- An invitation accepted (again), or by someone else: its first enrolment is looked up
-- among the events already recorded.
CREATE FUNCTION analytics_invitation_first_enrolment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accepted_at IS NULL OR NEW.user_id IS NULL THEN
        NEW.first_enrolment_at := NULL;
        NEW.given_paid_seat := false;
    ELSIF TG_OP = 'INSERT' OR NEW.accepted_at IS DISTINCT FROM OLD.accepted_at
          OR NEW.user_id IS DISTINCT FROM OLD.user_id OR NEW.catalog_id <> OLD.catalog_id THEN
        SELECT MIN(e.occurred_at), COALESCE(bool_or(analytics_paid_seat(e.data)), false)
        INTO NEW.first_enrolment_at, NEW.given_paid_seat
        FROM tracking_events e
        WHERE e.name = 'enrollment.activated' AND e.catalog_id = NEW.catalog_id
          AND e.user_id = NEW.user_id AND e.occurred_at >= NEW.accepted_at;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER analytics_invitation_first_enrolment
    BEFORE INSERT OR UPDATE OF accepted_at, user_id, catalog_id ON invitations
    FOR EACH ROW EXECUTE FUNCTION analytics_invitation_first_enrolment();

-- Invitations inserted, changed or deleted: their cohort counts move by the difference.
-- One function for the three triggers: each names the transition tables it has.
CREATE FUNCTION analytics_cohort_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    signed TEXT := 'SELECT catalog_id, invited_at, channel, send_count > 0 AS emailed, %s AS sign,
                           (accepted_at IS NOT NULL)::int AS accepted, (declined_at IS NOT NULL)::int AS declined,
                           (first_enrolment_at IS NOT NULL)::int AS enrolled, given_paid_seat::int AS licensed
                    FROM %I';
    source TEXT;
BEGIN
    source := CASE TG_OP
        WHEN 'INSERT' THEN format(signed, '1', 'added')
        WHEN 'DELETE' THEN format(signed, '-1', 'removed')
        ELSE format(signed, '1', 'added') || ' UNION ALL ' || format(signed, '-1', 'removed')
    END;
    EXECUTE format(
        'INSERT INTO analytics_cohort_days (catalog_id, day, channel, emailed, created, accepted,
                                            declined, enrolled, licensed)
         SELECT * FROM (
             SELECT r.catalog_id, (r.invited_at AT TIME ZONE p.time_zone)::date AS day, r.channel,
                    r.emailed, SUM(r.sign) AS created, SUM(r.sign * r.accepted) AS accepted,
                    SUM(r.sign * r.declined) AS declined, SUM(r.sign * r.enrolled) AS enrolled,
                    SUM(r.sign * r.licensed) AS licensed
             FROM (%s) r
             JOIN catalogs c ON c.id = r.catalog_id JOIN partners p ON p.id = c.partner_id
             GROUP BY 1, 2, 3, 4
         ) delta
         WHERE (created, accepted, declined, enrolled, licensed) <> (0, 0, 0, 0, 0)
         ORDER BY 1, 2, 3, 4', source);
    RETURN NULL;
END $$;

CREATE TRIGGER analytics_cohort_added AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION analytics_cohort_changed();
CREATE TRIGGER analytics_cohort_updated AFTER UPDATE ON invitations
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_cohort_changed();
CREATE TRIGGER analytics_cohort_removed AFTER DELETE ON invitations
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION analytics_cohort_changed();

-- Everything of a partner's catalogs counted again from the events and invitations, in
-- its current time zone, as folded rows.
CREATE FUNCTION analytics_rebuild(of_partner BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analytics_event_days WHERE catalog_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner);
    DELETE FROM analytics_cohort_days WHERE catalog_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner);
    DELETE FROM analytics_active_days WHERE catalog_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner);

    INSERT INTO analytics_event_days (catalog_id, day, name, reason, paid_seat, n, folded)
    SELECT e.catalog_id, (e.occurred_at AT TIME ZONE p.time_zone)::date, e.name,
           COALESCE(e.reason, ''), analytics_paid_seat(e.data), COUNT(*), true
    FROM tracking_events e JOIN catalogs c ON c.id = e.catalog_id JOIN partners p ON p.id = c.partner_id
    WHERE c.partner_id = of_partner
    GROUP BY 1, 2, 3, 4, 5;

    INSERT INTO analytics_active_days (catalog_id, day, user_id)
    SELECT DISTINCT e.catalog_id, (e.occurred_at AT TIME ZONE p.time_zone)::date, e.user_id
    FROM tracking_events e JOIN catalogs c ON c.id = e.catalog_id JOIN partners p ON p.id = c.partner_id
    WHERE c.partner_id = of_partner AND e.user_id IS NOT NULL
      AND e.name IN ('invitation.accepted', 'enrollment.activated', 'enrollment.blocked');

    -- Weeks of the partner and its catalogs; the platform's from every partner's days.
    DELETE FROM analytics_active_weeks
    WHERE (level = 2 AND scope_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner))
       OR (level = 1 AND scope_id = of_partner) OR level = 0;
    DELETE FROM analytics_active_week_counts
    WHERE (level = 2 AND scope_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner))
       OR (level = 1 AND scope_id = of_partner) OR level = 0;
    INSERT INTO analytics_active_weeks (level, scope_id, week, user_id)
    SELECT DISTINCT 2::smallint, a.catalog_id, analytics_week(a.day), a.user_id
    FROM analytics_active_days a JOIN catalogs c ON c.id = a.catalog_id WHERE c.partner_id = of_partner
    UNION ALL
    SELECT DISTINCT 1::smallint, of_partner, analytics_week(a.day), a.user_id
    FROM analytics_active_days a JOIN catalogs c ON c.id = a.catalog_id WHERE c.partner_id = of_partner
    UNION ALL
    SELECT DISTINCT 0::smallint, 0, analytics_week(a.day), a.user_id FROM analytics_active_days a;
    INSERT INTO analytics_active_week_counts (level, scope_id, week, n, folded)
    SELECT level, scope_id, week, COUNT(*), true FROM analytics_active_weeks
    WHERE (level = 2 AND scope_id IN (SELECT id FROM catalogs WHERE partner_id = of_partner))
       OR (level = 1 AND scope_id = of_partner) OR level = 0
    GROUP BY 1, 2, 3;

    INSERT INTO analytics_cohort_days (catalog_id, day, channel, emailed, created, accepted,
                                       declined, enrolled, licensed, folded)
    SELECT i.catalog_id, (i.invited_at AT TIME ZONE p.time_zone)::date, i.channel, i.send_count > 0,
           COUNT(*), COUNT(i.accepted_at), COUNT(i.declined_at), COUNT(i.first_enrolment_at),
           COUNT(*) FILTER (WHERE i.given_paid_seat), true
    FROM invitations i JOIN catalogs c ON c.id = i.catalog_id JOIN partners p ON p.id = c.partner_id
    WHERE c.partner_id = of_partner
    GROUP BY 1, 2, 3, 4;
END $$;

CREATE FUNCTION analytics_time_zone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics_rebuild(NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER analytics_time_zone_changed AFTER UPDATE OF time_zone ON partners
    FOR EACH ROW WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone)
    EXECUTE FUNCTION analytics_time_zone_changed();

-- Folds the deltas of each key into one row. One runner at a time; writers never wait
-- for it, and readers see the rows before or after, both summing to the same.
CREATE FUNCTION analytics_fold() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    folded_events BIGINT;
    folded_cohorts BIGINT;
    folded_weeks BIGINT;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('analytics_fold')) THEN
        RETURN 0;
    END IF;

    WITH keys AS (
        SELECT DISTINCT catalog_id, day, name, reason, paid_seat FROM analytics_event_days WHERE NOT folded
    ), gone AS (
        DELETE FROM analytics_event_days d USING keys k
        WHERE d.catalog_id = k.catalog_id AND d.day = k.day AND d.name = k.name
          AND d.reason = k.reason AND d.paid_seat = k.paid_seat
        RETURNING d.catalog_id, d.day, d.name, d.reason, d.paid_seat, d.n
    ), kept AS (
        INSERT INTO analytics_event_days (catalog_id, day, name, reason, paid_seat, n, folded)
        SELECT catalog_id, day, name, reason, paid_seat, SUM(n), true FROM gone
        GROUP BY 1, 2, 3, 4, 5 HAVING SUM(n) <> 0
    )
    SELECT COUNT(*) INTO folded_events FROM gone;

    WITH keys AS (
        SELECT DISTINCT catalog_id, day, channel, emailed FROM analytics_cohort_days WHERE NOT folded
    ), gone AS (
        DELETE FROM analytics_cohort_days d USING keys k
        WHERE d.catalog_id = k.catalog_id AND d.day = k.day AND d.channel = k.channel
          AND d.emailed = k.emailed
        RETURNING d.catalog_id, d.day, d.channel, d.emailed, d.created, d.accepted, d.declined,
                  d.enrolled, d.licensed
    ), kept AS (
        INSERT INTO analytics_cohort_days (catalog_id, day, channel, emailed, created, accepted,
                                           declined, enrolled, licensed, folded)
        SELECT * FROM (
            SELECT catalog_id, day, channel, emailed, SUM(created) AS created, SUM(accepted) AS accepted,
                   SUM(declined) AS declined, SUM(enrolled) AS enrolled, SUM(licensed) AS licensed, true
            FROM gone GROUP BY 1, 2, 3, 4
        ) sums
        WHERE (created, accepted, declined, enrolled, licensed) <> (0, 0, 0, 0, 0)
    )
    SELECT COUNT(*) INTO folded_cohorts FROM gone;

    WITH keys AS (
        SELECT DISTINCT level, scope_id, week FROM analytics_active_week_counts WHERE NOT folded
    ), gone AS (
        DELETE FROM analytics_active_week_counts d USING keys k
        WHERE d.level = k.level AND d.scope_id = k.scope_id AND d.week = k.week
        RETURNING d.level, d.scope_id, d.week, d.n
    ), kept AS (
        INSERT INTO analytics_active_week_counts (level, scope_id, week, n, folded)
        SELECT level, scope_id, week, SUM(n), true FROM gone GROUP BY 1, 2, 3 HAVING SUM(n) <> 0
    )
    SELECT COUNT(*) INTO folded_weeks FROM gone;

    RETURN folded_events + folded_cohorts + folded_weeks;
END $$;

-- What is there already.
UPDATE invitations SET accepted_at = accepted_at WHERE accepted_at IS NOT NULL;
SELECT analytics_rebuild(id) FROM partners;
