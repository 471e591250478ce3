-- One clinician's clients (within the viewer's scope), most recently seen first: clinician_clients from the
-- store (alliance refresh), kept in clinician order, so only that clinician's rows are read.
-- params: scope_all, scope_clinicians, clinician_id
-- columns: client_id, n_episodes, first_seen, last_seen, n_sessions, any_open
-- cache: per data version
SELECT m.client_id, m.n_episodes, m.first_seen, m.last_seen, m.n_sessions, m.any_open
FROM metrics_clinician_clients m
WHERE m.scope_clinician = $clinician_id
  AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), m.scope_clinician))
ORDER BY m.last_seen DESC NULLS LAST, m.client_id
