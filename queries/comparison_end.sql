-- The stored episode ends a clinician comparison counts: episodes in scope rated on the compared outcome
-- instrument, only the columns it uses.
-- params: scope_all, scope_clinicians, outcome_instrument
-- columns: episode_id, clinician_id, team_id, population, last_session_date, n_sessions, closed, dropout
SELECT m.episode_id, m.clinician_id, m.team_id, m.population, m.last_session_date, m.n_sessions, m.closed,
    m.dropout
FROM metrics_episode_end m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.clinician_id))
    AND m.episode_id IN (SELECT c.episode_id FROM metrics_episode_change c WHERE c.instrument = $outcome_instrument)
