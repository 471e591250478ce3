-- What the comparison page's filters offer for the episodes in scope, read from the stored metrics: each outcome
-- instrument with its number of episodes, each team, and the first and last date an episode was last seen.
-- One row per option: kind ('instrument', 'team', 'first_seen', 'last_seen'), value, n.
-- params: scope_all, scope_clinicians
-- columns: kind, value, n
SELECT 'instrument' AS kind, m.instrument AS value, count(*) AS n
FROM metrics_episode_change m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.clinician_id))
GROUP BY m.instrument
UNION ALL
SELECT 'team', e.team_id, count(*)
FROM metrics_episode_end e
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
    AND e.team_id IS NOT NULL
GROUP BY e.team_id
UNION ALL
SELECT 'first_seen', CAST(CAST(min(e.last_session_date) AS DATE) AS VARCHAR), count(*)
FROM metrics_episode_end e
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
HAVING count(*) > 0
UNION ALL
SELECT 'last_seen', CAST(CAST(max(e.last_session_date) AS DATE) AS VARCHAR), count(*)
FROM metrics_episode_end e
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
HAVING count(*) > 0
