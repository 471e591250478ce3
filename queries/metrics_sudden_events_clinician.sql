-- Stored sudden_events of one clinician's episodes in scope, in episode order. The client page reads the
-- episode's clinician's rows once and takes each episode's from them: the table is kept in clinician and
-- episode order, so DuckDB decodes the row group that holds the clinician either way (about as costly
-- as one episode's rows), and the next client of the same caseload reads nothing.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: episode_id, instrument, kind, session, severity_n_minus_2, severity_n_minus_1, severity_n, severity_n_plus_1, severity_n_plus_2, severity_n_plus_3, magnitude, tx_change, change_proportion, reversal_value, reversal, events_in_episode, crit1_cutoff, method
-- cache: per data version, one clinician
SELECT m.episode_id, m.instrument, m.kind, m.session, m.severity_n_minus_2, m.severity_n_minus_1,
    m.severity_n, m.severity_n_plus_1, m.severity_n_plus_2, m.severity_n_plus_3, m.magnitude, m.tx_change,
    m.change_proportion, m.reversal_value, m.reversal, m.events_in_episode, m.crit1_cutoff, m.method
FROM metrics_sudden_events m
WHERE m.scope_clinician = $clinician_id
    AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.episode_id, m.row_order
