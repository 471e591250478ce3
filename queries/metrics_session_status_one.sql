-- Stored session_status of one episode in scope (the client page's points; the table is kept in clinician and
-- episode order, so with the episode's clinician DuckDB reads only the row group that holds it).
-- params: scope_all, scope_clinicians, episode_id, clinician_id
-- columns: episode_id, instrument, session_number, score, status, status_words, reason, method, band_p10, band_p25, band_p50, band_p75, band_p90, intake_bin
-- cache: per data version
SELECT m.episode_id, m.instrument, m.session_number, m.score, m.status, m.status_words, m.reason, m.method,
    m.band_p10, m.band_p25, m.band_p50, m.band_p75, m.band_p90, m.intake_bin
FROM metrics_session_status m
WHERE m.scope_clinician = $clinician_id AND m.episode_id = $episode_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.instrument, m.session_number
