-- One clinician's clients (within the viewer's scope), most recently seen first.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: client_id, n_episodes, first_seen, last_seen, n_sessions, any_open
-- cache: per data version
SELECT
    e.client_id,
    count(DISTINCT e.episode_id)                 AS n_episodes,
    min(s.session_date)                          AS first_seen,
    max(s.session_date)                          AS last_seen,
    count(s.session_number)                      AS n_sessions,
    bool_or(e.end_date IS NULL)                  AS any_open
FROM episode e
LEFT JOIN session s USING (episode_id)
WHERE e.clinician_id = $clinician_id
  AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
GROUP BY e.client_id
ORDER BY last_seen DESC NULLS LAST, e.client_id
