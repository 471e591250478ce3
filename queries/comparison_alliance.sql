-- The stored per-episode alliance summaries a clinician comparison adds up: episodes in scope rated on the
-- compared outcome instrument.
-- params: scope_all, scope_clinicians, outcome_instrument
-- columns: episode_id, instrument, n_ratings, mean_score, n_below_cutoff, ruptures, repaired
SELECT m.episode_id, m.instrument, m.n_ratings, m.mean_score, m.n_below_cutoff, m.ruptures, m.repaired
FROM metrics_episode_alliance m
WHERE m.episode_id IN (
    SELECT c.episode_id FROM metrics_episode_change c
    WHERE c.instrument = $outcome_instrument
        AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), c.clinician_id)))
