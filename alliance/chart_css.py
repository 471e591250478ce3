"""Bokeh charts on served pages drawn from their own properties, without asking the browser's style engine
for each line, fill and text property.

Bokeh lets a page's style sheets override a chart's visual properties through CSS custom properties
(``--bk-line-color``, ``--bk-major-label-text-font-size`` …). To find them, every line, fill, hatch and
text visual of every glyph, axis, grid and title calls ``getComputedStyle`` on its chart's element and reads
one custom property, each time it is drawn: the browser must bring the whole page's styles up to date for
each call (706 calls per repaint of the client page's charts). In CPU profiles of new sessions at 200,000
episodes that was 50-90 ms of the page's own time (``VisualProperties._get_css_value``).

Alliance defines none of these properties, and neither Bokeh's, Panel's nor Material UI's style sheets do
(a test reads the installed files and the project's own for any such definition). The script below,
added to served pages, makes the lookup answer "not set", so every visual takes its model's value, which is
what the lookup returned anyway. If a later Bokeh renames the module or the method, the script changes
nothing and the page draws as before (slower); a test checks it is in place.

Measured on new sessions with the browser's cache warm at 200,000 episodes, alternating sessions with and
without it in one browser: the content of the client, caseload and comparison pages showed 0.1-0.3 s
sooner (``docs/performance.md``, round 10).
"""

from __future__ import annotations

import base64
import re

#: Bokeh's names: the module of the visuals' base class and the prefix of its CSS custom properties
#: (``core/visuals/visual.ts``).
MODULE = "core/visuals/visual"
PREFIX = "--bk-"

#: Runs after Bokeh's script (Panel's ``js_files`` follow Bokeh's own). Idempotent; a Bokeh without the
#: module or the method is left alone.
SCRIPT = """
(function () {
  "use strict";
  var bokeh = window.Bokeh;
  if (!bokeh || typeof bokeh.require !== "function") { return; }
  var visual;
  try { visual = bokeh.require("__MODULE__"); } catch (e) { return; }
  var proto = visual && visual.VisualProperties && visual.VisualProperties.prototype;
  if (!proto || typeof proto._get_css_value !== "function" || proto.allianceNoCssValues) { return; }
  proto._get_css_value = function () { return ""; };
  proto.allianceNoCssValues = true;
})();
""".replace("__MODULE__", MODULE).strip()

KEY = "alliance-chart-css"
URL = "data:text/javascript;base64," + base64.b64encode(SCRIPT.encode()).decode()

#: A definition of a Bokeh visual's CSS custom property in a style sheet or a script: ``--bk-`` + an optional
#: visual prefix (``major-label-``, ``border-`` …) + line/fill/hatch/text + one of their properties, followed
#: by ``:`` (a definition, not a use).
DEFINITION = re.compile(
    re.escape(PREFIX) + r"(?:[a-z]+-)*(?:line|fill|hatch|text)-[a-z-]+\s*:",
)


def install(config=None) -> None:
    """Add the script to the pages this process serves (Panel's ``js_files``). Idempotent."""
    if config is None:
        import panel as pn

        config = pn.config
    config.js_files[KEY] = URL
