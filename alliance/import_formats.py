"""The shapes services export ratings in, turned into the long table ``alliance.importer`` checks: Excel
workbooks (.xlsx), the wide layout (one row per session, a column per instrument total), and a small mapping
file (TOML) that names a service's own columns, its instrument columns and its date format.

A mapping file::

    # mapping.toml: every part optional
    sheet = "Ratings"              # the worksheet of an .xlsx workbook (default: the first with a header)
    date_format = "%d/%m/%Y"       # how session_date and end_date are written (ISO dates are read too)

    [columns]                      # a column of the file = the Alliance column it holds
    "Client code" = "client_id"
    "Therapist" = "clinician_id"
    "Date" = "session_date"
    "Session" = "session_number"

    [instruments]                  # wide layout: a column of the file = the instrument whose totals it holds
    "ORS total" = "ORS"
    "PHQ9 score" = "PHQ-9"

Without an ``[instruments]`` table, a file with no ``instrument`` and ``score`` columns is read as wide when
some of its columns are named after instruments (``ORS``, ``SRS``, ``PHQ9``, ``PHQ-9``, ``GAD7`` …; case,
spaces and punctuation ignored). Each non-empty instrument cell becomes one rating of that session; an empty
cell is no rating. A problem in a cell names the file's row and the file's column.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: The parts a mapping file may have.
MAPPING_KEYS = ("sheet", "date_format", "columns", "instruments")


class FormatError(Exception):
    """The file (or the mapping file) as a whole cannot be read; the message says why and what to do."""


def column_key(name: str) -> str:
    """A column name reduced to lower-case letters and digits: 'PHQ-9', 'phq9' and 'PHQ 9' meet."""
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


# -- the mapping file ---------------------------------------------------------------------------------------
@dataclass
class Mapping:
    """What a mapping file says (every part optional)."""

    path: Path | None = None
    sheet: str | None = None
    date_format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)


def load_mapping(path: Path | str, known_columns: set[str]) -> Mapping:
    """Read and check a mapping file; FormatError with one clear sentence when it is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FormatError(f"mapping file {path} not found") from None
    except IsADirectoryError:
        raise FormatError(f"mapping file {path} is a folder") from None
    except UnicodeDecodeError:
        raise FormatError(f"mapping file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"mapping file {path} is not valid TOML ({exc})") from None
    except OSError as exc:
        raise FormatError(f"mapping file {path} cannot be read ({exc.strerror or exc})") from None
    unknown = [k for k in data if k not in MAPPING_KEYS]
    if unknown:
        raise FormatError(
            f"mapping file {path}: unknown part(s) {', '.join(map(repr, unknown))} "
            f"(a mapping has {', '.join(MAPPING_KEYS)})"
        )
    m = Mapping(path)
    for key in ("sheet", "date_format"):
        if key in data and not isinstance(data[key], str):
            raise FormatError(f"mapping file {path}: {key} must be text in quotes")
    m.sheet = data.get("sheet")
    for key in ("columns", "instruments"):
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise FormatError(f'mapping file {path}: [{key}] must be lines of the form "column" = "name"')
        setattr(m, key, {str(k).strip(): v.strip() for k, v in table.items()})
    for source, target in m.columns.items():
        if target not in known_columns and not re.fullmatch(r"item_[1-9]\d*", target):
            raise FormatError(
                f"mapping file {path}: [columns] maps {source!r} to {target!r}, which is not an Alliance "
                f"column ({', '.join(sorted(known_columns))}, item_1 …)"
            )
    targets = list(m.columns.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise FormatError(f"mapping file {path}: [columns] maps two columns to {', '.join(twice)}")
    if fmt := data.get("date_format"):
        probe = dt.date(2026, 3, 2)
        try:
            back = dt.datetime.strptime(probe.strftime(fmt), fmt).date()
        except ValueError:
            back = None
        if back != probe or "%" not in fmt:
            raise FormatError(
                f"mapping file {path}: date_format {fmt!r} does not read a date back "
                "(use strftime codes, e.g. '%d/%m/%Y' or '%d.%m.%Y')"
            )
        m.date_format = fmt
    return m


def human_date_format(fmt: str) -> str:
    """'%d/%m/%Y' → 'DD/MM/YYYY' for messages."""
    words = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%b": "Mon", "%B": "Month", "%j": "DDD"}
    return re.sub(r"%[a-zA-Z]", lambda m: words.get(m.group(), m.group()), fmt)


def rename_columns(header: list[str], mapping: Mapping) -> tuple[list[str], list[str]]:
    """The header with the mapping's columns renamed; and the mapped columns the file does not have."""
    if not mapping.columns:
        return header, []
    by_key = {column_key(k): v for k, v in mapping.columns.items()}
    out = [by_key.get(column_key(cell), cell) if cell.strip() else cell for cell in header]
    present = {column_key(c) for c in header}
    missing = [k for k in mapping.columns if column_key(k) not in present]
    return out, missing


# -- the wide layout -----------------------------------------------------------------------------------------
def wide_columns(header: list[str], instrument_codes: list[str], mapping: Mapping) -> dict[int, str]:
    """Columns of a wide file that hold instrument totals: header position → instrument code."""
    if mapping.instruments:
        wanted = {column_key(k): v for k, v in mapping.instruments.items()}
    else:
        wanted = {column_key(code): code for code in instrument_codes}
    return {j: wanted[column_key(cell)] for j, cell in enumerate(header) if column_key(cell) in wanted}


def to_long(
    header: list[str], rows: list[tuple[int, int | None, list[str]]], wide: dict[int, str]
) -> tuple[list[str], list[tuple[int, int | None, list[str]]], list[str]]:
    """One row per session with a column per instrument → one row per rating: the other columns repeated,
    then ``instrument`` and ``score``. Returns the new header, the rows (each keeping its original row and
    line number) and, per new row, the name of the file's column its score came from (for messages)."""
    keep = [j for j in range(len(header)) if j not in wide]
    new_header = [header[j] for j in keep] + ["instrument", "score"]
    out: list[tuple[int, int | None, list[str]]] = []
    names: list[str] = []
    width = len(header)
    for row, line, cells in rows:
        if len(cells) != width:  # checked (and refused) before: kept out here
            continue
        base = [cells[j] for j in keep]
        for j, code in wide.items():
            if cells[j].strip():
                out.append((row, line, [*base, code, cells[j]]))
                names.append(header[j].strip())
    return new_header, out, names


# -- Excel workbooks -----------------------------------------------------------------------------------------
def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_xlsx(
    path: Path, sheet: str | None, looks_like_header
) -> tuple[list[str], list[tuple[int, None, list[str]]], str]:
    """The header and rows of one worksheet, every cell as text (dates as YYYY-MM-DD), numbered as Excel
    numbers them. The sheet is the one named, else the first whose first non-empty row ``looks_like_header``,
    else the first. Formulas give the value Excel saved with them."""
    import zipfile

    try:
        from openpyxl import load_workbook
    except ImportError:  # pragma: no cover — a dependency; said plainly if an installation lacks it
        raise FormatError(
            f"{path} is an Excel workbook and this installation cannot read .xlsx (pip install openpyxl); "
            "or save it from Excel as 'CSV UTF-8'"
        ) from None
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise FormatError(
            f"{path} is not a readable Excel workbook ({detail}); open it in Excel and save it again, "
            "or save it as 'CSV UTF-8'"
        ) from None
    try:
        sheets = wb.worksheets
        if sheet is not None:
            chosen = next((ws for ws in sheets if ws.title == sheet), None)
            if chosen is None:
                names = ", ".join(repr(ws.title) for ws in sheets)
                raise FormatError(f"{path} has no worksheet {sheet!r} (it has {names})")
            candidates = [chosen]
        else:
            candidates = sheets
        fallback = None
        for ws in candidates:
            found = _read_sheet(ws)
            if found is None:
                continue
            if sheet is not None or looks_like_header(found[0]):
                return (*found, ws.title)
            fallback = fallback or (*found, ws.title)
        if fallback is None:
            raise FormatError(f"{path} has no worksheet with a header row (every sheet is empty)")
        return fallback
    finally:
        wb.close()


def _read_sheet(ws) -> tuple[list[str], list[tuple[int, None, list[str]]]] | None:
    """A worksheet's first non-empty row as the header and every later non-empty row, numbered as in Excel."""
    header: list[str] | None = None
    rows: list[tuple[int, None, list[str]]] = []
    for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
        cells = [_cell_text(v) for v in values]
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = cells
        else:
            rows.append((number, None, cells))
    if header is None:
        return None
    while header and not header[-1].strip():  # trailing empty header cells: Excel's used range
        header.pop()
    width = len(header)
    trimmed = []
    for number, line, cells in rows:
        extra = cells[width:]
        cells = cells[:width] + [""] * (width - len(cells))
        if any(c.strip() for c in extra):
            cells = cells + extra  # values beyond the header: the checks name the row
        trimmed.append((number, line, cells))
    return header, trimmed
