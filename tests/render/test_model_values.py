"""A served page's models are sent with the properties Bokeh itself would send (``alliance.model_values``):
every page's whole document serialises to the same JSON with the server's shortcut as with Bokeh's own
method, and so does a themed chart (values a theme sets are sent, the defaults it leaves are not)."""

from __future__ import annotations

import json

import panel as pn
import pytest
from bokeh.core.has_props import HasProps
from bokeh.document import Document
from bokeh.plotting import figure
from bokeh.themes import Theme

from alliance import model_values
from alliance.pages import caseload_page, client_page, comparison_page, meeting_page


def serialised(doc: Document, method) -> str:
    """The document as the server sends it, with ``method`` as ``query_properties_with_values``."""
    saved = HasProps.query_properties_with_values
    HasProps.query_properties_with_values = method
    try:
        return json.dumps(doc.to_json(deferred=False), sort_keys=False, default=str)
    finally:
        HasProps.query_properties_with_values = saved


def test_bokeh_method_is_kept_for_the_comparison():
    # The module keeps Bokeh's own method (not itself, were it installed before import).
    assert model_values.BOKEH_QUERY is not model_values.query_properties_with_values
    assert model_values.BOKEH_QUERY.__module__ == "bokeh.core.has_props"


@pytest.mark.parametrize("make", [client_page, caseload_page, comparison_page, meeting_page])
def test_every_page_serialises_as_bokeh_does(demo_db, make):
    doc = Document()
    doc.add_root(pn.panel(make(demo_db)).get_root(doc))
    n_models = len(doc.models)
    assert n_models > 40, "a whole page"
    # The shortcut first: Bokeh's own method works defaults out (some of them kept on the model), which must
    # not be what makes the two equal.
    ours = serialised(doc, model_values.query_properties_with_values)
    theirs = serialised(doc, model_values.BOKEH_QUERY)
    assert ours == theirs
    assert len(doc.models) == n_models


def test_a_themed_chart_sends_the_theme_values_and_what_was_set():
    doc = Document()
    doc.theme = Theme(
        json={"attrs": {"Plot": {"background_fill_color": "#123456"}, "Axis": {"axis_label": "x"}}}
    )
    fig = figure(title="t", width=300, height=200)
    fig.line([1, 2, 3], [3, 1, 2], line_width=3)
    doc.add_root(fig)
    ours = serialised(doc, model_values.query_properties_with_values)
    assert ours == serialised(doc, model_values.BOKEH_QUERY)
    assert '"background_fill_color": "#123456"' in ours and '"line_width": 3' in ours
    # A property left at its default is not sent (the browser has the same default).
    assert '"min_border_left"' not in ours


def test_install_checks_this_bokeh_first_and_keeps_bokehs_method_when_they_differ(monkeypatch, caplog):
    monkeypatch.setattr(HasProps, "query_properties_with_values", model_values.BOKEH_QUERY)

    def drops_everything(self, query, *, include_defaults=True, include_undefined=False):
        return {}

    monkeypatch.setattr(model_values, "query_properties_with_values", drops_everything)
    assert not model_values.install()
    assert HasProps.query_properties_with_values is model_values.BOKEH_QUERY
    assert "sends models differently" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(HasProps, "query_properties_with_values", model_values.BOKEH_QUERY)
    assert model_values.install()
    assert HasProps.query_properties_with_values is model_values.query_properties_with_values
