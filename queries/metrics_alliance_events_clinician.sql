-- Stored alliance_events of one clinician's episodes in scope, in episode order. The client page reads the
-- episode's clinician's rows once and takes each episode's from them: the table is kept in clinician and
-- episode order, so DuckDB decodes the row group that holds the clinician either way (about as costly
-- as one episode's rows), and the next client of the same caseload reads nothing.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: episode_id, instrument, event, session_number, score, previous_score, baseline, sd_client, sd_ref, threshold, k, repair_status, repair_session, slope, share, detail, rule, sd_service
-- cache: per data version, one clinician
SELECT m.episode_id, m.instrument, m.event, m.session_number, m.score, m.previous_score, m.baseline,
    m.sd_client, m.sd_ref, m.threshold, m.k, m.repair_status, m.repair_session, m.slope, m.share,
    m.detail, m.rule, m.sd_service
FROM metrics_alliance_events m
WHERE m.scope_clinician = $clinician_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.episode_id, m.row_order
