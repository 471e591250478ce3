"""alliance.inert: hostile strings from data or users stay text in HTML, Markdown, URLs and CSV cells."""

from __future__ import annotations

import csv
import html
import io
import urllib.parse
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import panel as pn
import pytest

from alliance.inert import csv_cell, file_name, html_text, link, url_param

IMG = "<img src=x onerror=alert(1)>"
HYPERLINK = '=HYPERLINK("http://x","y")'
JS_LINK = "[a](javascript:alert(1))"
NUL = "C-1\x00<script>alert(2)</script>"
LONG = ("<b>*x*</b>" * 1000)[:10_000]
HOSTILE = [
    IMG,
    HYPERLINK,
    "+cmd",
    "-2+3",
    "@SUM(A1)",
    NUL,
    LONG,
    JS_LINK,
    "*x*",
    "_x_",
    "`x`",
    "- x",
    "1. x",
    "# h",
    "a | b",
    "~~s~~",
    "$$x$$",
    ":smile:",
    "evil.com",
    "http://x.example/?a=1",
    "<http://x>",
    "line\n\n# heading\n- item",
    "</script><script>alert(3)</script>",
    "\"'><svg onload=alert(4)>",
    "&amp;&lt;",
    "C-3fa2b1",
]


class _Parsed(HTMLParser):
    """Tags, attributes and text content of an HTML fragment, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.data: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.data.append(data)

    @property
    def text(self) -> str:
        return "".join(self.data)


def _shown(value: str) -> str:
    """What a browser shows for a value: unprintable characters become U+FFFD."""
    return "".join("\ufffd" if ord(c) < 32 and c not in "\t\n\r" else c for c in value)


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:30]))
def test_html_text_is_literal_text_in_html(value):
    out = html_text(value)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    parsed = _Parsed(f"<p>{out}</p>")
    assert [t for t, _ in parsed.tags] == ["p"], "no element comes from the value"
    assert parsed.text == _shown(value)


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:30]))
@pytest.mark.parametrize("where", ["inline", "line start"])
def test_html_text_is_literal_text_in_panel_markdown(value, where):
    """Panel's Markdown pane (markdown-it, raw HTML on, linkify, GFM tables, emoji): the value is neither
    markup, nor a link, nor emphasis, nor a list, heading or table; its text is exactly the value."""
    source = f"**Client** {html_text(value)}" if where == "inline" else html_text(value)
    rendered = html.unescape(pn.pane.Markdown()._transform_object(source)["object"])  # what the browser gets
    parsed = _Parsed(rendered)
    allowed = {"p", "strong"} if where == "inline" else {"p"}
    assert {t for t, _ in parsed.tags} <= allowed, (value, rendered[:300])
    expected = ("Client " if where == "inline" else "") + _shown(value)
    assert parsed.text.strip() == expected.strip()


def test_html_text_in_material_typography_survives_its_html_decoding():
    """Material UI's Typography and Alert decode their text once more before setting innerHTML: a value
    escaped once must still arrive as text."""
    import panel_material_ui as pmui
    from bokeh.document import Document

    for pane in (pmui.Typography(f"Supervisee {html_text(IMG)}"), pmui.Alert(object=html_text(IMG))):
        sent = pane.get_root(Document()).data.object
        decoded = html.unescape(sent)  # the component's html_decode
        parsed = _Parsed(decoded)
        assert "img" not in [t for t, _ in parsed.tags]
        assert IMG in parsed.text


def test_html_text_other_values():
    assert html_text(None) == "" and html_text(float("nan")) == "" and html_text(pd.NA) == ""
    assert html_text(12) == "12"
    assert html_text("C-3fa2b1") == "C-3fa2b1", "ordinary codes are unchanged"
    assert html_text("-2+3").startswith("&#45;"), "a leading dash cannot start a list"
    assert html_text("\ud800x") == "\ufffdx", "a lone surrogate cannot break the page's encoding"
    assert len(html_text(LONG)) > len(LONG), "nothing is cut off"
    # Without Markdown escaping (for HTML never read as Markdown): only HTML's characters change.
    assert html_text("CL.04_*x*", markdown=False) == "CL.04_*x*"
    assert html_text(IMG, markdown=False) == "&lt;img src=x onerror=alert(1)&gt;"


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:30]))
def test_url_param_round_trips_and_cannot_add_parameters(value):
    q = url_param(value)
    assert not set(q) & set("&=#?/<>\"' \n\x00+")
    parsed = urllib.parse.parse_qs(f"client={q}&episode=E1", keep_blank_values=True)
    assert parsed["episode"] == ["E1"]
    assert parsed["client"] == [_shown(value)]


def test_link_encodes_parameters_and_escapes_text():
    a = link("client", {"client": IMG, "episode": "E1&client=other#x"}, JS_LINK)
    parsed = _Parsed(a)
    assert [t for t, _ in parsed.tags] == ["a"]
    (href,) = [v for k, v in parsed.tags[0][1] if k == "href"]
    assert href.startswith("client?")
    assert urllib.parse.parse_qs(href.split("?", 1)[1]) == {"client": [IMG], "episode": ["E1&client=other#x"]}
    assert parsed.text == JS_LINK
    rendered = html.unescape(pn.pane.Markdown()._transform_object(a)["object"])
    assert [t for t, _ in _Parsed(rendered).tags if t != "p"] == ["a"], "no second link from the text"
    assert "javascript" not in href
    for bad in ("javascript:alert(1)", "https://evil.example/", 'client" onclick="x'):
        with pytest.raises(ValueError):
            link(bad, {}, "x")


@pytest.mark.parametrize(
    "value, expected",
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("C-3fa2b1", "C-3fa2b1"),
        ("reliably improved", "reliably improved"),
        ("-3.5", "-3.5"),  # text that is just a number runs nothing
        ("", ""),
    ],
)
def test_csv_cell_neutralises_formulas(value, expected):
    assert csv_cell(value) == expected


def test_csv_cell_keeps_numbers_and_missing_values():
    for v in (-3.5, np.float64(-3.5), -2, np.int64(-2), True, np.bool_(False), None):
        assert csv_cell(v) is v
    assert np.isnan(csv_cell(float("nan")))
    assert csv_cell(pd.Timestamp("2026-01-02")) == pd.Timestamp("2026-01-02")
    assert csv_cell(NUL) == NUL, "a NUL inside text is the CSV writer's business, not a formula"
    assert csv_cell(LONG) == LONG


def test_csv_cells_written_and_read_back():
    """Through a real CSV writer and reader: no cell starts a formula, numbers stay numbers."""
    frame = pd.DataFrame({"code": [HYPERLINK, "+cmd", "-2+3", "@SUM(A1)", "ok"], "value": [-3.5, 1, 2, 3, 4]})
    frame["code"] = frame["code"].map(csv_cell)
    text = frame.to_csv(index=False)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [r[0][0] for r in rows[:4]] == ["'"] * 4
    assert rows[0][1] == "-3.5"


def test_file_name():
    assert file_name("../../etc/passwd") == "etc_passwd"
    assert file_name(IMG) == "img_src_x_onerror_alert_1"
    assert file_name("") == "x" and file_name("CL04") == "CL04"
    assert len(file_name(LONG)) <= 64
