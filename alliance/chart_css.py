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

The same script keeps each chart's base font size for the rest of the frame being drawn. Bokeh reads it
(``PlotView.base_font_size``: ``getComputedStyle(el).fontSize``, which the ``em`` sizes of axis labels and
titles rest on) for every axis, label set and title each time they are measured or drawn, another style
update of the page each time: 31-36 ms of a new client page's 2.1 s in CPU profiles (round 11). Within one
frame nothing changes a chart's font size, and the next frame reads it afresh, so a change of style still
shows. A size Bokeh could not read (``null``: the chart not yet in the page) is not kept.
"""

from __future__ import annotations

import base64
import re

#: Bokeh's names: the module of the visuals' base class and the prefix of its CSS custom properties
#: (``core/visuals/visual.ts``); the module of the chart's view and its font-size getter
#: (``models/plots/plot_canvas.ts``).
MODULE = "core/visuals/visual"
PREFIX = "--bk-"
PLOT_MODULE = "models/plots/plot_canvas"
FONT_SIZE = "base_font_size"

#: Runs after Bokeh's script (Panel's ``js_files`` follow Bokeh's own). Idempotent; a Bokeh without the
#: module or the method is left alone.
SCRIPT = (
    """
(function () {
  "use strict";
  var bokeh = window.Bokeh;
  if (!bokeh || typeof bokeh.require !== "function") { return; }
  var visual, plot;
  try { visual = bokeh.require("__MODULE__"); } catch (e) { visual = null; }
  var proto = visual && visual.VisualProperties && visual.VisualProperties.prototype;
  if (proto && typeof proto._get_css_value === "function" && !proto.allianceNoCssValues) {
    proto._get_css_value = function () { return ""; };
    proto.allianceNoCssValues = true;
  }
  try { plot = bokeh.require("__PLOT_MODULE__"); } catch (e) { plot = null; }
  var view = plot && plot.PlotView && plot.PlotView.prototype;
  var getter = view && Object.getOwnPropertyDescriptor(view, "__FONT_SIZE__");
  if (getter && typeof getter.get === "function" && !view.allianceFontSizePerFrame) {
    var read = getter.get;
    Object.defineProperty(view, "__FONT_SIZE__", {
      configurable: true,
      enumerable: getter.enumerable,
      get: function () {
        if (this.allianceFontSize == null) {
          var size = read.call(this);
          if (size == null) { return size; }
          this.allianceFontSize = size;
          var self = this;
          requestAnimationFrame(function () { self.allianceFontSize = null; });
        }
        return this.allianceFontSize;
      },
    });
    view.allianceFontSizePerFrame = true;
  }
})();
""".replace("__MODULE__", MODULE)
    .replace("__PLOT_MODULE__", PLOT_MODULE)
    .replace("__FONT_SIZE__", FONT_SIZE)
    .strip()
)

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
