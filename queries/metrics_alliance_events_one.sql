-- Stored alliance_events of one episode in scope (the client page's ruptures and repairs; the table is kept in
-- clinician and episode order, so with the episode's clinician DuckDB reads only the row group that holds it).
-- params: scope_all, scope_clinicians, episode_id, clinician_id
-- columns: episode_id, instrument, event, session_number, score, previous_score, baseline, sd_client, sd_ref, threshold, k, repair_status, repair_session, slope, share, detail, rule, sd_service
-- cache: per data version
SELECT m.episode_id, m.instrument, m.event, m.session_number, m.score, m.previous_score, m.baseline,
    m.sd_client, m.sd_ref, m.threshold, m.k, m.repair_status, m.repair_session, m.slope, m.share,
    m.detail, m.rule, m.sd_service
FROM metrics_alliance_events m
WHERE m.scope_clinician = $clinician_id AND m.episode_id = $episode_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
