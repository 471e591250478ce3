"""`alliance validate`: the report's tables on the demo service (reference agreement, cross-validated band
coverage, flag shares, rupture rates, planted-event recall), its self-contained HTML and the same figures as
CSV; a database without a truth table says so. Opened in headless Chromium with every request refused
where Chromium is available."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from alliance.cli import main
from alliance.validate import REFERENCE_DIR, reference_agreement, validate, write_report
from tests.conftest import AS_OF


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.found += [(tag, value or "") for name, value in attrs if name in ("src", "href")]


def _references(text: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(text)
    return parser.found


@pytest.fixture(scope="module")
def report(demo_db):
    return validate(demo_db, as_of=AS_OF)


def test_reference_agreement_is_complete():
    table = reference_agreement(REFERENCE_DIR)
    assert len(table) == 8
    assert (table["agreeing"] == table["compared"]).all(), table[table["agreeing"] != table["compared"]]
    assert table["max_difference"].max() < 1e-9
    assert set(table["package"]) == {"suddengains 0.7.2", "clinicalsignificance 2.1"}
    assert reference_agreement(Path("/nonexistent")).empty


def test_band_coverage_and_flags_by_instrument_and_session_range(report):
    cov = report.tables["band_coverage"]
    assert set(cov["instrument"]) == {"ORS", "PHQ-9", "GAD-7"}
    assert set(cov["session_range"]) == {"2–4", "5–8", "9+", "all"}
    assert set(cov["bands"]) == {"calibrated", "before calibration"}
    assert (cov["n_ratings"] > 100).all() and (cov["n_episodes"] > 50).all()
    mine = cov[(cov["bands"] == "calibrated") & (cov["session_range"] == "all")]
    assert ((mine["coverage_10_90"] - 0.80).abs() <= 0.05).all()
    assert ((mine["coverage_25_75"] - 0.50).abs() <= 0.05).all()
    flags = report.tables["flag_shares"]
    overall = flags[(flags["bands"] == "calibrated") & (flags["session_range"] == "all")]
    assert ((overall["red"] - 0.10).abs() <= 0.03).all()
    assert ((overall["red_or_yellow"] - 0.25).abs() <= 0.04).all()
    # The unfavourable tail: below the 10th percentile for ORS, above the 90th for PHQ-9 and GAD-7.
    ors = cov[(cov["instrument"] == "ORS") & (cov["bands"] == "calibrated") & (cov["session_range"] == "all")]
    assert overall.set_index("instrument").loc["ORS", "red"] == pytest.approx(ors["below_p10"].iloc[0])
    mix = report.tables["status_mix"]
    assert set(mix["at"]) == {"every later rating", "latest rating"}
    assert mix[["red", "yellow", "green", "white"]].sum(axis=1).round(9).eq(1).all()


def test_rupture_rates_at_both_k_and_both_scales(report):
    rates = report.tables["rupture_rates"]
    assert set(zip(rates["scale"], rates["k"], strict=True)) == {
        ("robust", 1.0),
        ("robust", 2.0),
        ("plain", 1.0),
        ("plain", 2.0),
    }
    by = rates.set_index(["instrument", "scale", "k"])["per_100_sessions"]
    for instrument in ("SRS", "WAI-SR"):
        assert by[(instrument, "robust", 1.0)] > by[(instrument, "robust", 2.0)] > 0
        # The demo's own planted ruptures inflate the plain SD: it finds fewer.
        assert by[(instrument, "plain", 2.0)] <= by[(instrument, "robust", 2.0)]
    sd = rates.set_index(["instrument", "scale", "k"])["sd_service"]
    assert sd[("SRS", "robust", 2.0)] < sd[("SRS", "plain", 2.0)]


def test_planted_recall_on_the_demo(report):
    planted = report.tables["planted_recall"].set_index("detector")
    assert planted.loc["ruptures, k = 2 (strict)", "recall"] >= 0.9
    assert planted.loc["sudden gains (candidate, ±1 session)", "recall"] >= 0.9
    assert planted.loc["deterioration (reliably worse than intake)", "recall"] >= 0.9
    assert (
        planted.loc["ruptures, k = 1 (sensitive)", "found"] > planted.loc["ruptures, k = 2 (strict)", "found"]
    )


def test_the_report_is_self_contained_with_its_csv(report, tmp_path):
    out, folder = write_report(report, tmp_path / "out" / "report.html")
    text = out.read_text(encoding="utf-8")
    for heading in ("1. Agreement", "2. Expected-response bands", "3. Flags", "4. Ruptures", "5. Planted"):
        assert heading in text
    # Nothing is fetched: no element asks for a script, style sheet or image from a URL or a file beside it
    # (the HTML parser reads script contents as text, as a browser does; only CSV download links remain).
    assert [(tag, url) for tag, url in _references(text) if not url.startswith("data:")] == []
    assert "Bokeh" in text and text.count('data-root-id="') == 4  # four charts, BokehJS inline
    written = {p.stem for p in folder.glob("*.csv")}
    assert written == set(report.tables)
    again = pd.read_csv(folder / "band_coverage.csv")
    pd.testing.assert_frame_equal(
        again, report.tables["band_coverage"].reset_index(drop=True), check_dtype=False, rtol=1e-9
    )


def test_a_database_without_a_truth_table_says_so(edge_db, tmp_path):
    v = validate(edge_db, as_of=AS_OF)
    assert "planted_recall" not in v.tables
    assert any("No planted_events table" in n for n in v.notes)
    out, _ = write_report(v, tmp_path / "edge.html")
    assert "only demo databases do" in out.read_text(encoding="utf-8")


def test_cli(demo_db, tmp_path, capsys):
    assert main(["validate", "--db", str(demo_db), "--out", str(tmp_path / "v.html")]) == 0
    assert "Wrote" in capsys.readouterr().out and (tmp_path / "v.html").is_file()
    assert main(["validate", "--db", str(tmp_path / "missing.duckdb")]) == 2


@pytest.mark.browser  # skipped with the browser tier where Chromium is absent, mandatory in CI
def test_the_report_opens_offline_in_chromium(report, tmp_path, page):
    out, _ = write_report(report, tmp_path / "report.html")
    refused, errors = [], []

    def route(r):
        if r.request.url == out.as_uri():
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function("window.Bokeh && Bokeh.documents.length === 1", timeout=30_000)
    # Every chart rendered from the inline script, with no request leaving the file.
    page.wait_for_function("Bokeh.documents[0].roots().length === 4", timeout=30_000)
    assert refused == [] and errors == []


def test_the_report_asks_for_no_file_in_a_process_with_panels_extensions_loaded(report, tmp_path):
    """A process that has imported Panel's extension models (a served page, a notebook, the load generator)
    adds their style sheets to Bokeh's resources as links to the server's files; the report leaves them out.
    (Last in this file: the models stay imported for the rest of the process.)"""
    from alliance.loadgen import register_models

    register_models()  # every Panel model, as in such a process
    out, _ = write_report(report, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert [(tag, url) for tag, url in _references(text) if not url.startswith("data:")] == []
    assert text.count('data-root-id="') == 4
