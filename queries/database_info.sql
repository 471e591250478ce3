-- Facts about the database file itself (schema version, the date the data describe). No client data.
-- scope: not applicable (file metadata only)
-- params: none
-- columns: key, value
-- cache: per data version
SELECT key, value FROM alliance_meta ORDER BY key
