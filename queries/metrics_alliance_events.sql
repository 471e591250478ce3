-- Stored alliance_events (alliance refresh) of the episodes in scope (scope through the clinician stored beside each row).
-- params: scope_all, scope_clinicians
-- columns: episode_id, instrument, event, session_number, score, previous_score, baseline, sd_client, sd_ref, threshold, k, repair_status, repair_session, slope, share, detail, rule, sd_service
SELECT m.episode_id, m.instrument, m.event, m.session_number, m.score, m.previous_score, m.baseline,
    m.sd_client, m.sd_ref, m.threshold, m.k, m.repair_status, m.repair_session, m.slope, m.share,
    m.detail, m.rule, m.sd_service
FROM metrics_alliance_events m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
