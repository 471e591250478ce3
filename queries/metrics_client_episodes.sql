-- A client's episodes that the viewer may see, with their instruments, newest first: client_episodes from the
-- store's episode list (alliance refresh), kept in client order, instead of the whole service's sessions and
-- ratings.
-- params: scope_all, scope_clinicians, client_id
-- columns: episode_id, client_id, clinician_id, team_id, population, start_date, end_date, end_reason, n_sessions, last_session_date, outcome_instruments, alliance_instruments
-- cache: per data version
SELECT m.episode_id, m.client_id, m.clinician_id, m.team_id, m.population, m.start_date, m.end_date,
    m.end_reason, m.n_sessions, m.last_session_date, m.outcome_instruments, m.alliance_instruments
FROM metrics_client_episodes m
WHERE m.client_id = $client_id
  AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.start_date DESC, m.episode_id
