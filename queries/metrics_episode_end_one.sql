-- Stored episode_end of one episode in scope (the client page's open or closed, and how it ended; the table is
-- kept in clinician and episode order, so with the episode's clinician DuckDB reads only the row group that
-- holds it).
-- params: scope_all, scope_clinicians, episode_id, clinician_id
-- columns: episode_id, client_id, clinician_id, team_id, population, start_date, last_session_date, n_sessions, closed, closed_by, end_reason, end_type, dropout, days_since_last_session, rule
-- cache: per data version
SELECT m.episode_id, m.client_id, m.clinician_id, m.team_id, m.population, m.start_date,
    m.last_session_date, m.n_sessions, m.closed, m.closed_by, m.end_reason, m.end_type, m.dropout,
    m.days_since_last_session, m.rule
FROM metrics_episode_end m
WHERE m.scope_clinician = $clinician_id AND m.episode_id = $episode_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
