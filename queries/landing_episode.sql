-- Where the client page opens without a choice (stored metrics): the most recently seen open episode in scope
-- that is not on track (red) on its primary outcome measure and has at least two ratings of it, else the most
-- recently seen open one with two such ratings. One row, or none.
-- params: scope_all, scope_clinicians
-- columns: client_id, episode_id
-- cache: per data version
SELECT e.client_id, e.episode_id
FROM metrics_episode_end e
JOIN metrics_episode_status s ON s.episode_id = e.episode_id AND s.primary
JOIN metrics_episode_change c ON c.episode_id = s.episode_id AND c.instrument = s.instrument
WHERE NOT e.closed
    AND c.n_ratings >= 2
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
ORDER BY (s.status = 'red') DESC, e.last_session_date DESC, e.episode_id
LIMIT 1
