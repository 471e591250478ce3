-- The stored episode change a clinician comparison adds up, for one outcome instrument and the episodes the
-- viewer may see; only the columns it uses (a whole service's full rows would hold hundreds of MB in a server).
-- params: scope_all, scope_clinicians, outcome_instrument
-- columns: episode_id, clinician_id, instrument, n_ratings, intake, improvement, intake_severity, reliable_improvement, reliable_deterioration, clinical_pre, category
SELECT m.episode_id, m.clinician_id, m.instrument, m.n_ratings, m.intake, m.improvement, m.intake_severity,
    m.reliable_improvement, m.reliable_deterioration, m.clinical_pre, m.category
FROM metrics_episode_change m
WHERE m.instrument = $outcome_instrument
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.clinician_id))
