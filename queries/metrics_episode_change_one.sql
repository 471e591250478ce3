-- Stored episode_change of one episode in scope (the client page and the pack read an episode's
-- stored rows instead of recomputing them).
-- params: scope_all, scope_clinicians, episode_id, clinician_id
-- columns: episode_id, instrument, n_ratings, first_session, latest_session, intake, latest, clinician_id, population, change, improvement, rci, reliable_improvement, reliable_deterioration, clinical_pre, clinical_post, category, rc_method, cutoff, higher_is_better, intake_severity, latest_severity, effect_size, primary
-- cache: per data version
SELECT m.episode_id, m.instrument, m.n_ratings, m.first_session, m.latest_session, m.intake, m.latest,
    m.clinician_id, m.population, m.change, m.improvement, m.rci, m.reliable_improvement,
    m.reliable_deterioration, m.clinical_pre, m.clinical_post, m.category, m.rc_method, m.cutoff,
    m.higher_is_better, m.intake_severity, m.latest_severity, m.effect_size, m.primary
FROM metrics_episode_change m
WHERE m.scope_clinician = $clinician_id AND m.episode_id = $episode_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.instrument
