-- Service-wide SD of within-episode session-to-session change of each alliance instrument (consecutive
-- available ratings; docs/methods.md §7's inter-individual variability for the rupture rule). Aggregate only.
-- scope: service-wide aggregate by design (one number per instrument)
-- params: none
-- columns: instrument, sd_change, n_changes
WITH d AS (
    SELECT
        r.instrument,
        r.score - lag(r.score) OVER (PARTITION BY r.episode_id, r.instrument ORDER BY r.session_number) AS change
    FROM rating r
    JOIN instrument i ON i.code = r.instrument AND i.construct = 'alliance'
)
SELECT instrument, stddev_samp(change) AS sd_change, count(change) AS n_changes
FROM d
WHERE change IS NOT NULL
GROUP BY instrument
ORDER BY instrument
