"""Change many of a page's models at once, with Bokeh's walk of the model graph only when it changed.

Bokeh keeps, per document, the set of every model reachable from its roots. When a property that holds
models changes (a pane given a new figure, a layout given new children), it walks the whole graph again
(``DocumentModelManager.recompute``: about 10 ms for the client page's 194 models at service scale).
``Document.models.freeze()`` (and Panel's ``pn.io.hold(freeze=True)``) puts those walks off until the end
of a batch of changes, but then walks once whatever the batch changed. A client switch changes only values
(the charts' data, ranges and labels, the summary's text): nothing to walk, yet the walk was about a tenth
of the server's CPU for the switch.

``batch(doc)`` puts the walks off in the same way and, at the end, walks once if the batch asked for a walk
(a property holding models changed, a model or root was added or removed under a freeze of Bokeh's or
Panel's own), not otherwise. It relies on two methods of Bokeh's ``DocumentModelManager``, ``invalidate``
(a changed property asks for a walk) and ``_pop_freeze`` (the end of a freeze walks), which it overrides on
the one document for the length of the batch; a Bokeh without them gets its own freeze instead. Tests
check both cases against Bokeh's own walk, and that a client switch asks for none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_MISSING = object()
#: The methods of Bokeh's ``DocumentModelManager`` a batch relies on: the first two it overrides on its
#: document for the batch, ``recompute`` is the walk.
_BOKEH_METHODS = ("invalidate", "_pop_freeze", "recompute")


@contextlib.contextmanager
def batch(doc=None) -> Iterator[None]:
    """Hold Bokeh's walks of ``doc``'s model graph (default: Panel's current document) for the body; walk
    once at the end if anything in it asked for one. Without a document (a notebook cell before display),
    nothing to hold."""
    if doc is None:
        import panel as pn

        doc = pn.state.curdoc
    models = getattr(doc, "models", None)
    if models is None:
        yield
        return
    if not all(hasattr(type(models), name) for name in _BOKEH_METHODS) or not hasattr(
        models, "_freeze_count"
    ):
        with models.freeze():  # a Bokeh without these methods: its own freeze, one walk at the end
            yield
        return
    asked = False

    def invalidate() -> None:  # a property holding models changed: the graph may have changed
        nonlocal asked
        asked = True

    def pop_freeze() -> None:  # a freeze inside this one ended: Bokeh would walk when it reached zero
        nonlocal asked
        asked = True
        models._freeze_count -= 1

    saved = {name: models.__dict__.get(name, _MISSING) for name in ("invalidate", "_pop_freeze")}
    models.invalidate, models._pop_freeze = invalidate, pop_freeze
    models._freeze_count += 1
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                models.__dict__.pop(name, None)
            else:
                models.__dict__[name] = value
        models._freeze_count -= 1
        if asked:
            if models._freeze_count == 0:
                models.recompute()
            else:  # inside an outer freeze: its end walks (and an outer batch learns it was asked)
                models.invalidate()
