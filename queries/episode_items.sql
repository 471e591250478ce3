-- Item scores of one instrument in one episode, with each item's short label and subscale (never the
-- item wording), for the item / subscale breakdown on the client page.
-- params: scope_all, scope_clinicians, episode_id, instrument
-- columns: session_number, item_no, label, subscale, score
SELECT ri.session_number, ri.item_no, ii.label, ii.subscale, ri.score
FROM rating_item ri
JOIN episode e USING (episode_id)
JOIN instrument_item ii ON ii.instrument = ri.instrument AND ii.item_no = ri.item_no
WHERE ri.episode_id = $episode_id
  AND ri.instrument = $instrument
  AND ($scope_all OR list_contains(CAST($scope_clinicians AS VARCHAR[]), e.clinician_id))
ORDER BY ri.session_number, ri.item_no
