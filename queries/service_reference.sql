-- Service-wide reference data for expected-response bands: the outcome ratings of every closed episode
-- (discharged, or no session for $inactivity_days days before $as_of) with the episode's intake score.
-- Used only to compute aggregate percentile bands (>= 30 episodes per bin); rows never reach a page.
-- scope: service-wide aggregate by design (the expected course is the whole service's)
-- params: as_of, inactivity_days
-- columns: instrument, episode_id, session_number, score, intake
WITH closed AS (
    SELECT e.episode_id
    FROM episode e
    JOIN session s USING (episode_id)
    GROUP BY e.episode_id, e.end_date
    HAVING e.end_date IS NOT NULL
        OR max(s.session_date) < CAST($as_of AS DATE) - CAST($inactivity_days AS INTEGER)
),
r AS (
    SELECT r.instrument, r.episode_id, r.session_number, r.score
    FROM rating r
    JOIN instrument i ON i.code = r.instrument AND i.construct = 'outcome'
    SEMI JOIN closed USING (episode_id)
)
SELECT
    instrument, episode_id, session_number, score,
    first(score ORDER BY session_number) OVER (PARTITION BY instrument, episode_id) AS intake
FROM r
ORDER BY instrument, episode_id, session_number
