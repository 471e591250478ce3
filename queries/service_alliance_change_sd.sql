-- Service-wide alliance ratings with the within-episode change from the previous available rating of the same
-- instrument (a gap bridged): the input of the service scale of session-to-session alliance change for the rupture
-- rule (docs/methods.md §7; alliance.metrics.alliance_signals.service_change_scale leaves out the changes that
-- belong to ruptures). Used only to compute one number per instrument; rows never reach a page.
-- scope: service-wide aggregate by design (one number per instrument)
-- params: none
-- columns: instrument, episode_id, session_number, score, change
SELECT
    r.instrument,
    r.episode_id,
    r.session_number,
    r.score,
    r.score - lag(r.score) OVER (PARTITION BY r.episode_id, r.instrument ORDER BY r.session_number) AS change
FROM rating r
JOIN instrument i ON i.code = r.instrument AND i.construct = 'alliance'
WHERE r.score IS NOT NULL
ORDER BY r.instrument, r.episode_id, r.session_number
