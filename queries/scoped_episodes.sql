-- Episodes within the viewer's scope with their team, dates and session counts (metrics, caseloads).
-- params: scope_all, scope_clinicians
-- columns: episode_id, client_id, clinician_id, team_id, population, start_date, end_date, end_reason, n_sessions, first_session_date, last_session_date
SELECT
    e.episode_id, e.client_id, e.clinician_id, c.team_id, e.population, e.start_date, e.end_date,
    e.end_reason,
    count(s.session_number)            AS n_sessions,
    min(s.session_date)                AS first_session_date,
    max(s.session_date)                AS last_session_date
FROM episode e
JOIN clinician c USING (clinician_id)
LEFT JOIN session s USING (episode_id)
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
GROUP BY ALL
ORDER BY e.episode_id
