-- Clinicians the viewer may see, with team, supervisor and caseload counts (for pickers).
-- params: scope_all, scope_clinicians
-- columns: clinician_id, team_id, team_name, supervisor_id, n_episodes, n_open
-- cache: per data version
SELECT
    c.clinician_id,
    c.team_id,
    t.name                                       AS team_name,
    t.supervisor_id,
    count(e.episode_id)                          AS n_episodes,
    count(e.episode_id) FILTER (WHERE e.end_date IS NULL) AS n_open
FROM clinician c
JOIN team t USING (team_id)
LEFT JOIN episode e USING (clinician_id)
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), c.clinician_id))
GROUP BY ALL
ORDER BY c.clinician_id
