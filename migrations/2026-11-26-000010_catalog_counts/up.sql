-- Each catalog's active learners and paid seats in use, for the pages that show them,
-- without counting the learners and licences on each view. Triggers write deltas in the
-- same transaction as the change (inserts only: concurrent writers never wait on a
-- shared row); the background runner folds them. Limits are still checked by counting,
-- under the catalog's lock.
CREATE TABLE catalog_counts (
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    learners BIGINT NOT NULL,
    paid_seats BIGINT NOT NULL,
    folded BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX catalog_counts_idx ON catalog_counts (catalog_id) INCLUDE (learners, paid_seats);
CREATE UNIQUE INDEX catalog_counts_folded_idx ON catalog_counts (catalog_id) WHERE folded;
CREATE INDEX catalog_counts_unfolded_idx ON catalog_counts (catalog_id) WHERE NOT folded;

-- Learners joined, removed or back: the active ones counted by difference.
CREATE FUNCTION catalog_counts_learners_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    signed TEXT := 'SELECT catalog_id, %s * is_active::int AS learners FROM %I';
BEGIN
    EXECUTE format(
        'INSERT INTO catalog_counts (catalog_id, learners, paid_seats)
         SELECT catalog_id, SUM(learners), 0 FROM (%s) r
         GROUP BY catalog_id HAVING SUM(learners) <> 0 ORDER BY catalog_id',
        CASE TG_OP
            WHEN 'INSERT' THEN format(signed, '1', 'added')
            WHEN 'DELETE' THEN format(signed, '-1', 'removed')
            ELSE format(signed, '1', 'added') || ' UNION ALL ' || format(signed, '-1', 'removed')
        END);
    RETURN NULL;
END $$;

CREATE TRIGGER catalog_counts_learners_added AFTER INSERT ON catalog_learners
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_learners_changed();
CREATE TRIGGER catalog_counts_learners_updated AFTER UPDATE ON catalog_learners
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_learners_changed();
CREATE TRIGGER catalog_counts_learners_removed AFTER DELETE ON catalog_learners
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_learners_changed();

-- Licences given, released, re-granted by another catalog: paid seats (active licences of
-- paid courses) counted by difference.
CREATE FUNCTION catalog_counts_licences_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    signed TEXT := 'SELECT l.catalog_id, %s * (l.is_active AND k.is_paid)::int AS seats
                    FROM %I l JOIN courses k ON k.id = l.course_id';
BEGIN
    EXECUTE format(
        'INSERT INTO catalog_counts (catalog_id, learners, paid_seats)
         SELECT catalog_id, 0, SUM(seats) FROM (%s) r
         GROUP BY catalog_id HAVING SUM(seats) <> 0 ORDER BY catalog_id',
        CASE TG_OP
            WHEN 'INSERT' THEN format(signed, '1', 'added')
            WHEN 'DELETE' THEN format(signed, '-1', 'removed')
            ELSE format(signed, '1', 'added') || ' UNION ALL ' || format(signed, '-1', 'removed')
        END);
    RETURN NULL;
END $$;

CREATE TRIGGER catalog_counts_licences_added AFTER INSERT ON licences
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_licences_changed();
CREATE TRIGGER catalog_counts_licences_updated AFTER UPDATE ON licences
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_licences_changed();
CREATE TRIGGER catalog_counts_licences_removed AFTER DELETE ON licences
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_licences_changed();

-- A course becoming paid or free: its active licences join or leave the paid seats.
CREATE FUNCTION catalog_counts_course_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_counts (catalog_id, learners, paid_seats)
    SELECT l.catalog_id, 0, SUM(CASE WHEN n.is_paid THEN 1 ELSE -1 END)
    FROM removed o JOIN added n ON n.id = o.id AND n.is_paid <> o.is_paid
    JOIN licences l ON l.course_id = n.id AND l.is_active
    GROUP BY l.catalog_id ORDER BY l.catalog_id;
    RETURN NULL;
END $$;

CREATE TRIGGER catalog_counts_course_changed AFTER UPDATE ON courses
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_course_changed();

-- Folds the deltas of each catalog into one row; one runner at a time.
CREATE FUNCTION catalog_counts_fold() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    rows_folded BIGINT;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('catalog_counts_fold')) THEN
        RETURN 0;
    END IF;
    WITH keys AS (
        SELECT DISTINCT catalog_id FROM catalog_counts WHERE NOT folded
    ), gone AS (
        DELETE FROM catalog_counts d USING keys k WHERE d.catalog_id = k.catalog_id
        RETURNING d.catalog_id, d.learners, d.paid_seats
    ), kept AS (
        INSERT INTO catalog_counts (catalog_id, learners, paid_seats, folded)
        SELECT catalog_id, SUM(learners), SUM(paid_seats), true FROM gone GROUP BY catalog_id
    )
    SELECT COUNT(*) INTO rows_folded FROM gone;
    RETURN rows_folded;
END $$;

-- What is there already.
INSERT INTO catalog_counts (catalog_id, learners, paid_seats, folded)
SELECT c.id,
       (SELECT COUNT(*) FROM catalog_learners l WHERE l.catalog_id = c.id AND l.is_active),
       (SELECT COUNT(*) FROM licences s JOIN courses k ON k.id = s.course_id
        WHERE s.catalog_id = c.id AND s.is_active AND k.is_paid),
       true
FROM catalogs c;
