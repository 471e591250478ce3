"""Make strings from data or from a user inert wherever they are shown or exported.

Client, clinician and team codes, action notes and file names come from an imported file, a form or the
environment; none of them is trusted. Each output has its own rule:

- ``html_text``: text for an HTML pane *or* a Markdown pane (Panel's Markdown, Material UI's Typography and
  Alert all render Markdown with raw HTML allowed). HTML-special characters become entities, and so do the
  characters Markdown, GFM tables, strikethrough, linkify, emoji and MathJax react to: the value renders
  exactly as written, never as markup, a link or a formula.
- ``url_param``: a query-string value (percent-encoded, ``/`` included).
- ``link``: an ``<a>`` whose query parameters are URL-encoded and whose text is ``html_text``.
- ``csv_cell``: a spreadsheet cell that cannot start a formula (OWASP "CSV injection").
- ``file_name``: a value used inside a download's file name.

Numeric character references (``&#42;``) are used rather than backslash escapes: a browser decodes them in
HTML, and Markdown decodes them as literal characters that never take part in structure (CommonMark §6.2),
so one escaped string is right in both kinds of pane.
"""

from __future__ import annotations

import html
import numbers
import re
import urllib.parse

import numpy as np
import pandas as pd

#: Characters that Markdown (CommonMark + GFM as Panel renders it), linkify, emoji shortcodes and MathJax
#: treat as syntax anywhere in a line. ``-`` is safe inside a line (codes such as ``C-3fa2b1`` keep it)
#: and is escaped only at the start, where it could open a list or a thematic break.
_MARKDOWN_ACTIVE = "\\`*_{}[]()#+!|~$:.@^="
_HTML_TABLE = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&#39;"}
# One pass over the text (str.translate), so no reference is escaped twice.
_MARKDOWN_TABLE = {**_HTML_TABLE, **{ord(c): f"&#{ord(c)};" for c in _MARKDOWN_ACTIVE}}
# Line breaks would let a value start a new Markdown block; as references they are plain whitespace.
_MARKDOWN_TABLE.update({ord("\n"): "&#10;", ord("\r"): "&#13;", ord("\t"): "&#9;"})

# C0 and C1 control characters (not tab, LF, CR), DEL and lone surrogates: never shown; U+FFFD in their place.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

#: A leading character that makes a spreadsheet read the cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _text(value) -> str:
    """``value`` as a string with unprintable characters replaced (None and NaN become '')."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    return _UNPRINTABLE.sub("\ufffd", str(value))


def html_text(value, markdown: bool = True) -> str:
    """``value`` as inert text for an HTML or Markdown pane (and for a quoted HTML attribute).

    ``markdown=False`` escapes only what HTML needs — for HTML that is never read as Markdown (a Tabulator
    ``html`` cell, whose header filter then still matches codes like ``CL.04``).
    """
    text = _text(value).translate(_MARKDOWN_TABLE if markdown else _HTML_TABLE)
    if not markdown:
        return text
    if text.startswith("-"):  # a list item or a thematic break when the value starts a line
        text = "&#45;" + text[1:]
    return text


def url_param(value) -> str:
    """``value`` percent-encoded for a query-string value (``&``, ``=``, ``#``, ``/`` and ``?`` included)."""
    return urllib.parse.quote(_text(value), safe="")


_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]*")


def link(href_path: str, params: dict, text, markdown: bool = True) -> str:
    """``<a href="href_path?k=v&…">text</a>`` with URL-encoded parameters and inert text.

    ``href_path`` is the application's own relative path (e.g. ``"client"``), never data: anything but
    letters, digits and ``_ . / -`` is refused, so no ``javascript:`` or other scheme can get in.
    """
    if not _SAFE_PATH.fullmatch(href_path):
        raise ValueError(f"link path {href_path!r} is not a plain relative path")
    query = "&".join(f"{url_param(k)}={url_param(v)}" for k, v in params.items())
    href = f"{href_path}?{query}" if query else href_path
    return f'<a href="{html.escape(href, quote=True)}">{html_text(text, markdown=markdown)}</a>'


def csv_cell(value):
    """A value for a CSV cell that a spreadsheet cannot run: text starting with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a leading ``'`` (OWASP). Numbers, booleans, dates and missing values are
    returned unchanged, and so is text that is just a plain number (``-3.5``), which no spreadsheet runs."""
    if value is None or isinstance(value, (bool, np.bool_, numbers.Number)):
        return value
    if not isinstance(value, str):
        return value  # dates, timestamps and the like are written as digits
    if value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_name(value, fallback: str = "x", max_length: int = 64) -> str:
    """``value`` reduced to letters, digits and ``_ . -`` for use inside a file name (no path, no quote)."""
    name = _FILE_NAME_UNSAFE.sub("_", _text(value)).strip("._")[:max_length]
    return name or fallback


__all__ = ["FORMULA_START", "csv_cell", "file_name", "html_text", "link", "url_param"]
