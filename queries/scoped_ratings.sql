-- Every rating of one construct ('outcome' or 'alliance') in the viewer's scope, in session order:
-- the input of the clinical metrics (sudden events, alliance signals, change).
-- params: scope_all, scope_clinicians, construct
-- columns: episode_id, instrument, session_number, score, session_date
-- The scope narrows the episodes first, so only their ratings and sessions are joined (a caseload out of a
-- service of millions of ratings reads a few thousand rows).
WITH scoped AS (
    SELECT episode_id FROM episode
    WHERE $scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), clinician_id)
)
SELECT r.episode_id, r.instrument, r.session_number, r.score, s.session_date
FROM (SELECT * FROM rating WHERE episode_id IN (SELECT episode_id FROM scoped)) r
JOIN (SELECT * FROM session WHERE episode_id IN (SELECT episode_id FROM scoped)) s
    USING (episode_id, session_number)
JOIN instrument i ON i.code = r.instrument
WHERE i.construct = $construct
ORDER BY r.instrument, r.episode_id, r.session_number
