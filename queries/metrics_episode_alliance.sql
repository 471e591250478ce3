-- Stored per-episode alliance summary (alliance refresh) of the episodes in scope: what comparisons add up.
-- params: scope_all, scope_clinicians
-- columns: episode_id, instrument, n_ratings, mean_score, n_below_cutoff, ruptures, repaired
SELECT m.episode_id, m.instrument, m.n_ratings, m.mean_score, m.n_below_cutoff, m.ruptures, m.repaired
FROM metrics_episode_alliance m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
