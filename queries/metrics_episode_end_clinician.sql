-- Stored episode_end of one clinician's episodes in scope, in episode order. The client page reads the
-- episode's clinician's rows once and takes each episode's from them: the table is kept in clinician and
-- episode order, so DuckDB decodes the row group that holds the clinician either way (about as costly
-- as one episode's rows), and the next client of the same caseload reads nothing.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: episode_id, client_id, clinician_id, team_id, population, start_date, last_session_date, n_sessions, closed, closed_by, end_reason, end_type, dropout, days_since_last_session, rule
-- cache: per data version, one clinician
SELECT m.episode_id, m.client_id, m.clinician_id, m.team_id, m.population, m.start_date,
    m.last_session_date, m.n_sessions, m.closed, m.closed_by, m.end_reason, m.end_type, m.dropout,
    m.days_since_last_session, m.rule
FROM metrics_episode_end m
WHERE m.scope_clinician = $clinician_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.episode_id, m.row_order
