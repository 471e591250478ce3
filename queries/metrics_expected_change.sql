-- Stored percentiles of change from intake by instrument and session (alliance refresh), caseload picture.
-- scope: service-wide aggregate by design (percentiles over at least 10 closed episodes per session)
-- params: none
-- columns: instrument, session_number, p10, p25, p50, p75, p90, n
SELECT * FROM metrics_expected_change ORDER BY instrument, session_number
