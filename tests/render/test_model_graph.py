"""``alliance.model_graph.batch``: Bokeh walks a document's model graph at the end of a batch only when a
change in it asked for a walk, and then the document knows exactly the models Bokeh's own walk finds."""

from __future__ import annotations

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.document.models import DocumentModelManager
from bokeh.models import ColumnDataSource, Div
from bokeh.plotting import figure
from panel.io.state import set_curdoc

from alliance.model_graph import batch
from alliance.pages import client_page


@pytest.fixture
def walks(monkeypatch):
    """How many times Bokeh walked a document's model graph."""
    count = {"n": 0}
    bokeh_recompute = DocumentModelManager.recompute

    def recompute(self):
        count["n"] += 1
        return bokeh_recompute(self)

    monkeypatch.setattr(DocumentModelManager, "recompute", recompute)
    return count


def chart_doc(walks=None):
    """A document with one line chart; ``walks`` counted from after it was built."""
    doc = Document()
    source = ColumnDataSource({"x": [1, 2, 3], "y": [3, 1, 2]})
    fig = figure(title="before", width=300, height=200)
    fig.line("x", "y", source=source)
    doc.add_root(fig)
    if walks is not None:
        walks["n"] = 0
    return doc, fig, source


def known(doc) -> set[str]:
    return {m.id for m in doc.models}


def reachable(doc) -> set[str]:
    return {m.id for root in doc.roots for m in root.references()}


def untouched(doc) -> bool:
    """The batch left the document's model manager as Bokeh made it."""
    return doc.models._freeze_count == 0 and not {"invalidate", "_pop_freeze"} & set(vars(doc.models))


def test_values_only_no_walk(walks):
    doc, fig, source = chart_doc(walks)
    before = known(doc)
    with batch(doc):
        fig.title.text = "after"
        source.data = {"x": [1, 2], "y": [2, 2]}
        fig.x_range.start = 0
    assert walks["n"] == 0
    assert known(doc) == before == reachable(doc)
    assert fig.title.text == "after" and source.data["x"] == [1, 2]
    assert untouched(doc)


def test_a_new_renderer_one_walk_and_its_models_known(walks):
    doc, fig, _ = chart_doc(walks)
    with batch(doc):
        new = fig.scatter([1], [1])  # a renderer, its glyph and its source: properties holding models
        fig.title.text = "after"
        assert walks["n"] == 0, "no walk inside the batch"
    assert walks["n"] == 1
    assert known(doc) == reachable(doc)
    assert new.id in known(doc) and new.data_source.id in known(doc)
    assert new.document is doc
    assert untouched(doc)


def test_a_removed_renderer_is_forgotten(walks):
    doc, fig, _ = chart_doc(walks)
    old = fig.renderers[0]
    with batch(doc):
        fig.renderers = []
    assert walks["n"] == 1
    assert old.id not in known(doc) and known(doc) == reachable(doc)
    assert old.document is None
    assert untouched(doc)


def test_bokehs_own_freeze_inside_counts(walks):
    # add_root freezes and unfreezes by itself (no property change asks for the walk).
    doc, _, _ = chart_doc(walks)
    div = Div(text="x")
    with batch(doc):
        doc.add_root(div)
        assert walks["n"] == 0
    assert walks["n"] == 1
    assert div.id in known(doc) and known(doc) == reachable(doc)
    assert untouched(doc)


def test_nested_batches_walk_once_at_the_outer_end(walks):
    doc, fig, _ = chart_doc(walks)
    with batch(doc):
        with batch(doc):
            new = fig.scatter([1], [1])
        assert walks["n"] == 0, "the inner end leaves the walk to the outer"
        assert doc.models._freeze_count == 1
    assert walks["n"] == 1
    assert new.id in known(doc) and known(doc) == reachable(doc)
    assert untouched(doc)


def test_an_error_inside_leaves_the_document_as_bokeh_made_it(walks):
    doc, fig, _ = chart_doc(walks)
    with pytest.raises(RuntimeError), batch(doc):
        fig.scatter([1], [1])
        raise RuntimeError("boom")
    assert walks["n"] == 1 and known(doc) == reachable(doc)
    assert untouched(doc)
    fig.scatter([2], [2])  # Bokeh's own behaviour again: a walk at once
    assert walks["n"] == 2 and known(doc) == reachable(doc)


def test_without_an_argument_panels_current_document_is_held(walks):
    doc, fig, _ = chart_doc(walks)
    with set_curdoc(doc), batch():
        assert doc.models._freeze_count == 1, "the current document is the one held"
        fig.scatter([1], [1])
        assert walks["n"] == 0
    assert walks["n"] == 1 and known(doc) == reachable(doc)
    assert untouched(doc)
    ran = []
    with set_curdoc(None), batch():  # no current document (a notebook cell before display): nothing held
        ran.append(True)
    assert ran == [True] and untouched(doc)


def test_client_switch_walks_nothing_and_draws_the_new_episode(demo_db, walks):
    page = client_page(demo_db)
    doc = Document()
    doc.add_root(pn.panel(page).get_root(doc))
    episodes = page.selection.service.db._con.execute(
        "SELECT client_id, episode_id FROM episode ORDER BY episode_id LIMIT 3"
    ).fetchall()
    with set_curdoc(doc):
        page.selection.open(*episodes[1])
        before = known(doc)
        walks["n"] = 0
        page.selection.open(*episodes[2])
    assert walks["n"] == 0
    assert known(doc) == before == reachable(doc)
    tags = {t for m in doc.models for t in (getattr(m, "tags", None) or []) if isinstance(t, str)}
    assert f"episode:{episodes[2][1]}" in tags
    assert f"episode:{episodes[1][1]}" not in tags
    assert untouched(doc)


def test_a_bokeh_without_the_methods_gets_its_own_freeze(walks, monkeypatch):
    doc, fig, _ = chart_doc(walks)
    monkeypatch.delattr(DocumentModelManager, "invalidate")
    with batch(doc):
        fig.title.text = "after"  # no walk asked: Bokeh's freeze walks once at its end anyway
        assert doc.models._freeze_count == 1
    assert walks["n"] == 1 and known(doc) == reachable(doc)
    assert untouched(doc)
