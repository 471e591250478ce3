"""``alliance.page_resources`` keeps the list of scripts and style sheets Panel's server writes into a page's
HTML. Kept or worked out afresh, the list must be the same, and any change of what it is made from must
give a fresh one."""

from __future__ import annotations

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Spacer
from panel.io import resources as panel_resources
from panel.io import server as panel_server
from panel.io.resources import Resources
from panel.models.markup import HTML as PanelHTML

from alliance import page_resources


def _rendered(bundle) -> tuple:
    return (
        bundle._render_js(),
        bundle._render_css(),
        [str(f) for f in bundle.js_files],
        [str(f) for f in bundle.css_files],
        list(bundle.js_raw),
        list(bundle.css_raw),
        list(bundle.js_modules),
        dict(bundle.js_module_exports),
    )


@pytest.fixture
def roots():
    """A page's Bokeh roots: Material UI components, a Markdown pane and a table."""
    import pandas as pd
    import panel_material_ui as pmui

    doc = Document()
    page = pmui.Page(
        title="Test",
        main=[
            pn.pane.Markdown("**words**"),
            pn.widgets.Tabulator(pd.DataFrame({"a": [1, 2]})),
            pmui.Select(options=["x", "y"]),
        ],
    )
    page.server_doc(doc)
    return list(doc.roots)


@pytest.fixture
def kept():
    """The wrapped function around a counting copy of Panel's own."""
    calls = []
    original = panel_resources.bundle_resources

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    page_resources.forget()
    yield page_resources._kept(counting), original, calls
    page_resources.forget()


def test_a_kept_list_is_the_list_panel_makes(roots, kept):
    wrapped, original, calls = kept
    resources = Resources(mode="server", root_url="/")
    first = wrapped(roots, resources)
    second = wrapped(roots, Resources(mode="server", root_url="/"))
    expected = _rendered(original(roots, Resources(mode="server", root_url="/")))
    assert _rendered(first) == expected
    assert _rendered(second) == expected
    assert len(calls) == 1, "the second page asked Panel again: nothing was kept"


def test_a_change_of_what_the_list_is_made_from_makes_a_fresh_list(roots, kept):
    wrapped, original, calls = kept
    server = wrapped(roots, Resources(mode="server", root_url="/"))
    cdn = wrapped(roots, Resources(mode="cdn"))
    assert _rendered(cdn) == _rendered(original(roots, Resources(mode="cdn")))
    assert _rendered(cdn) != _rendered(server)
    with pn.config.set(css_files=[*pn.config.css_files, "extra.css"]):
        extra = wrapped(roots, Resources(mode="server", root_url="/"))
        assert _rendered(extra) == _rendered(original(roots, Resources(mode="server", root_url="/")))
    assert any("extra.css" in str(f) for f in extra.css_files)
    assert not any("extra.css" in str(f) for f in server.css_files)
    assert len(calls) == 3


def test_an_extension_loaded_again_by_the_next_session_keeps_the_list(roots, kept):
    """Every session of a page that calls ``pn.extension("tabulator")`` appends the name to Panel's list of
    loaded extensions once more; the next visit of the same page must still get the kept list."""
    from panel.config import panel_extension

    wrapped, _, calls = kept
    before = list(panel_extension._loaded_extensions)
    try:
        panel_extension._loaded_extensions.append("tabulator")  # the first session's call
        wrapped(roots, Resources(mode="server", root_url="/"))
        panel_extension._loaded_extensions.append("tabulator")  # the next sessions' calls, again
        panel_extension._loaded_extensions.append("tabulator")
        wrapped(roots, Resources(mode="server", root_url="/"))
        assert len(calls) == 1, "a repeated extension name made a new key: every visit is worked out afresh"
        panel_extension._loaded_extensions.append("mathjax")  # a newly loaded one still counts
        wrapped(roots, Resources(mode="server", root_url="/"))
        assert len(calls) == 2
    finally:
        panel_extension._loaded_extensions[:] = before


def test_a_page_needing_mathjax_is_not_given_a_list_without_it(kept):
    wrapped, original, calls = kept
    plain, maths = Document(), Document()
    plain.add_root(Spacer())  # no HTML pane: no MathJax
    maths.add_root(PanelHTML(text=r"$$\frac{a}{b}$$"))  # Panel's HTML model may show formulas
    resources = Resources(mode="server", root_url="/")
    without = wrapped(list(plain.roots), resources)
    with_maths = wrapped(list(maths.roots), resources)
    assert _rendered(with_maths) == _rendered(original(list(maths.roots), resources))
    assert _rendered(without) == _rendered(original(list(plain.roots), resources))
    assert [f for f in with_maths.js_files if "mathjax" in str(f)]
    assert not [f for f in without.js_files if "mathjax" in str(f)]


def test_a_caller_changing_its_copy_does_not_change_the_kept_list(roots, kept):
    wrapped, _, _ = kept
    first = wrapped(roots, Resources(mode="server", root_url="/"))
    first.js_raw.append("alert('x')")
    first.js_files.append("extra.js")
    second = wrapped(roots, Resources(mode="server", root_url="/"))
    assert "alert('x')" not in second.js_raw and "extra.js" not in second.js_files


def test_install_wraps_panels_server_once():
    before = panel_server.bundle_resources
    try:
        assert page_resources.install()
        wrapped = panel_server.bundle_resources
        assert getattr(wrapped, "alliance_kept", False)
        assert page_resources.install()
        assert panel_server.bundle_resources is wrapped
    finally:
        panel_server.bundle_resources = before
