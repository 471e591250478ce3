-- Stored expected-response bands (alliance refresh) per outcome instrument, intake bin and session.
-- scope: service-wide aggregate by design (percentiles over the service's closed episodes; no episode rows)
-- params: none
-- columns: instrument, intake_bin, half_width, n_episodes, session_number, n_at_session, p10, p25, p50, p75, p90
SELECT instrument, intake_bin, half_width, n_episodes, session_number, n_at_session, p10, p25, p50, p75,
    p90 FROM metrics_etr_bands
