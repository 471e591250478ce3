-- Counts of what the viewer may see, to tell an empty database (or an empty scope) from a working one.
-- params: scope_all, scope_clinicians
-- columns: n_clinicians, n_clients, n_episodes, n_sessions, n_ratings
-- cache: per data version
WITH e AS (
    SELECT episode_id, client_id, clinician_id
    FROM episode
    WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), clinician_id))
)
SELECT
    (SELECT count(DISTINCT clinician_id) FROM e)                              AS n_clinicians,
    (SELECT count(DISTINCT client_id) FROM e)                                 AS n_clients,
    (SELECT count(*) FROM e)                                                  AS n_episodes,
    (SELECT count(*) FROM session s SEMI JOIN e USING (episode_id))           AS n_sessions,
    (SELECT count(*) FROM rating r SEMI JOIN e USING (episode_id))            AS n_ratings
