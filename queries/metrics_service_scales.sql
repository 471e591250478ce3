-- Stored service-wide scales (alliance refresh): intake SD per outcome instrument, SD of alliance change.
-- scope: service-wide aggregate by design (one number per instrument and scale)
-- params: none
-- columns: instrument, scale, value, n
SELECT instrument, scale, value, n FROM metrics_service_scales ORDER BY scale, instrument
