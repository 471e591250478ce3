"""The meeting pack file: self-contained (nothing fetched, BokehJS inline, one Bokeh document), one section per
agenda client whose charts are on that client's own axes (the outcome on its instrument's scale, the sessions
of that episode), printed without toolbars or wheel zoom, showing what the client page shows for that client;
and the pack reports its progress as it is built."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from alliance.agenda import meeting_agenda, supervisors
from alliance.marks import MarkStore
from alliance.service import Service
from alliance.state import forget_service_metrics, service_metrics
from tests.conftest import AS_OF

#: Instruments of the agenda the pack is built from: it must mix scales for the axes to be tested.
MIN_OUTCOME_SCALES = 2


@pytest.fixture(scope="module")
def pack(demo_db, tmp_path_factory):
    """A pack of agenda clients drawn from every team's agenda: first the strongest client of each outcome
    instrument (so the pack mixes scales and episode lengths), then the next ones, 10 in all."""
    from alliance.pack import build_pack

    out = tmp_path_factory.mktemp("pack") / "pack.html"
    forget_service_metrics()
    service = Service.open(demo_db)
    metrics = service_metrics(service).for_scope(service)
    agenda = pd.concat([meeting_agenda(metrics, s, AS_OF) for s in supervisors(service)], ignore_index=True)
    first = agenda.drop_duplicates("instrument")
    agenda = pd.concat([first, agenda.drop(first.index)]).head(10).reset_index(drop=True)
    assert agenda["instrument"].nunique() >= MIN_OUTCOME_SCALES
    calls: list[tuple[int, int, str]] = []
    held = build_pack(
        service,
        supervisors(service)[0],
        AS_OF,
        out,
        MarkStore(out.with_suffix(".sqlite")),
        progress=lambda done, total, message: calls.append((done, total, message)),
        agenda=agenda,
    )
    return out, held, calls


# -- reading the file -------------------------------------------------------------------------------------
def _document(text: str) -> dict:
    scripts = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', text, re.S)
    assert len(scripts) == 1, "the pack embeds one Bokeh document"
    (doc,) = json.loads(html.unescape(scripts[0])).values()
    return doc


def _index(doc: dict) -> dict[str, dict]:
    """Every serialized model of the document by id (a model is written out once, then referred to)."""
    index: dict[str, dict] = {}

    def walk(o) -> None:
        if isinstance(o, dict):
            if o.get("type") == "object" and "id" in o:
                index[o["id"]] = {"attributes": {}, **o}
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(doc["roots"])
    return index


def _model(index: dict, ref) -> dict:
    return index[ref["id"]]


def _figures(index: dict, root: dict) -> list[dict]:
    """The figures of one client's grid, top to bottom: outcome, alliance, events strip."""
    children = root["attributes"]["children"]
    return [_model(index, c[0]) for c in sorted(children, key=lambda c: c[1])]


def _range(index: dict, figure: dict, which: str) -> tuple[float, float]:
    r = _model(index, figure["attributes"][which])["attributes"]
    return float(r.get("start", 0)), float(r.get("end", 1))  # Bokeh writes only what differs from defaults


def _axis_label(index: dict, figure: dict, which: str) -> str:
    (axis,) = figure["attributes"][which]
    return _model(index, axis)["attributes"].get("axis_label", "")


def _column(value) -> np.ndarray:
    """A serialized column: a typed array (base64) or a list."""
    if isinstance(value, dict) and value.get("type") == "ndarray":
        raw = value["array"]
        if isinstance(raw, dict) and raw.get("type") == "bytes":
            data = base64.b64decode(raw["data"])
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data  # Bokeh compresses large arrays
            return np.frombuffer(data, dtype=value["dtype"])
        return np.asarray(raw)
    return np.asarray(value)


def _sources(index: dict, figure: dict) -> list[dict[str, np.ndarray]]:
    """The data of every glyph renderer of a figure, as columns."""
    out = []
    for ref in figure["attributes"]["renderers"]:
        renderer = _model(index, ref)
        source = renderer["attributes"].get("data_source")
        if source is None:
            continue
        data = _model(index, source)["attributes"]["data"]
        entries = data["entries"] if isinstance(data, dict) and data.get("type") == "map" else data.items()
        out.append({k: _column(v) for k, v in entries})
    return out


def _scales(db) -> dict[str, tuple[float, float]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT code, min_score, max_score FROM instrument").fetchall()
    finally:
        con.close()
    return {code: (lo, hi) for code, lo, hi in rows}


def _sessions(db, episode_id: str) -> list[int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT session_number FROM rating WHERE episode_id = ? ORDER BY 1", [episode_id]
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def _section(text: str, episode_id: str) -> str:
    m = re.search(rf'<section class="client" id="{re.escape(episode_id)}">(.*?)</section>', text, re.S)
    assert m, f"no section for {episode_id}"
    return m.group(1)


# -- the tests ----------------------------------------------------------------------------------------------
def test_pack_is_self_contained_one_document_one_section_per_client(pack):
    out, agenda, _ = pack
    text = out.read_text(encoding="utf-8")
    # Nothing to fetch: no element loads a file or address (BokehJS is inline), no style sheet or CSS url.
    assert not re.findall(
        r"<(?:script|img|iframe|source|link|embed|object)\b[^>]*\b(?:src|href)\s*=", text, re.I
    )
    markup = re.sub(r"<script\b.*?</script>", "", text, flags=re.S | re.I)  # the page around BokehJS
    assert not re.findall(r"@import|url\(\s*[\"']?(?!data:)", markup, re.I)
    assert not re.findall(r"@import\s+(?:url\()?\s*[\"']?https?:|url\(\s*[\"']?https?:", text, re.I)
    assert "Bokeh.embed" in text and len(text) > 500_000  # BokehJS itself is in the file
    doc = _document(text)
    index = _index(doc)
    remote = {u for m in index.values() for u in re.findall(r"https?://[^\s\"'\\]+", json.dumps(m))}
    assert not remote, f"models of the pack load {sorted(remote)}"
    # One root per agenda client, in agenda order: its three charts.
    roots = doc["roots"]
    assert [r["attributes"]["name"] for r in roots] == [f"pack-client-{e}" for e in agenda["episode_id"]]
    for root, episode_id in zip(roots, agenda["episode_id"], strict=True):
        assert root["name"] == "GridPlot"
        figures = _figures(index, root)
        assert [f["name"] for f in figures] == ["Figure"] * 3
        assert all(f["attributes"]["tags"] == [f"episode:{episode_id}"] for f in figures)
        assert any(len(next(iter(s.values()), [])) for f in figures[:2] for s in _sources(index, f))
    # The agenda links every client to its section, whose heading names it.
    for r in agenda.itertuples():
        link = f'<a href="#{r.episode_id}">Client {r.client_id} · episode {r.episode_id}</a>'
        assert link in text
        assert f"<h3>Client {r.client_id} · episode {r.episode_id}</h3>" in _section(text, r.episode_id)


def test_each_clients_charts_are_on_their_own_axes(pack, demo_db):
    out, agenda, _ = pack
    doc = _document(out.read_text(encoding="utf-8"))
    index = _index(doc)
    scales = _scales(demo_db)
    seen_y, seen_x = set(), set()
    for root, episode_id in zip(doc["roots"], agenda["episode_id"], strict=True):
        outcome, alliance, events = _figures(index, root)
        for figure, construct in ((outcome, "outcome"), (alliance, "alliance")):
            label = _axis_label(index, figure, "left")
            code = label.removesuffix(f" ({construct})")
            assert code in scales, (episode_id, label)
            lo, hi = scales[code]
            y0, y1 = _range(index, figure, "y_range")
            # The instrument's whole scale, a little headroom above: never another client's scale.
            assert y0 == pytest.approx(lo) and y1 == pytest.approx(hi + (hi - lo) * 0.04), (episode_id, code)
            if construct == "outcome":
                seen_y.add((y0, y1))
        sessions = _sessions(demo_db, episode_id)
        x0, x1 = _range(index, outcome, "x_range")
        assert x0 < min(sessions) and x1 > max(sessions), (episode_id, (x0, x1), sessions)
        # The expected course runs at most two sessions past the last (at least to session 6), plus 8 %.
        right = max(max(sessions) + 2, 6)
        assert x1 <= right + max((right - 1) * 0.08, 0.5) + 1e-9, (episode_id, (x0, x1), sessions)
        assert _range(index, alliance, "x_range") == (x0, x1) == _range(index, events, "x_range")
        seen_x.add((x0, x1))
    assert len(seen_y) >= MIN_OUTCOME_SCALES and len(seen_x) >= 2  # the clients' axes differ


def test_printed_charts_have_no_toolbar_and_no_zoom(pack):
    out, _, _ = pack
    doc = _document(out.read_text(encoding="utf-8"))
    index = _index(doc)
    for root in doc["roots"]:
        assert root["attributes"].get("toolbar_location", "above") is None
        for figure in _figures(index, root):
            assert figure["attributes"].get("toolbar_location", "right") is None
    kinds = {m["name"] for m in index.values()}
    assert "HoverTool" in kinds  # hover still tells each point's story
    assert not kinds & {"WheelZoomTool", "PanTool", "BoxZoomTool", "ResetTool", "SaveTool"}, kinds


def test_a_client_in_the_pack_matches_the_client_page(pack, demo_db):
    """The summary, what the episode lacks, the methods and the charts' data, ranges and labels of a pack
    client are those of the client page opened on that client."""
    from alliance.pages import ClientPage

    out, agenda, _ = pack
    text = out.read_text(encoding="utf-8")
    doc = _document(text)
    index = _index(doc)
    checked = 0
    for position in (0, len(agenda) - 1):  # the first drawn and the last (drawn over the others)
        row = agenda.iloc[position]
        page = ClientPage(service=Service.open(demo_db))  # a page rendered once, as a browser opens it
        page.selection.open(row["client_id"], row["episode_id"])
        assert page.selection.episode == row["episode_id"]
        page._show(page.selection.episode_info, page.selection.story, list(page.selection.notes))
        section = _text(_section(text, row["episode_id"]))
        page_summary = _text(pn_markdown(page.summary.object))
        assert page_summary and page_summary in section
        for note in page.selection.notes:
            assert note in section
        for method in page.selection.story.methods:
            assert method in section
        grid = page.charts.grid
        page_figures = [c[0] for c in sorted(grid.children, key=lambda c: c[1])]
        pack_figures = _figures(index, doc["roots"][position])
        assert len(page_figures) == len(pack_figures) == 3
        for mine, theirs in zip(pack_figures, page_figures, strict=True):
            assert _range(index, mine, "x_range") == pytest.approx((theirs.x_range.start, theirs.x_range.end))
            if mine is not pack_figures[-1]:
                y = (theirs.y_range.start, theirs.y_range.end)
                assert _range(index, mine, "y_range") == pytest.approx(y)
                assert _axis_label(index, mine, "left") == theirs.left[0].axis_label
            drawn = sorted(
                (k, tuple(np.round(v.astype(float), 6)))
                for s in _sources(index, mine)
                for k, v in s.items()
                if k.endswith("_score") and len(v)
            )
            shown = sorted(
                (k, tuple(np.round(np.asarray(v, dtype=float), 6)))
                for r in theirs.renderers
                if hasattr(r, "data_source")
                for k, v in r.data_source.data.items()
                if k.endswith("_score") and len(v)
            )
            assert drawn == shown, row["episode_id"]
        checked += 1
    assert checked == 2


def pn_markdown(text: str) -> str:
    """Markdown rendered as the client page's Markdown pane renders it."""
    import panel as pn

    return html.unescape(pn.pane.Markdown(text)._transform_object(text)["object"])


def test_progress_is_reported_client_by_client(pack):
    _, agenda, calls = pack
    total = len(agenda) + 1  # each client, then the file
    assert all(t == total for _, t, _ in calls)
    done = [d for d, _, _ in calls]
    assert done[0] == 0 and done[-1] == total and done == sorted(done)
    assert set(range(1, len(agenda) + 1)) <= set(done)  # after each client
    assert all(isinstance(m, str) and m for _, _, m in calls)


def test_the_pack_draws_on_its_own_document_whatever_curdoc_is(demo_db, tmp_path):
    """On a threaded server Bokeh's ``curdoc()`` is process-wide and can be another session's document,
    already destroyed when that session closed. A pack built then must not touch it (CI caught a pack
    download failing with "'Document' object has no attribute '_theme'")."""
    from bokeh.document import Document
    from bokeh.io.doc import patch_curdoc

    from alliance.pack import build_pack

    forget_service_metrics()
    service = Service.open(demo_db)
    metrics = service_metrics(service).for_scope(service)
    supervisor = supervisors(service)[0]
    agenda = meeting_agenda(metrics, supervisor, AS_OF).head(2).reset_index(drop=True)
    assert len(agenda) == 2
    closed = Document()

    def session(event):  # stands for the closed session (Bokeh keys its change callback by the session)
        return None

    closed.on_change(session)
    closed.destroy(session)  # what a session leaves behind when its browser tab closes
    out = tmp_path / "pack.html"
    with patch_curdoc(closed):
        build_pack(service, supervisor, AS_OF, out, MarkStore(tmp_path / "marks.sqlite"), agenda=agenda)
    doc = _document(out.read_text(encoding="utf-8"))
    assert len(doc["roots"]) == 2
