-- The instrument registry as stored in the database, one row per instrument and norm
-- (instruments without norms get one row with NULL norms). No client data.
-- scope: not applicable (instrument registry only)
-- params: none
-- columns: code, position, name, construct, min_score, max_score, higher_is_better, n_items, population, norm_set, cutoff, clinical_side, reliable_change, clinical_mean, clinical_sd, functional_mean, functional_sd, reliability, norm_source, verified
-- cache: per data version
SELECT
    i.code, i.position, i.name, i.construct, i.min_score, i.max_score, i.higher_is_better, i.n_items,
    n.population, n.norm_set, n.cutoff, n.clinical_side, n.reliable_change, n.clinical_mean,
    n.clinical_sd, n.functional_mean, n.functional_sd, n.reliability, n.source AS norm_source, n.verified
FROM instrument i
LEFT JOIN instrument_norm n ON n.instrument = i.code
ORDER BY i.position, n.population, n.norm_set
