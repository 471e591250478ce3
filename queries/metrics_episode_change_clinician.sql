-- Stored episode_change of one clinician's episodes in scope, in episode order. The client page reads the
-- episode's clinician's rows once and takes each episode's from them: the table is kept in clinician and
-- episode order, so DuckDB decodes the row group that holds the clinician either way (about as costly
-- as one episode's rows), and the next client of the same caseload reads nothing.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: episode_id, instrument, n_ratings, first_session, latest_session, intake, latest, clinician_id, population, change, improvement, rci, reliable_improvement, reliable_deterioration, clinical_pre, clinical_post, category, rc_method, cutoff, higher_is_better, intake_severity, latest_severity, effect_size, primary
-- cache: per data version, one clinician
SELECT m.episode_id, m.instrument, m.n_ratings, m.first_session, m.latest_session, m.intake, m.latest,
    m.clinician_id, m.population, m.change, m.improvement, m.rci, m.reliable_improvement,
    m.reliable_deterioration, m.clinical_pre, m.clinical_post, m.category, m.rc_method, m.cutoff,
    m.higher_is_better, m.intake_severity, m.latest_severity, m.effect_size, m.primary
FROM metrics_episode_change m
WHERE m.scope_clinician = $clinician_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.episode_id, m.instrument
