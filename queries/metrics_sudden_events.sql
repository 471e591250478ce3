-- Stored sudden_events (alliance refresh) of the episodes in scope (scope through the clinician stored beside each row).
-- params: scope_all, scope_clinicians
-- columns: episode_id, instrument, kind, session, severity_n_minus_2, severity_n_minus_1, severity_n, severity_n_plus_1, severity_n_plus_2, severity_n_plus_3, magnitude, tx_change, change_proportion, reversal_value, reversal, events_in_episode, crit1_cutoff, method
SELECT m.episode_id, m.instrument, m.kind, m.session, m.severity_n_minus_2, m.severity_n_minus_1,
    m.severity_n, m.severity_n_plus_1, m.severity_n_plus_2, m.severity_n_plus_3, m.magnitude, m.tx_change,
    m.change_proportion, m.reversal_value, m.reversal, m.events_in_episode, m.crit1_cutoff, m.method
FROM metrics_sudden_events m
WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.row_order
