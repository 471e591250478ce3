"""Serialise a Bokeh model without working out the defaults it leaves out (a server process only).

When Bokeh sends a model to the browser (``HasProps.to_serializable``) it lists the properties that were set
(``query_properties_with_values(include_defaults=False)``). Bokeh 3 works out the value of every property
of the model first, defaults included, and only then drops those that were not set: for the 80-150
properties of a Panel or Material UI model, each default is looked up through the class's overrides and
themes and, for lists and dicts, copied. At 200,000 episodes that was about a quarter of a served page's
CPU (py-spy of the server, ``docs/performance.md``), spent on values that are thrown away. Bokeh's own code
says the check belongs before the value is read (a TODO in ``query_properties_with_values``).

``install`` replaces that method, for ``include_defaults=False`` only, with one that reads only the
properties it will keep: the same ones, in the same order, with the same values, as Bokeh's. The one
difference: a required property that was never set is left out instead of raising ``UnsetValueError``,
which only a broken model has (the browser then says so). ``alliance.warmup`` installs it in a server
process, after checking that a themed chart and a few Panel models are sent the same either way (else it
logs why and keeps Bokeh's method); tests check the output against Bokeh's own on every page.
"""

from __future__ import annotations

import logging
from typing import Any

from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import UnsetValueError
from bokeh.core.property.singletons import Undefined
from bokeh.core.property.wrappers import PropertyValueContainer

log = logging.getLogger("alliance.model_values")

#: Bokeh's own method, for ``include_defaults=True`` and for comparison in the tests.
BOKEH_QUERY = HasProps.query_properties_with_values


def query_properties_with_values(
    self: HasProps, query, *, include_defaults: bool = True, include_undefined: bool = False
) -> dict[str, Any]:
    """``HasProps.query_properties_with_values`` that reads, without defaults, only the properties it keeps
    (the same ones, in the same order, as Bokeh's)."""
    if include_defaults:
        return BOKEH_QUERY(self, query, include_defaults=True, include_undefined=include_undefined)
    unstable = self._unstable_default_values
    selected = self._property_values.keys() | unstable.keys()
    themed = self.themed_values()
    themed_keys = set(themed) if themed is not None else set()
    selected |= themed_keys
    result: dict[str, Any] = {}
    for key in self.properties(_with_props=True):
        if key not in selected:
            continue
        descriptor = self.lookup(key)
        if not query(descriptor):
            continue
        try:
            value = descriptor.get_value(self)
        except UnsetValueError:
            if not include_undefined:
                raise
            value = Undefined
        else:
            if key not in themed_keys and isinstance(value, PropertyValueContainer) and key in unstable:
                continue
        result[key] = value
    return result


def _same_as_bokeh() -> bool:
    """Whether this Bokeh sends a themed chart and a Panel page's kinds of model the same either way."""
    import json

    import panel as pn
    from bokeh.document import Document
    from bokeh.plotting import figure
    from bokeh.themes import Theme

    doc = Document()
    doc.theme = Theme(json={"attrs": {"Plot": {"background_fill_color": "#fafafa"}}})
    fig = figure(title="check", width=200, height=100)
    fig.line([1, 2], [2, 1])
    doc.add_root(fig)
    doc.add_root(pn.Column(pn.pane.Markdown("check"), pn.widgets.Select(options=["a"])).get_root(doc))
    sent = []
    for method in (query_properties_with_values, BOKEH_QUERY):
        HasProps.query_properties_with_values = method
        try:
            sent.append(json.dumps(doc.to_json(deferred=False), default=str))
        finally:
            HasProps.query_properties_with_values = BOKEH_QUERY
    return sent[0] == sent[1]


def install() -> bool:
    """Use ``query_properties_with_values`` for every Bokeh model of this process, once a chart and a few
    Panel models are sent the same with it as with Bokeh's own method (else say so, and keep Bokeh's)."""
    if HasProps.query_properties_with_values is query_properties_with_values:
        return True
    try:
        same = _same_as_bokeh()
    except Exception:  # a Bokeh whose models no longer have what this reads
        log.exception("alliance.model_values: not installed, Bokeh's own serialisation is used")
        return False
    if not same:
        log.warning("alliance.model_values: this Bokeh sends models differently; its own method is kept")
        return False
    HasProps.query_properties_with_values = query_properties_with_values
    return True
