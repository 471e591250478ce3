"""The load generator's document (``alliance.loadgen.PageDocument``) against bokeh's own: the messages are
made by bokeh's protocol from a real bokeh document, and after each one the texts, the loading indicator and
the selects read from the JSON must equal what the bokeh document holds."""

from __future__ import annotations

from bokeh.document import Document
from bokeh.models import Column, Div, Select
from bokeh.protocol import Protocol

from alliance.loadgen import PageDocument, heading_client, loading, shows, texts


class _Mirror:
    """A bokeh document and a PageDocument kept in step by bokeh's PULL-DOC-REPLY and PATCH-DOC messages."""

    def __init__(self, *roots) -> None:
        self.doc = Document()
        for root in roots:
            self.doc.add_root(root)
        self.page = PageDocument()
        Protocol().create("PULL-DOC-REPLY", "req", self.doc).push_to_document(self.page)
        self.doc.on_change(self._patched)

    def _patched(self, event) -> None:
        message = Protocol().create("PATCH-DOC", [event])
        self.page.apply(message.content["events"])

    def same(self) -> None:
        assert sorted(texts(self.page)) == sorted(texts(self.doc))
        assert loading(self.page) == loading(self.doc)
        assert heading_client(self.page) == heading_client(self.doc)


def test_a_pulled_document_shows_the_texts_the_bokeh_document_holds():
    heading = Div(text="<h3>Client C-000017 · episode E1</h3>")
    select = Select(title="x", options=["C-000017", "C-000018"], value="C-000017")
    mirror = _Mirror(Column(heading, Div(text="a &lt;b&gt; note"), select))
    mirror.same()
    assert heading_client(mirror.page) == "C-000017"
    assert shows(mirror.page, "a <b> note")  # escaped as sent, found either way


def test_changes_replacements_and_roots_follow_the_bokeh_document():
    heading, old = Div(text="<h3>Client C-1 · episode E1</h3>"), Div(text="the old episode's chart")
    column = Column(heading, old)
    mirror = _Mirror(column)
    heading.text = "<h3>Client C-2 · episode E4</h3>"
    mirror.same()
    assert heading_client(mirror.page) == "C-2"
    column.css_classes = ["pn-loading"]
    mirror.same()
    assert loading(mirror.page)
    column.children = [heading, Div(text="the new episode's chart")]  # the old chart is no longer shown
    column.css_classes = []
    mirror.same()
    assert not shows(mirror.page, "the old episode") and shows(mirror.page, "the new episode")
    extra = Div(text="a second root")
    mirror.doc.add_root(extra)
    mirror.same()
    mirror.doc.remove_root(extra)
    mirror.same()
    assert not shows(mirror.page, "a second root")


def test_a_select_is_found_by_its_label_with_value_and_options():
    from panel_material_ui import Select as MaterialSelect

    select = MaterialSelect(label="Client", options=["C-1", "C-2"], value="C-1")
    doc = Document()
    doc.add_root(select.get_root(doc))
    page = PageDocument()
    Protocol().create("PULL-DOC-REPLY", "req", doc).push_to_document(page)
    found, attributes = page.select("Client")
    assert attributes["value"] == "C-1"
    assert [o[0] if isinstance(o, list) else o for o in attributes["options"]] == ["C-1", "C-2"]
    assert found in {m["id"] for m in page.models()}


def test_a_long_list_sent_as_groups_gives_its_options():
    """``ScopedSelect`` sends 300 options and more as one titled group: as an object, or as bokeh's map."""
    listed = {"label": "Client", "options": [["C-1", "C-1"], "C-2"]}
    grouped = {"label": "Client", "options": {"2 clients": ["C-1", "C-2"]}}
    mapped = {"label": "Client", "options": {"type": "map", "entries": [["2 clients", ["C-1", "C-2"]]]}}
    for attributes in (listed, grouped, mapped):
        assert PageDocument.options(attributes) == ["C-1", "C-2"]


def test_a_root_removed_twice_is_no_error():
    extra = Div(text="a second root")
    mirror = _Mirror(Div(text="the page"), extra)
    removal = [{"kind": "RootRemoved", "model": {"id": extra.id}}]
    mirror.page.apply(removal)
    mirror.page.apply(removal)
    assert texts(mirror.page) == ["the page"]
