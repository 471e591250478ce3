"""A served page's list of scripts and style sheets, worked out once per server process, not for every visit.

When a browser asks for a page, Panel writes its HTML from the session it keeps for that page
(``--reuse-sessions``) and first lists the scripts and style sheets the HTML links
(``panel.io.resources.bundle_resources``). To make that list it asks every Panel and Material UI component
class in the process, about 150, for its files and checks their paths on disk: 25-37 ms of the server's
time for each page a person opens (90 % of writing the HTML; ``docs/performance.md``, round 11). The
answer is the same for every visit: the classes and the server's settings do not change while it runs.

``install`` wraps that function as Panel's server calls it: the first answer for a given set of inputs is
kept, and later visits get a copy of it. The inputs are everything the list is made from: the resources
object's settings (mode, address, components, versions), the page's relative path and base address, Panel's
settings that add files (``js_files``, ``css_files``, ``raw_css``, design, loading spinner, notifications),
the extensions loaded (each name once), the number of model classes registered (a new component class is a
new key), and whether the page needs MathJax (read from the page's models each time, as Panel does). If
any of them changes, the list is worked out afresh. If Panel renames the function, nothing is wrapped and
pages are written as before. Tests check that the wrap is in place, that a kept list is the one Panel makes,
that a change of its inputs gives a fresh one and that the next session of the same page does not.
"""

from __future__ import annotations

import copy
import threading
from functools import wraps

#: Kept lists, by inputs (a handful per process: one per page and resource mode).
_KEPT: dict = {}
_LOCK = threading.Lock()
_MAX = 64


def _frozen(value):
    """A hashable stand-in for a setting (dicts and lists by their items, anything else by its text)."""
    if isinstance(value, dict):
        return tuple((str(k), _frozen(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(_frozen(v) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def inputs(resources, notebook: bool, reloading: bool, use_mathjax: bool) -> tuple:
    """Everything ``bundle_resources`` reads, besides the page's models (of which only MathJax counts)."""
    from bokeh.model import Model
    from panel.config import config
    from panel.config import panel_extension as ext
    from panel.io.state import state

    return (
        type(resources).__name__,
        _frozen({k: getattr(resources, k, None) for k in RESOURCE_SETTINGS}),
        _frozen(getattr(resources, "components", None)),
        notebook,
        reloading,
        use_mathjax,
        state.rel_path,
        state.base_url,
        _frozen(getattr(state, "_extensions", None)),
        bool(getattr(state, "notifications", None)),
        # Which extensions are loaded, not how often: Panel appends a name to this list again for every
        # session whose page calls ``pn.extension("tabulator")``, and the list only ever answers "is
        # MathJax loaded?". Counting repeats made every visit of such a page a new key (nothing was kept).
        _frozen(sorted(set(getattr(ext, "_loaded_extensions", [])))),
        _frozen({k: getattr(config, k, None) for k in CONFIG_SETTINGS}),
        len(Model.model_class_reverse_map),
    )


#: The resources object's settings the list depends on (``panel.io.resources.Resources``).
RESOURCE_SETTINGS = (
    "mode",
    "root_url",
    "absolute",
    "notebook",
    "minified",
    "dev",
    "version",
    "log_level",
    "root_dir",
    "base_dir",
    "path_versioner",
)

#: Panel's settings that add or change files in the list.
CONFIG_SETTINGS = (
    "js_files",
    "js_modules",
    "css_files",
    "raw_css",
    "global_css",
    "design",
    "theme",
    "npm_cdn",
    "notifications",
    "loading_spinner",
    "loading_color",
    "loading_max_height",
    "global_loading_spinner",
)


def _copy(bundle):
    """A copy whose lists a caller may extend (``autoload_js_script`` adds its own script)."""
    fresh = copy.copy(bundle)
    for name, value in vars(bundle).items():
        if isinstance(value, (list, dict)):
            setattr(fresh, name, copy.copy(value))
    return fresh


def _kept(compute):
    @wraps(compute)
    def bundle_resources(roots, resources, notebook=False, reloading=False, enable_mathjax="auto"):
        from panel.config import panel_extension as ext
        from panel.io import resources as panel_resources

        if not isinstance(resources, panel_resources.Resources):
            return compute(roots, resources, notebook, reloading, enable_mathjax)
        if isinstance(enable_mathjax, bool):
            use_mathjax = enable_mathjax
        elif roots:  # as Panel decides it, from the page's models
            use_mathjax = bool(
                panel_resources._use_mathjax(roots)
                or panel_resources._panel_use_mathjax(roots)
                or "mathjax" in ext._loaded_extensions
            )
        else:
            use_mathjax = "mathjax" in ext._loaded_extensions
        key = inputs(resources, notebook, reloading, use_mathjax)
        with _LOCK:
            kept = _KEPT.get(key)
        if kept is not None:
            panel_resources.RESOURCE_MODE = resources.mode  # as the function itself sets it
        else:
            kept = compute(roots, resources, notebook, reloading, use_mathjax)
            with _LOCK:
                if len(_KEPT) >= _MAX:
                    _KEPT.clear()
                _KEPT[key] = kept
        return _copy(kept)

    bundle_resources.alliance_kept = True
    return bundle_resources


def install() -> bool:
    """Wrap the function Panel's server writes a page's HTML with, once per process. False when Panel has
    no such function (then pages are written as before)."""
    from panel.io import resources as panel_resources
    from panel.io import server as panel_server

    current = getattr(panel_server, "bundle_resources", None)
    if current is None or not all(
        hasattr(panel_resources, name) for name in ("Resources", "_use_mathjax", "_panel_use_mathjax")
    ):
        return False
    if getattr(current, "alliance_kept", False):
        return True
    panel_server.bundle_resources = _kept(current)
    return True


def forget() -> None:
    """Drop every kept list (tests)."""
    with _LOCK:
        _KEPT.clear()
