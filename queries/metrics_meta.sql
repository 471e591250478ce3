-- The stamp of the stored metrics: data version, settings, the date they describe, when computed.
-- scope: no client data (metadata of the metrics store)
-- params: none
-- columns: key, value
-- cache: per data version
SELECT key, value FROM metrics_meta ORDER BY key
