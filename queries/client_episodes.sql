-- A client's episodes that the viewer may see, with their instruments, newest first.
-- params: scope_all, scope_clinicians, client_id
-- columns: episode_id, client_id, clinician_id, team_id, population, start_date, end_date, end_reason, n_sessions, last_session_date, outcome_instruments, alliance_instruments
-- cache: per data version
WITH e AS (
    SELECT e.*, c.team_id
    FROM episode e
    JOIN clinician c USING (clinician_id)
    WHERE e.client_id = $client_id
      AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
),
s AS (
    SELECT episode_id, count(*) AS n_sessions, max(session_date) AS last_session_date
    FROM session SEMI JOIN e USING (episode_id)
    GROUP BY episode_id
),
used AS (
    SELECT r.episode_id, r.instrument, ins.construct, ins.position, count(*) AS n
    FROM rating r
    JOIN instrument ins ON ins.code = r.instrument
    SEMI JOIN e USING (episode_id)
    GROUP BY ALL
),
i AS (  -- most-rated first, then registry order (the first is shown by default)
    SELECT
        episode_id,
        list(instrument ORDER BY n DESC, position) FILTER (WHERE construct = 'outcome')  AS outcome_instruments,
        list(instrument ORDER BY n DESC, position) FILTER (WHERE construct = 'alliance') AS alliance_instruments
    FROM used
    GROUP BY episode_id
)
SELECT
    e.episode_id, e.client_id, e.clinician_id, e.team_id, e.population, e.start_date, e.end_date,
    e.end_reason,
    coalesce(s.n_sessions, 0)                         AS n_sessions,
    s.last_session_date,
    coalesce(i.outcome_instruments, [])               AS outcome_instruments,
    coalesce(i.alliance_instruments, [])              AS alliance_instruments
FROM e
LEFT JOIN s USING (episode_id)
LEFT JOIN i USING (episode_id)
ORDER BY e.start_date DESC, e.episode_id
