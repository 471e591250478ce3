-- Whether the viewer may see any rating at all (an empty database or an empty scope is said on the page; the
-- full counts, service_overview, are read only then).
-- params: scope_all, scope_clinicians
-- columns: has_ratings
-- cache: per data version
SELECT EXISTS (
    SELECT 1 FROM rating r
    WHERE r.episode_id IN (
        SELECT e.episode_id FROM episode e
        WHERE ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id)))
) AS has_ratings
