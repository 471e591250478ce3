"""Material UI's script bundle loaded by the browser itself on served pages, not re-read by Panel's shim.

Panel loads the Material UI components' bundle (1.4 MB of JavaScript, ``panel-material-ui.bundle.js``)
through ``es-module-shims`` in its "shim mode": on every page the shim reads the whole file again as text,
scans it for imports, and hands the browser a copy under a new ``blob:`` address. The file itself comes from
the browser's cache, but the scan costs 0.2-0.3 s per page on this machine, and a module under a new
address is compiled from scratch every time: the browser keeps compiled code only for addresses it has seen
before.

The bundle imports nothing (it is built self-contained), so the shim has nothing to rewrite in it. The
script below, added to served pages after the shim (``install``), passes that one same-origin address to the
browser's own ``import()``; everything else (Panel's small render modules, import maps) still goes through
the shim. Panel keeps one promise per module address and the bundle's own exports are read from it, so there
is still exactly one copy of React and Material UI on the page. If Panel stops loading the bundle this way,
the script matches nothing and changes nothing.

Measured on new sessions with the browser's cache warm at 200,000 episodes, alternating pages with and
without it in one browser: the client and caseload pages were laid out 0.1-0.2 s sooner; when their content
showed changed less than the spread between runs (``docs/performance.md``, round 9).
"""

from __future__ import annotations

import base64

BUNDLE = "panel-material-ui.bundle.js"

#: Wraps ``window.importShim`` (defined by es-module-shims, loaded before Panel's ``js_files``) in a Proxy:
#: a call with the bundle's same-origin address becomes the browser's ``import()``; every other call and
#: every property (``addImportMap`` …) reaches the shim unchanged.
SCRIPT = """
(function () {
  "use strict";
  var shim = window.importShim;
  if (typeof shim !== "function" || shim.allianceNativeBundle) { return; }
  var name = "__BUNDLE__";
  function bundle(url) {
    if (typeof url !== "string" || url.indexOf(name) < 0) { return null; }
    var href = new URL(url, document.baseURI);
    return href.origin === window.location.origin ? href.href : null;
  }
  window.importShim = new Proxy(shim, {
    apply: function (target, self, args) {
      var href = bundle(args[0]);
      return href ? import(href) : Reflect.apply(target, self, args);
    },
    get: function (target, key, receiver) {
      return key === "allianceNativeBundle" ? true : Reflect.get(target, key, receiver);
    }
  });
})();
""".replace("__BUNDLE__", BUNDLE).strip()

KEY = "alliance-native-bundle"
URL = "data:text/javascript;base64," + base64.b64encode(SCRIPT.encode()).decode()


def install(config=None) -> None:
    """Add the script to the pages this process serves (Panel's ``js_files``: after the module shim, before
    any component loads). Idempotent."""
    if config is None:
        import panel as pn

        config = pn.config
    config.js_files[KEY] = URL
