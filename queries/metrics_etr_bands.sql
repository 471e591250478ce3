-- Stored expected-response bands (alliance refresh) per outcome instrument, intake bin and session, calibrated
-- by cross-validation by episode, with the held-out coverage of each session range (docs/methods.md §8).
-- scope: service-wide aggregate by design (percentiles over the service's closed episodes; no episode rows)
-- params: none
-- columns: instrument, intake_bin, half_width, n_episodes, session_number, n_at_session, p10, p25, p50, p75, p90, n_reference, calibration, session_range, coverage_10_90, coverage_25_75, n_held_out
SELECT instrument, intake_bin, half_width, n_episodes, session_number, n_at_session, p10, p25, p50, p75,
    p90, n_reference, calibration, session_range, coverage_10_90, coverage_25_75, n_held_out
FROM metrics_etr_bands
