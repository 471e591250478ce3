"""Widgets that hold a value the browser may send back only from their own options.

A browser can send any value for any widget over the session's websocket (from the page's JavaScript, or a
Bokeh client of its own). A ``ScopedSelect`` takes a value from the browser only when it is one of the
options the server offered — which are built from the viewer's scope — and hands anything else to
``on_refused`` (the client page says "not found", exactly as for a client that does not exist) instead of
raising in the server. Nothing outside the options ever reaches the page's state or a query.
"""

from __future__ import annotations

import panel_material_ui as pmui


class ScopedSelect(pmui.Select):
    """A select that refuses, quietly, a value from the browser that is not one of its options."""

    def __init__(self, **params):
        super().__init__(**params)
        self.on_refused = None  # called with the refused value (a string)

    #: Panel's Select, drawn with a value that is not among its options, sets itself to its first option, and
    #: the page's state follows it: a deep link to a client not found showed the first client of the list
    #: once the select was drawn. Unrestricted, the select shows no choice; the state keeps its own.
    _restrict = False

    #: Panel applies a browser's change of a widget's value after a pause for more changes of it (50 ms, for
    #: typing and dragging). A choice in a select is one change. Without any pause the change was applied
    #: while the server was still writing its answer to the browser's message, and Panel then held the
    #: loading indicator back until the choice's work was done: the indicator came with the result. 5 ms is
    #: usually past that answer (``pages.later`` waits for a message held back when it is not); a served
    #: client switch came about 35 ms sooner (docs/performance.md, round 16).
    _debounce = 5

    #: From this many options on, the browser receives them as one titled group (see ``_long_list``).
    LONG_LIST = 300

    def _process_param_change(self, params):
        if "value" in params and params["value"] is not None and params["value"] not in self.values:
            props = super()._process_param_change({k: v for k, v in params.items() if k != "value"})
            props["value"] = None
        else:
            props = super()._process_param_change(params)
        return self._long_list(props)

    def _long_list(self, props):
        """A long list of options goes to the browser as one group, titled with its length ("4,000
        clinicians").

        Material UI's select, given a plain list, looks each option up again in the whole list every time it
        draws: with a director's 4,000 clinicians that is eight million comparisons, about 0.3 s of the
        browser's time per page on this machine before the page showed. Given groups, it reads the list
        once. The options, their order and the values sent back are the same; the group's title is the
        only thing added to the open list."""
        options = props.get("options")
        if isinstance(options, list) and len(options) >= self.LONG_LIST:
            noun = f"{self.label or self.name or 'option'}".lower()
            props["options"] = {f"{len(options):,} {noun}s": options}
        return props

    def _process_property_change(self, props):
        if "value" in props:
            value = props["value"]
            known = value in (None, "") or value in self.labels or value in [str(v) for v in self.values]
            if not known:
                props = {k: v for k, v in props.items() if k != "value"}
                if self.on_refused is not None:
                    self.on_refused(str(value))
                self.param.trigger("value")  # the browser is put back on the server's value
        return super()._process_property_change(props)
