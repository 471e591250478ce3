-- Stored episode_status (alliance refresh) of the episodes in scope (scope through the clinician stored beside each row).
-- params: scope_all, scope_clinicians
-- columns: episode_id, instrument, latest_session, latest, primary, status, status_words, reason, method, band_p10, band_p25, band_p50, band_p75, band_p90, intake_bin
SELECT m.episode_id, m.instrument, m.latest_session, m.latest, m.primary, m.status, m.status_words,
    m.reason, m.method, m.band_p10, m.band_p25, m.band_p50, m.band_p75, m.band_p90, m.intake_bin
FROM metrics_episode_status m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
