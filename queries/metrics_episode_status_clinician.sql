-- Stored episode_status of one clinician's episodes in scope, in episode order. The client page reads the
-- episode's clinician's rows once and takes each episode's from them: the table is kept in clinician and
-- episode order, so DuckDB decodes the row group that holds the clinician either way (about as costly
-- as one episode's rows), and the next client of the same caseload reads nothing.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: episode_id, instrument, latest_session, latest, primary, status, status_words, reason, method, band_p10, band_p25, band_p50, band_p75, band_p90, intake_bin
-- cache: per data version, one clinician
SELECT m.episode_id, m.instrument, m.latest_session, m.latest, m.primary, m.status, m.status_words,
    m.reason, m.method, m.band_p10, m.band_p25, m.band_p50, m.band_p75, m.band_p90, m.intake_bin
FROM metrics_episode_status m
WHERE m.scope_clinician = $clinician_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.episode_id, m.instrument
