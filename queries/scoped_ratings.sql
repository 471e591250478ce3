-- Every rating of one construct ('outcome' or 'alliance') in the viewer's scope, in session order:
-- the input of the clinical metrics (sudden events, alliance signals, change).
-- params: scope_all, scope_clinicians, construct
-- columns: episode_id, instrument, session_number, score, session_date
SELECT r.episode_id, r.instrument, r.session_number, r.score, s.session_date
FROM rating r
JOIN session s USING (episode_id, session_number)
JOIN instrument i ON i.code = r.instrument
JOIN episode e USING (episode_id)
WHERE i.construct = $construct
  AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
ORDER BY r.instrument, r.episode_id, r.session_number
