-- Every session of one episode with each instrument's total and that instrument's scale and norm for
-- the episode's population. Missing ratings come back as a NULL score at their position (a gap);
-- a position with no session row at all also has a NULL session_date.
-- params: scope_all, scope_clinicians, episode_id
-- columns: episode_id, session_number, session_date, instrument, construct, score, min_score, max_score, higher_is_better, cutoff, clinical_side, cutoff_verified, reliable_change
-- cache: per data version
WITH e AS MATERIALIZED (
    SELECT episode_id, population
    FROM episode
    WHERE episode_id = $episode_id
      AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), clinician_id))
),
-- The episode's own rows, filtered by its code before any join (so a service of millions of ratings is not
-- scanned for one episode), each read once (MATERIALIZED: the plan below uses them twice).
sessions AS MATERIALIZED (
    SELECT s.episode_id, s.session_number, s.session_date
    FROM session s SEMI JOIN e USING (episode_id)
    WHERE s.episode_id = $episode_id
),
ratings AS MATERIALIZED (
    SELECT r.episode_id, r.session_number, r.instrument, r.score
    FROM rating r SEMI JOIN e USING (episode_id)
    WHERE r.episode_id = $episode_id
),
used AS (SELECT DISTINCT instrument FROM ratings),  -- instruments rated at least once in the episode
norm AS (   -- the population's default norm, falling back to the adult one
    SELECT n.instrument, n.cutoff, n.clinical_side, n.verified, n.reliable_change
    FROM instrument_norm n, e
    WHERE n.norm_set = 'default' AND n.population IN (e.population, 'adult')
    QUALIFY row_number() OVER (PARTITION BY n.instrument ORDER BY (n.population = e.population) DESC) = 1
),
positions AS (  -- every position 1..last: a session number with no session row is a gap too
    SELECT e.episode_id, unnest(range(1, max(s.session_number) + 1)) AS session_number
    FROM e JOIN sessions s USING (episode_id)
    GROUP BY e.episode_id
)
SELECT
    p.episode_id,
    p.session_number,
    s.session_date,
    u.instrument,
    ins.construct,
    r.score,
    ins.min_score,
    ins.max_score,
    ins.higher_is_better,
    norm.cutoff,
    norm.clinical_side,
    norm.verified                                    AS cutoff_verified,
    norm.reliable_change
FROM positions p
LEFT JOIN sessions s USING (episode_id, session_number)
CROSS JOIN used u
JOIN instrument ins ON ins.code = u.instrument
LEFT JOIN ratings r ON r.episode_id = p.episode_id AND r.session_number = p.session_number
                  AND r.instrument = u.instrument
LEFT JOIN norm ON norm.instrument = u.instrument
ORDER BY u.instrument, p.session_number
