-- The ratings of one construct ('outcome' or 'alliance') in the viewer's scope, in session order, from the
-- store's copy kept in clinician order (alliance refresh): the same rows as scoped_ratings while the store is
-- current, found by the min/max of each row group instead of a join through every episode.
-- params: scope_all, scope_clinicians, construct
-- columns: episode_id, instrument, session_number, score, session_date
SELECT m.episode_id, m.instrument, m.session_number, m.score, m.session_date
FROM metrics_ratings m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
    AND m.construct = $construct
ORDER BY m.instrument, m.episode_id, m.session_number
