"""Import ratings — CSV, Excel (.xlsx) or Parquet, long (one row per instrument total per session) or wide
(one row per session, a column per instrument; ``alliance.import_formats``), with an optional mapping file
for a service's own column names and date format — into an Alliance database, incrementally and
idempotently.

Columns: ``client_id, clinician_id, session_date, session_number, instrument, score`` (required), and
optionally ``episode_id, team_id, supervisor_id, population, end_date, end_reason`` and item columns
``item_1 … item_N``. A session number is the position in the episode: a session without a rating is a gap.
Without ``episode_id`` each client's rows form one episode (``<client_id>-1``).

Every row is checked first — against the instruments, against the other rows and against what the database
already holds — including everything the schema would refuse. If anything is wrong, every problem is reported
with its row number (as a spreadsheet shows it: the header is row 1, blank lines count) and nothing is
written. Otherwise the file is merged: a rating, session or episode end already stored and unchanged stays
as it is, a changed one is updated, a new one inserted, and nothing is ever deleted; the summary counts each.
A team's new supervisor is applied and reported; a clinician's new team is refused (the database keeps one
team per clinician, so all their past episodes would move). A database file is never changed in place: the
changes are written into a complete copy beside it (or a new file is built there) and swapped in with
``os.replace`` only when complete, so an interrupted import leaves the old file (or none) and a running
dashboard reads the old file until it notices the new one (``alliance.db.rewrite``). One writer at a time:
a second import or refresh of the same file is refused while one runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import math
import os
import re
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from alliance.db import (
    DatabaseError,
    connect_writer,
    fsync_folder,
    remove_stale_temporaries,
    rewrite,
    temporary_path,
    writer_lock,
)
from alliance.import_formats import (
    FormatError,
    Mapping,
    human_date_format,
    load_mapping,
    read_xlsx,
    rename_columns,
    to_long,
    wide_columns,
)
from alliance.inert import csv_cell
from alliance.registry import POPULATIONS, Instrument, Norm, Registry, load_registry
from alliance.schema import SchemaError, check_schema, create_schema, write_registry
from alliance.store import write_store

REQUIRED = ("client_id", "clinician_id", "session_date", "session_number", "instrument", "score")
OPTIONAL = ("episode_id", "team_id", "supervisor_id", "population", "end_date", "end_reason")
CODES = ("client_id", "clinician_id", "episode_id", "team_id", "supervisor_id")
END_REASONS = ("planned", "dropout", "transferred", "other")
DEFAULT_TEAM = "unassigned"
#: Item scores must add up to the total within this tolerance (one-decimal visual-analogue items).
ITEM_SUM_TOLERANCE = 0.05
#: What the schema holds (data/schema.sql CHECK constraints): checked here so no row reaches a CHECK.
MAX_SESSION_NUMBER = 500
SCORE_LIMITS = (0.0, 1000.0)
ITEM_LIMITS = (0.0, 100.0)
#: Dates before this are not plausible session or discharge dates (typing errors such as 1926 for 2026);
#: dates after today are refused too.
EARLIEST_DATE = dt.date(1970, 1, 1)
#: A code longer than this is free text, not a pseudonymous code.
MAX_CODE_LENGTH = 100
#: DuckDB must never fetch or load an extension because of what a file looks like.
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
#: Old binary Excel workbooks (.xls) are recognised and refused with advice; .xlsx is read (openpyxl).
XLSX_ADVICE = "save it from Excel as a workbook (.xlsx) or as 'CSV UTF-8' and import that"

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_WHOLE = re.compile(r"\d+(\.0*)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_UTF8 = re.compile(r"[\udc80-\udcff]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SEP_LINE = re.compile(r'"?sep=(.)"?[ \t]*', re.IGNORECASE)
_ITEM_KEY = re.compile(r"item(\d+)")
_LINE_END = re.compile(r"\r\n|\r|\n")
_DELIMITERS = (",", ";", "\t", "|")


def _key(name: str) -> str:
    """A column name reduced to lower-case letters and digits: 'Episode ID' and 'episode_id' meet."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


_KNOWN = {_key(c): c for c in (*REQUIRED, *OPTIONAL)}


@dataclass(frozen=True)
class RowProblem:
    """One problem with one row of the input (row 1 is the header; row 0 the file or database as a whole)."""

    row: int
    column: str
    problem: str
    value: str = ""
    line: int | None = None  # the line of a CSV file where the row starts (a quoted cell may span lines)

    def __str__(self) -> str:
        if self.row == 0:
            return self.problem
        return f"row {self.row}: {self.column}: {self.problem}"


#: Problems (row 0) that stop an import before any row is read: the file, the database, the rejects path,
#: the mapping file.
_WHOLE_FILE = ("file", "database", "rejects", "mapping")


class _Refused(Exception):
    """A problem with the input file or the database as a whole: nothing can be read or written."""

    def __init__(self, column: str, problem: str):
        super().__init__(problem)
        self.problem = RowProblem(0, column, problem)


@dataclass
class ImportReport:
    """What an import wrote (or would write, or why it wrote nothing)."""

    path: Path
    db: Path | None = None
    dry_run: bool = False
    problems: list[RowProblem] = field(default_factory=list)
    #: Data rows read (blank rows not counted).
    rows: int = 0
    #: {"ratings": {"inserted": n, "updated": n, "unchanged": n}, "sessions": …, "episodes": …,
    #:  "item scores": {"inserted": n, "removed": n}}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Changes applied beyond ratings (a clinician's team, a team's supervisor, instrument definitions),
    #: columns read under another spelling or ignored: each one line.
    notes: list[str] = field(default_factory=list)
    written: bool = False
    rejects: Path | None = None
    #: Why the stored metrics could not be brought up to date (the ratings were written all the same; pages
    #: compute the metrics until `alliance refresh` succeeds).
    store_problem: str = ""
    store_refreshed: bool = False
    #: Why the rejects file could not be written.
    rejects_problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def refused(self) -> int:
        """Data rows refused (each row once, however many problems it has)."""
        return len({p.row for p in self.problems if p.row >= 2})

    @property
    def exit_code(self) -> int:
        """0 imported (or nothing to change), 1 the input has problems, 2 the database cannot be used."""
        if self.ok:
            return 0
        return 2 if any(p.row == 0 and p.column == "database" for p in self.problems) else 1

    def _counts_text(self) -> str:
        """'ratings 3 inserted, 1 updated, 40 unchanged; sessions 2 inserted, …' (zero counts left out)."""
        parts = []
        for what, c in self.counts.items():
            given = [f"{n} {k}" for k, n in c.items() if n]
            if given or what == "ratings":
                parts.append(f"{what} " + (", ".join(given) or "0"))
        return "; ".join(parts)

    def lines(self, limit: int = 50) -> list[str]:
        """The report as one-line messages (the command prints each as ``alliance import: …``)."""
        out: list[str] = []
        whole = [p for p in self.problems if p.row == 0 and p.column in _WHOLE_FILE]
        if whole:
            out = [f"{p.problem.rstrip('.')}; nothing was written." for p in whole]
            if self.rejects_problem:
                out.append(self.rejects_problem)
            return out
        if self.problems:
            out += [str(p) for p in self.problems[:limit]]
            more = len(self.problems) - limit
            if more > 0:
                where = f"all are in {self.rejects}" if self.rejects else "--rejects PATH writes them all"
                out.append(f"… and {more} more problem(s) ({where})")
            if self.refused:
                what = f"{self.refused} of {self.rows} row(s) refused"
            else:
                what = f"{len(self.problems)} problem(s)"
            out.append(f"{self.path}: {what}; nothing was written.")
            if self.rejects and not self.rejects_problem:
                out.append(f"Refused rows listed in {self.rejects} (row, line, column, value, reason).")
            if self.rejects_problem:
                out.append(self.rejects_problem)
            return out
        counts = self._counts_text()
        if self.dry_run:
            out.append(
                f"Dry run, nothing written: importing {self.path} into {self.db} would give: "
                f"{self.rows} row(s); "
                f"{counts}; 0 refused."
            )
        elif not self.written:
            out.append(
                f"{self.path}: nothing to change; all {self.rows} row(s) are already in {self.db} ({counts})."
            )
        else:
            out.append(f"Imported {self.path} into {self.db}: {self.rows} row(s); {counts}; 0 refused.")
        out += self.notes
        if self.written:
            if self.store_problem:
                out.append(
                    f"The stored metrics were not refreshed ({self.store_problem}); run `alliance refresh`."
                )
            elif self.store_refreshed:
                out.append("Stored metrics refreshed.")
        if self.rejects_problem:
            out.append(self.rejects_problem)
        elif self.rejects:
            out.append(f"No row refused; {self.rejects} lists none.")
        return out

    def summary(self, limit: int = 50) -> str:
        return "\n".join(self.lines(limit))


def _show(value: str, width: int = 60) -> str:
    """A cell for a message: quoted, escapes visible, never a terminal control sequence, one line."""
    text = repr(_plain(value))
    return text if len(text) <= width else text[: width - 2] + "…" + text[-1]


def _plain(value) -> str:
    """Text with bytes that were not UTF-8 as ``\\xNN`` and control characters as escapes (no NUL, no ESC)."""
    text = "" if value is None else str(value)
    text = _NOT_UTF8.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02X}", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return _plain(text[0] if text else type(exc).__name__)


# -- reading the input ----------------------------------------------------------------------------------
@dataclass
class _Table:
    """The cells of the input, every value a string, with each row's number as a spreadsheet shows it."""

    header: list[str]
    rows: list[tuple[int, int | None, list[str]]]  # (row number, line number, cells)
    delimiter: str | None  # None: not CSV
    problems: list[RowProblem] = field(default_factory=list)
    #: Wide files turned long: per row, the file's column its score came from (named in messages).
    score_names: list[str] | None = None


def _check_input_path(file: Path | str) -> Path:
    text = str(file)
    if _URL.match(text):
        raise _Refused("file", f"{text} is a URL; download the file and import it from disk")
    path = Path(text)
    if not path.exists():
        raise _Refused("file", f"{path} not found")
    if path.is_dir():
        raise _Refused("file", f"{path} is a folder; give the exported ratings file")
    if not path.is_file():
        raise _Refused("file", f"{path} is not a regular file")
    return path


def _read_input(path: Path, mapping: Mapping, notes: list[str]) -> _Table:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Refused("file", f"{path} cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise _Refused("file", f"{path} is empty (0 bytes)")
    kind = _sniff_binary(path, data)
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "xlsx":
        del data
        try:
            header, rows, sheet = read_xlsx(path, mapping.sheet, _looks_like_header)
        except FormatError as exc:
            raise _Refused("file", str(exc)) from None
        notes.append(f"Read worksheet {sheet!r}.")
        return _Table(header, rows, None)
    return _read_csv(path, data)


def _looks_like_header(cells: list[str]) -> bool:
    return sum(1 for c in cells if _key(c) in _KNOWN) >= 2


def _sniff_binary(path: Path, data: bytes) -> str | None:
    """Refuse, with advice, every kind of file that is recognisably not a CSV; 'parquet' for Parquet."""
    head = data[:16]
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        raise _Refused(
            "file", f"{path} is gzip-compressed; decompress it (gunzip) and import the file inside"
        )
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in data[:4096] or path.suffix.lower() in (".xlsx", ".xlsm"):
            return "xlsx"
        raise _Refused("file", f"{path} is a ZIP archive; unpack it and import the CSV inside")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise _Refused("file", f"{path} is an old Excel workbook (.xls); {XLSX_ADVICE}")
    if head.startswith(b"SQLite format 3\x00"):
        raise _Refused("file", f"{path} is a SQLite database; export the ratings as CSV and import that")
    if head[8:12] == b"DUCK":
        raise _Refused("file", f"{path} is a DuckDB database; give it as --db, or export the ratings as CSV")
    if head.startswith(b"%PDF"):
        raise _Refused("file", f"{path} is a PDF; export the ratings as CSV")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(head) >= 4 and ((head[1] == 0 and head[3] == 0 and head[0]) or (head[0] == 0 and head[2] == 0))
    ):
        raise _Refused(
            "file",
            f"{path} is UTF-16 text (Excel's 'Unicode Text'); save it as 'CSV UTF-8' and import that",
        )
    return None


def _sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header into the most known column names (then the most cells)."""

    def score(d: str) -> tuple[int, int]:
        try:
            cells = next(csv.reader([first_line], delimiter=d), [])
        except csv.Error:  # a quote left open in the header: the reader reports it on row 1
            return 0, 0
        known = sum(1 for c in cells if _key(c) in _KNOWN or _ITEM_KEY.fullmatch(_key(c)))
        return known, len(cells)

    return max(_DELIMITERS, key=score)  # max keeps the first of equals: ',' when nothing is known


def _read_csv(path: Path, data: bytes) -> _Table:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Bytes that are not UTF-8 survive as lone surrogates, so the rows that hold them can be named.
    text = data.decode("utf-8", "surrogateescape")
    start = text.lstrip()[:64].casefold()
    if start.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml")):
        raise _Refused("file", f"{path} is an HTML or XML page, not a CSV export (a login or error page?)")
    # Judged on the first line only: a NUL byte or stray bytes further down are blamed on their own row.
    sample = _LINE_END.split(text[:1024], maxsplit=1)[0]
    odd = sum(1 for ch in sample if (_CONTROL.match(ch) and ch not in "\t\r") or _NOT_UTF8.match(ch))
    if "\x00" in sample or odd > len(sample) / 10:
        raise _Refused("file", f"{path} is not a text file (binary content); export the ratings as CSV")
    first, *rest = _LINE_END.split(text, maxsplit=1)
    offset = 0
    if m := _SEP_LINE.fullmatch(first):  # Excel's "sep=;" line: the delimiter, not a row (Excel hides it)
        delimiter = m.group(1)
        text = rest[0] if rest else ""
        offset = 1
    else:
        delimiter = _sniff_delimiter(first)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, strict=True, skipinitialspace=True
    )
    table = _Table([], [], delimiter)
    row, last_line, header = 0, 0, None
    try:
        for cells in reader:
            row += 1
            line = last_line + 1 + offset
            last_line = reader.line_num
            if header is None:
                header = cells
            elif "".join(cells).strip():  # blank lines and rows of empty cells count, but hold nothing
                table.rows.append((row, line, cells))
    except csv.Error as exc:
        reason = str(exc)
        if "unexpected end of data" in reason:
            reason = "a quoted cell is never closed (the file may be truncated)"
        elif "expected after" in reason:
            reason = 'text after a closing quote (a quote inside a cell must be doubled: "")'
        elif "field larger" in reason:
            reason = f"a cell longer than {csv.field_size_limit():,} characters"
        table.problems.append(
            RowProblem(
                row + 1, "row", f"cannot be read as CSV: {reason}; reading stopped here", "", last_line + 1
            )
        )
    table.header = header or []
    return table


def _read_parquet(path: Path) -> _Table:
    con = duckdb.connect(config=DUCKDB_CONFIG)
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
        exprs = []
        for name, kind, *_ in described:
            col = '"' + name.replace('"', '""') + '"'
            if kind.startswith("TIMESTAMP"):  # a date column written as midnight timestamps
                exprs.append(
                    f"CASE WHEN {col} = date_trunc('day', {col}) THEN strftime({col}, '%Y-%m-%d') "
                    f"ELSE CAST({col} AS VARCHAR) END"
                )
            else:
                exprs.append(f"CAST({col} AS VARCHAR)")
        rows = con.execute(f"SELECT {', '.join(exprs)} FROM read_parquet($p)", {"p": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise _Refused("file", f"{path} cannot be read as Parquet ({_first_line(exc)})") from None
    finally:
        con.close()
    # Numbered as the file would be in a spreadsheet: the column names are row 1.
    body = [(i + 2, None, ["" if v is None else v for v in r]) for i, r in enumerate(rows)]
    return _Table([d[0] for d in described], [r for r in body if any(c.strip() for c in r[2])], None)


# -- shapes: a mapping's column names, the wide layout ----------------------------------------------------
def _reshape(table: _Table, registry: Registry, mapping: Mapping, notes: list[str]) -> list[RowProblem]:
    """Rename the mapping's columns, and turn a wide table (a column per instrument, no ``instrument`` and
    ``score`` columns) into the long one the checks read. Returns problems: the header's or the mapping's
    (nothing else can be read then) and rows of the wrong width (refused with their numbers)."""
    problems: list[RowProblem] = []
    table.header, missing = rename_columns(table.header, mapping)
    if missing:
        notes.append(f"The mapping names column(s) the file does not have: {', '.join(map(_show, missing))}.")
    keys = {_key(c) for c in table.header}
    if "instrument" in keys or "score" in keys:
        if mapping.instruments:
            problems.append(
                RowProblem(
                    1,
                    "header",
                    "the mapping's [instruments] is for the wide layout, but the file has instrument and "
                    "score columns (the long layout); remove one or the other",
                    "",
                    1,
                )
            )
        return problems
    unknown = [f"{k!r} = {v!r}" for k, v in mapping.instruments.items() if registry.canonical(v) is None]
    if unknown:
        known = ", ".join(sorted(i.code for i in registry))
        problems.append(
            RowProblem(
                0,
                "mapping",
                f"mapping file {mapping.path}: [instruments] {', '.join(unknown)}: no such instrument "
                f"(known: {known})",
            )
        )
        return problems
    wide = {
        j: registry.canonical(code) or code
        for j, code in wide_columns(table.header, [i.code for i in registry], mapping).items()
    }
    if not wide:
        return problems  # neither long nor wide: the header check names what is missing
    items = [c for c in table.header if _ITEM_KEY.fullmatch(_key(c))]
    if items:
        problems.append(
            RowProblem(
                1,
                items[0],
                "item columns need the long layout (one row per instrument total); "
                "a wide file gives each instrument's total only",
                items[0],
                1,
            )
        )
        return problems
    width = len(table.header)
    good = []
    for row, line, cells in table.rows:
        if len(cells) != width:
            problems.append(
                RowProblem(
                    row,
                    "row",
                    f"has {len(cells)} cells but the header has {width} "
                    "(a truncated row, or the delimiter inside an unquoted value)",
                    (table.delimiter or ",").join(cells),
                    line,
                )
            )
        else:
            good.append((row, line, cells))
    shown = ", ".join(
        _show(table.header[j].strip()) + ("" if _key(table.header[j]) == _key(code) else f" as {code}")
        for j, code in wide.items()
    )
    table.header, table.rows, table.score_names = to_long(table.header, good, wide)
    notes.append(f"Read as wide (one row per session, a column per instrument): {shown}.")
    return problems


# -- columns --------------------------------------------------------------------------------------------
def _near_miss(key: str, present: set[str]) -> list[str]:
    """Known columns (absent from the file) that an unknown column name looks like a misspelling of."""
    absent = {k: c for k, c in _KNOWN.items() if c not in present}
    hits = [c for k, c in absent.items() if len(key) >= 3 and (k.startswith(key) or key.startswith(k))]
    hits += [absent[k] for k in difflib.get_close_matches(key, list(absent), n=2, cutoff=0.8)]
    return list(dict.fromkeys(hits))


def _map_columns(table: _Table, notes: list[str]) -> tuple[dict[str, int], list[RowProblem]]:
    """Header cell → column name Alliance uses; problems with the header (row 1)."""
    problems: list[RowProblem] = []
    columns: dict[str, int] = {}
    written: dict[str, str] = {}
    unknown: list[tuple[int, str]] = []
    for j, cell in enumerate(table.header):
        name = cell.strip()
        key = _key(name)
        if not name:
            if any(j < len(cells) and cells[j].strip() for _, _, cells in table.rows):
                problems.append(
                    RowProblem(1, f"column {j + 1}", "has values but no name in the header", "", 1)
                )
            continue
        if "\x00" in name or _NOT_UTF8.search(name):
            problems.append(RowProblem(1, "header", f"column {j + 1} name is damaged or not UTF-8", name, 1))
            continue
        canon = _KNOWN.get(key)
        if canon is None and (m := _ITEM_KEY.fullmatch(key)):
            if int(m.group(1)) == 0:
                problems.append(RowProblem(1, name, "items are numbered from 1 (item_1 … item_N)", name, 1))
                continue
            canon = f"item_{int(m.group(1))}"
        if canon is None:
            unknown.append((j, name))
            continue
        if canon in columns:
            problems.append(
                RowProblem(
                    1, name, f"repeats column {written[canon]!r}: both would give {canon}; keep one", name, 1
                )
            )
            continue
        columns[canon] = j
        written[canon] = name
        if name.casefold() != canon:
            notes.append(f"Column {name!r} read as {canon}.")
    ignored = []
    for _j, name in unknown:
        hits = _near_miss(_key(name), set(columns))
        if hits:
            problems.append(
                RowProblem(
                    1,
                    name,
                    f"is not a column Alliance knows; did you mean {' or '.join(hits)}? "
                    "Rename it, or delete the column",
                    name,
                    1,
                )
            )
        else:
            ignored.append(name)
    if ignored:
        notes.append(f"Ignored column(s) Alliance does not use: {', '.join(map(_show, ignored))}.")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append(RowProblem(1, "header", f"missing required column(s) {', '.join(missing)}", "", 1))
    return columns, problems


# -- rows -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Record:
    row: int
    line: int | None
    client_id: str
    clinician_id: str
    episode_id: str
    team_id: str | None
    supervisor_id: str | None
    population: str | None
    session_number: int
    session_date: dt.date
    instrument: str
    score: float
    end_date: dt.date | None
    end_reason: str | None
    items: dict[int, float] | None  # None: the file has no item columns


def _number(text: str, decimal_comma: bool) -> float | None:
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _date(text: str, date_format: str | None = None) -> dt.date | None:
    """A date written YYYY-MM-DD, or in the mapping file's ``date_format``."""
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    if date_format:
        try:
            return dt.datetime.strptime(text, date_format).date()
        except ValueError:
            return None
    return None


def _check_rows(
    table: _Table,
    columns: dict[str, int],
    registry: Registry,
    today: dt.date,
    notes: list[str],
    date_format: str | None = None,
) -> tuple[list[_Record], list[RowProblem]]:
    problems: list[RowProblem] = []
    records: list[_Record] = []
    width = len(table.header)
    names = {j: table.header[j].strip() or f"column {j + 1}" for j in range(width)}
    items = sorted((int(c.removeprefix("item_")), j) for c, j in columns.items() if c.startswith("item_"))
    has_items = bool(items)
    decimal_comma = table.delimiter not in (",", None)
    commas: list[tuple[int, str]] = []
    epi = columns.get("episode_id")
    has_episode = epi is not None and any(
        len(cells) > epi and cells[epi].strip() for _, _, cells in table.rows
    )
    known = ", ".join(sorted(i.code for i in registry))
    lookup = {}
    date_words = "YYYY-MM-DD" + (f" or {human_date_format(date_format)}" if date_format else "")

    clean = _fast_records(table, columns, registry, today, date_format, decimal_comma, has_episode)
    for index, (row, line, cells) in enumerate(table.rows):
        if clean[index] is not None:  # every check passed, column by column, in _fast_records
            records.append(clean[index])
            continue
        found: list[RowProblem] = []
        # A wide file's rating: its score (and instrument) are the file's instrument column.
        score_name = table.score_names[index] if table.score_names else "score"

        def bad(
            column: str, problem: str, value: str = "", row=row, line=line, found=found, score_name=score_name
        ) -> None:
            if column in ("score", "instrument"):
                column = score_name if column == "score" or table.score_names else column
            found.append(RowProblem(row, column, problem, value, line))

        if len(cells) != width:
            bad(
                "row",
                f"has {len(cells)} cells but the header has {width} "
                "(a truncated row, or the delimiter inside an unquoted value)",
                (table.delimiter or ",").join(cells),
            )
            problems += found
            continue
        for j, cell in enumerate(cells):
            if "\x00" in cell:
                bad(names[j], "contains a NUL byte: the export is damaged in this row", cell)
            elif m := _NOT_UTF8.search(cell):
                byte = ord(m.group()) - 0xDC00
                bad(names[j], f"is not UTF-8 text (byte 0x{byte:02X}); save the file as 'CSV UTF-8'", cell)
        if found:
            problems += found
            continue

        def get(name: str, cells=cells) -> str:
            j = columns.get(name)
            return cells[j].strip() if j is not None else ""

        def number(name: str, text: str, row=row) -> float | None:
            value = _number(text, decimal_comma)
            if value is not None and "," in text:
                commas.append((row, text))
            return value

        for name in REQUIRED:
            if not get(name):
                bad(name, "missing value")
        for name in CODES:
            value = get(name)
            if _CONTROL.search(value):
                bad(name, f"{_show(value)} contains a control character", value)
            elif len(value) > MAX_CODE_LENGTH:
                bad(name, f"is longer than {MAX_CODE_LENGTH} characters: a code, not free text", value)

        raw_instrument = get("instrument")
        if raw_instrument not in lookup:
            lookup[raw_instrument] = registry.canonical(raw_instrument) if raw_instrument else None
        code = lookup[raw_instrument]
        ins = registry.get(code) if code else None
        if raw_instrument and ins is None:
            bad("instrument", f"unknown instrument {_show(raw_instrument)} (known: {known})", raw_instrument)

        raw_score = get("score")
        score = number("score", raw_score) if raw_score else None
        if raw_score and score is None:
            bad("score", f"{_show(raw_score)} is not a number", raw_score)
        elif score is not None and ins is not None and not ins.min_score <= score <= ins.max_score:
            bad(
                "score",
                f"{raw_score} is outside {ins.code}'s range {ins.min_score:g}–{ins.max_score:g}",
                raw_score,
            )
        elif score is not None and not SCORE_LIMITS[0] <= score <= SCORE_LIMITS[1]:
            bad(
                "score",
                f"{raw_score} is outside {SCORE_LIMITS[0]:g}–{SCORE_LIMITS[1]:g}, "
                "the scores the database holds",
                raw_score,
            )

        raw_number = get("session_number")
        session_number = None
        if raw_number:
            if not _WHOLE.fullmatch(raw_number) or float(raw_number) < 1:
                bad(
                    "session_number",
                    f"{_show(raw_number)} is not a session position (a whole number 1–{MAX_SESSION_NUMBER})",
                    raw_number,
                )
            elif float(raw_number) > MAX_SESSION_NUMBER:
                bad(
                    "session_number",
                    f"{raw_number} is beyond session {MAX_SESSION_NUMBER}, the most the database holds",
                    raw_number,
                )
            else:
                session_number = int(float(raw_number))

        def when(name: str, text: str, what: str) -> dt.date | None:
            value = _date(text, date_format)
            if value is None:
                bad(name, f"{_show(text)} is not a date ({date_words})", text)
            elif value < EARLIEST_DATE:
                bad(name, f"{text} is before {EARLIEST_DATE.year}: not a plausible {what}", text)
            elif value > today:
                bad(name, f"{text} is after today ({today}): not a plausible {what}", text)
            else:
                return value
            return None

        raw_date = get("session_date")
        session_date = when("session_date", raw_date, "session date") if raw_date else None

        episode_id = get("episode_id")
        if has_episode and not episode_id:
            bad("episode_id", "missing value (give every row an episode_id or none)")
        team_id, supervisor_id = get("team_id") or None, get("supervisor_id") or None
        if supervisor_id and not team_id:
            bad(
                "supervisor_id",
                "a supervisor_id needs the team_id it supervises in the same row",
                supervisor_id,
            )

        raw_population = get("population")
        population = raw_population.lower() or None
        if population and population not in POPULATIONS:
            bad(
                "population",
                f"{_show(raw_population)} is not one of {', '.join(POPULATIONS)}",
                raw_population,
            )

        raw_end = get("end_date")
        end_date = when("end_date", raw_end, "end date") if raw_end else None
        raw_reason = get("end_reason")
        end_reason = raw_reason.lower() or None
        if end_reason and end_reason not in END_REASONS:
            bad("end_reason", f"{_show(raw_reason)} is not one of {', '.join(END_REASONS)}", raw_reason)
        elif end_reason and not raw_end:
            bad("end_reason", "an end reason needs an end_date", raw_reason)

        item_scores: dict[int, float] | None = {} if has_items else None
        items_ok = True
        for no, j in items:
            text = cells[j].strip()
            if not text:
                continue
            value = number(names[j], text)
            if value is None:
                bad(names[j], f"{_show(text)} is not a number", text)
            elif ins is not None and no > ins.n_items:
                bad(names[j], f"{ins.code} has no item {no}", text)
            elif ins is not None and (
                (ins.item_min is not None and value < ins.item_min)
                or (ins.item_max is not None and value > ins.item_max)
            ):
                bad(names[j], f"item score {text} is outside the item range of {ins.code}", text)
            elif not ITEM_LIMITS[0] <= value <= ITEM_LIMITS[1]:
                bad(names[j], f"item score {text} is outside 0–100, the item scores the database holds", text)
            else:
                item_scores[no] = value
                continue
            items_ok = False
        if (
            item_scores
            and items_ok
            and ins is not None
            and score is not None
            and len(item_scores) == ins.n_items
            and abs(sum(item_scores.values()) - score) > ITEM_SUM_TOLERANCE
        ):
            bad(
                "score",
                f"total {raw_score} is not the sum of its item scores ({sum(item_scores.values()):g})",
            )

        if found:
            problems += found
            continue
        client_id = get("client_id")
        records.append(
            _Record(
                row,
                line,
                client_id,
                get("clinician_id"),
                episode_id if has_episode else f"{client_id}-1",
                team_id,
                supervisor_id,
                population,
                session_number,
                session_date,
                ins.code,
                score,
                end_date,
                end_reason,
                item_scores,
            )
        )
    if commas:
        row, text = commas[0]
        notes.append(
            f"Read {len(commas)} number(s) with a decimal comma as decimals (first at row {row}: {text!r})."
        )
    return records, problems


_CONTROL_OR_DAMAGED = r"[\x00-\x1f\x7f-\x9f\udc80-\udcff]"


def _fast_records(
    table: _Table,
    columns: dict[str, int],
    registry: Registry,
    today: dt.date,
    date_format: str | None,
    decimal_comma: bool,
    has_episode: bool,
) -> list[_Record | None]:
    """The rows that pass every check of ``_check_rows``, found column by column (vectorised; a million rows
    in seconds) and turned into records; None for every other row, which the row-by-row checks then read and
    name its problems. Conservative: anything unusual (item scores, decimal commas, a date in the mapping's
    format, a control character anywhere) is left to the row-by-row checks."""
    n = len(table.rows)
    out: list[_Record | None] = [None] * n
    width = len(table.header)
    if not n or any(c.startswith("item_") for c in columns):
        return out
    fits = np.fromiter((len(cells) == width for _, _, cells in table.rows), dtype=bool, count=n)
    if not fits.any():
        return out
    blank = [""] * width
    rows = [cells if fit else blank for (_, _, cells), fit in zip(table.rows, fits, strict=True)]
    # Each column is checked on its distinct values (a few hundred scores, dates and session numbers in a
    # million rows), then the verdicts are spread back to the rows. First, in every column: a control
    # character, a NUL or a byte that was not UTF-8 anywhere leaves the row to the row-by-row checks.
    damaged = re.compile(_CONTROL_OR_DAMAGED)
    factorized = []
    ok = fits.copy()
    for j in range(width):
        codes, uniques = pd.factorize(np.array([c[j] for c in rows], dtype=object))
        factorized.append((codes, uniques))
        clean_value = np.array([not damaged.search(u) for u in uniques] + [False], dtype=bool)
        ok &= clean_value[codes]

    def column(name: str, judge) -> tuple[np.ndarray, np.ndarray]:
        """(value per row, verdict per row) for a column; judge(stripped text) → (value, ok)."""
        j = columns.get(name)
        if j is None:
            v, good = judge("")
            return np.full(n, v, dtype=object), np.full(n, good, dtype=bool)
        codes, uniques = factorized[j]
        judged = [judge(u.strip()) for u in uniques]
        values = np.array([v for v, _ in judged] + [None], dtype=object)
        verdicts = np.array([g for _, g in judged] + [False], dtype=bool)
        return values[codes], verdicts[codes]

    def code(required: bool):
        return lambda t: (t, (bool(t) or not required) and len(t) <= MAX_CODE_LENGTH)

    def iso_date(required: bool):
        def judge(t: str):
            if not t:
                return None, not required
            d = _date(t)
            return d, d is not None and EARLIEST_DATE <= d <= today

        return judge

    def instrument(t: str):
        c = registry.canonical(t) if t else None
        return (registry.get(c) if c else None), c is not None

    def score(t: str):
        v = _number(t, False) if "," not in t else None
        return v, v is not None and SCORE_LIMITS[0] <= v <= SCORE_LIMITS[1]

    def session_number(t: str):
        good = bool(_WHOLE.fullmatch(t)) and 1 <= float(t) <= MAX_SESSION_NUMBER
        return (int(float(t)) if good else None), good

    def lowered(allowed):
        return lambda t: (t.lower() or None, not t or t.lower() in allowed)

    clients, g = column("client_id", code(True))
    ok &= g
    clinicians, g = column("clinician_id", code(True))
    ok &= g
    episodes, g = column("episode_id", code(has_episode))
    ok &= g
    teams, g = column("team_id", code(False))
    ok &= g
    supervisors, g = column("supervisor_id", code(False))
    ok &= g & ~((supervisors != "") & (teams == ""))
    instruments, g = column("instrument", instrument)
    ok &= g
    scores, g = column("score", score)
    ok &= g
    inside = [
        g and ins is not None and v is not None and ins.min_score <= v <= ins.max_score
        for g, ins, v in zip(ok.tolist(), instruments.tolist(), scores.tolist(), strict=True)
    ]
    ok &= np.array(inside, dtype=bool)
    numbers, g = column("session_number", session_number)
    ok &= g
    days, g = column("session_date", iso_date(True))
    ok &= g
    ends, g = column("end_date", iso_date(False))
    ok &= g
    populations, g = column("population", lowered(POPULATIONS))
    ok &= g
    reasons, g = column("end_reason", lowered(END_REASONS))
    ok &= g & ((reasons == None) | (ends != None))  # noqa: E711 — elementwise on object arrays
    chosen = np.flatnonzero(ok)
    for i, client, clinician, episode, team, sup, pop, no, when, ins, sc, end, why in zip(
        chosen.tolist(),
        clients[chosen].tolist(),
        clinicians[chosen].tolist(),
        (episodes[chosen] if has_episode else np.array([f"{c}-1" for c in clients[chosen]])).tolist(),
        teams[chosen].tolist(),
        supervisors[chosen].tolist(),
        populations[chosen].tolist(),
        numbers[chosen].tolist(),
        days[chosen].tolist(),
        instruments[chosen].tolist(),
        scores[chosen].tolist(),
        ends[chosen].tolist(),
        reasons[chosen].tolist(),
        strict=True,
    ):
        row, line, _cells = table.rows[i]
        out[i] = _Record(
            row,
            line,
            client,
            clinician,
            episode,
            team or None,
            sup or None,
            pop,
            no,
            when,
            ins.code,
            sc,
            end,
            why,
            None,
        )
    return out


def _disagreements(records, key, value, column: str, say) -> list[RowProblem]:
    """Rows whose value for a key differs from the first row that gives one (rows giving none are skipped)."""
    first: dict = {}
    out = []
    for r in records:
        v = value(r)
        if v is None:
            continue
        k = key(r)
        if k not in first:
            first[k] = (v, r.row)
        elif v != first[k][0]:
            out.append(RowProblem(r.row, column, say(r, k, v, *first[k]), str(v), r.line))
    return out


def _fmt_end(end: tuple) -> str:
    return f"{end[0]}" + (f" ({end[1]})" if end[1] else "")


def _check_agreement(records: list[_Record]) -> list[RowProblem]:
    """Rows of the file that contradict each other: one fact given two values is never resolved by choice."""
    problems = []
    seen: dict[tuple, int] = {}
    for r in records:
        k = (r.episode_id, r.session_number, r.instrument)
        if k in seen:
            problems.append(
                RowProblem(
                    r.row,
                    "session_number",
                    f"second {r.instrument} rating for episode {r.episode_id} session {r.session_number} "
                    f"(first at row {seen[k]})",
                    str(r.session_number),
                    r.line,
                )
            )
        else:
            seen[k] = r.row
    problems += _disagreements(
        records,
        lambda r: (r.episode_id, r.session_number),
        lambda r: r.session_date,
        "session_date",
        lambda r, k, v, v0, r0: f"session {k[1]} of episode {k[0]} is dated {v} here but {v0} at row {r0}",
    )
    problems += _disagreements(
        records,
        lambda r: r.episode_id,
        lambda r: r.client_id,
        "client_id",
        lambda r, k, v, v0, r0: (
            f"episode {k} is client {v0}'s at row {r0}, {v}'s here (one client per episode)"
        ),
    )
    problems += _disagreements(
        records,
        lambda r: r.episode_id,
        lambda r: r.clinician_id,
        "clinician_id",
        lambda r, k, v, v0, r0: (
            f"episode {k} is with clinician {v0} at row {r0}, {v} here (a transfer starts a new episode)"
        ),
    )
    problems += _disagreements(
        records,
        lambda r: r.episode_id,
        lambda r: r.population,
        "population",
        lambda r, k, v, v0, r0: f"episode {k} is {v0} at row {r0}, {v} here",
    )
    problems += _disagreements(
        records,
        lambda r: r.episode_id,
        lambda r: (r.end_date, r.end_reason) if r.end_date else None,
        "end_date",
        lambda r, k, v, v0, r0: (
            f"episode {k} ends {_fmt_end(v0)} at row {r0} but {_fmt_end(v)} here (one end per episode)"
        ),
    )
    problems += _disagreements(
        records,
        lambda r: r.clinician_id,
        lambda r: r.team_id,
        "team_id",
        lambda r, k, v, v0, r0: (
            f"clinician {k} is in team {v0} at row {r0}, {v} here (one team per clinician)"
        ),
    )
    problems += _disagreements(
        records,
        lambda r: r.team_id,
        lambda r: r.supervisor_id,
        "supervisor_id",
        lambda r, k, v, v0, r0: (
            f"team {k} has supervisor {v0} at row {r0}, {v} here (one supervisor per team)"
        ),
    )
    return problems


# -- the database ---------------------------------------------------------------------------------------
def _check_db_path(db: Path | str) -> tuple[Path, bool]:
    """The database path, and whether it holds a database already; refuses every path that cannot be one."""
    text = str(db)
    if _URL.match(text) or text == ":memory:" or text.lower().startswith(("md:", "motherduck:")):
        raise _Refused(
            "database", f"{text} is not a file path; give a database file (DuckDB would go elsewhere)"
        )
    path = Path(text)
    if path.exists():
        if path.is_dir():
            raise _Refused(
                "database", f"{path} is a folder; give a database file, e.g. {path / 'alliance.duckdb'}"
            )
        if not path.is_file():
            raise _Refused("database", f"{path} is not a regular file")
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise _Refused("database", f"{path} cannot be read ({exc.strerror or exc})") from None
        if not head:
            raise _Refused(
                "database",
                f"{path} is an empty file (0 bytes), not a database; delete it or give another path",
            )
        if head.startswith(b"SQLite format 3\x00"):
            raise _Refused("database", f"{path} is a SQLite database, not an Alliance (DuckDB) database")
        if head[8:12] != b"DUCK":
            raise _Refused(
                "database", f"{path} is not a DuckDB database file; give an Alliance database or a new path"
            )
        return path, True
    if path.is_symlink():
        raise _Refused("database", f"{path} is a broken symbolic link")
    parent = path.parent
    if not parent.exists():
        raise _Refused("database", f"folder {parent} does not exist; create it first, or give another path")
    if not parent.is_dir():
        raise _Refused("database", f"{parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise _Refused("database", f"cannot create a file in {parent} (permission denied)")
    return path, False


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=DUCKDB_CONFIG)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"\(PID (\d+)\)", text)
            holder = f"process {pid.group(1)}" if pid else "another program"
            raise _Refused(
                "database",
                f"{path} is in use by {holder}, which is writing to it; "
                "wait for it to finish (or stop it) and try again",
            ) from None
        raise _Refused(
            "database", f"{path} cannot be opened as a DuckDB database ({_first_line(exc)})"
        ) from None
    try:
        check_schema(con, path)
    except SchemaError as exc:
        con.close()
        raise _Refused("database", _plain(str(exc))) from None
    except duckdb.Error as exc:
        con.close()
        raise _Refused("database", f"{path} cannot be read ({_first_line(exc)})") from None
    return con


def _stored_instruments(con) -> list[Instrument]:
    """The instrument definitions a database holds, as registry entries (so an import keeps them)."""
    ins = con.execute(
        "SELECT code, name, construct, min_score, max_score, higher_is_better, n_items, item_min, item_max, "
        "source FROM instrument ORDER BY position, code"
    ).fetchall()
    items: dict[str, list] = {}
    for code, no, label, subscale in con.execute(
        "SELECT instrument, item_no, label, subscale FROM instrument_item ORDER BY instrument, item_no"
    ).fetchall():
        items.setdefault(code, []).append((no, label, subscale))
    fields = [f for f in Norm.__dataclass_fields__]
    norms: dict[str, list[Norm]] = {}
    for code, *values in con.execute(
        f"SELECT instrument, {', '.join(fields)} FROM instrument_norm "
        "ORDER BY instrument, population, norm_set"
    ).fetchall():
        norms.setdefault(code, []).append(Norm(**dict(zip(fields, values, strict=True))))
    out = []
    for code, name, construct, lo, hi, better, n_items, item_min, item_max, source in ins:
        its = items.get(code, [])
        subscales: dict[str, list[int]] = {}
        for no, _label, sub in its:
            if sub is not None:
                subscales.setdefault(sub, []).append(no)
        labels = [label for _no, label, _sub in its]
        out.append(
            Instrument(
                code=code,
                name=name,
                construct=construct,
                min_score=lo,
                max_score=hi,
                higher_is_better=bool(better),
                source=source,
                n_items=int(n_items),
                item_min=item_min,
                item_max=item_max,
                item_labels=tuple(labels) if len(labels) == n_items else (),
                subscales={k: tuple(v) for k, v in subscales.items()},
                norms=tuple(norms.get(code, ())),
            )
        )
    return out


def _signature(ins: Instrument) -> tuple:
    """An instrument's definition as the database stores it (its position in the registry aside)."""
    out = []
    for name, frame in Registry([ins]).frames().items():
        frame = frame.drop(columns=["position"], errors="ignore")
        rows = {
            tuple(None if (isinstance(v, float) and math.isnan(v)) else v for v in r)
            for r in frame.astype(object).itertuples(index=False, name=None)
        }
        out.append((name, frozenset(rows)))
    return tuple(out)


def _merge_registry(current: Registry, stored: list[Instrument]) -> tuple[Registry, list[str], list[str]]:
    """The registry to write: the given one, plus every instrument the database holds that it does not
    define (a user instrument imported earlier keeps its items and norms). Returns it with the codes whose
    definition the given registry changes and the codes it adds."""
    mine = {i.code.casefold() for i in current}
    merged = Registry([*current, *(i for i in stored if i.code.casefold() not in mine)])
    before = {i.code.casefold(): i for i in stored}
    changed = [
        i.code
        for i in current
        if i.code.casefold() in before and _signature(i) != _signature(before[i.code.casefold()])
    ]
    added = [i.code for i in current if i.code.casefold() not in before]
    return merged, changed, added


@dataclass
class _Stored:
    """What the database holds for the episodes, clinicians, teams and clients of the file."""

    #: episode id → (client, clinician, population, start date, end date, end reason)
    episodes: dict[str, tuple] = field(default_factory=dict)
    sessions: dict[tuple, dt.date] = field(default_factory=dict)
    ratings: dict[tuple, float] = field(default_factory=dict)
    items: dict[tuple, dict[int, float]] = field(default_factory=dict)
    clinicians: dict[str, str] = field(default_factory=dict)
    teams: dict[str, str | None] = field(default_factory=dict)
    clients: set[str] = field(default_factory=set)


def _load_stored(con, records: list[_Record]) -> _Stored:
    s = _Stored()
    lists = {
        "_import_episodes": {r.episode_id for r in records},
        "_import_clinicians": {r.clinician_id for r in records},
        "_import_teams": {r.team_id for r in records if r.team_id} | {DEFAULT_TEAM},
        "_import_clients": {r.client_id for r in records},
    }
    for name, ids in lists.items():
        con.register(name, pd.DataFrame({"id": sorted(ids)}, dtype=object))
    try:
        ep = "(SELECT id FROM _import_episodes)"
        for e, client, clin, pop, start, end, reason in con.execute(
            "SELECT episode_id, client_id, clinician_id, population, start_date, end_date, end_reason "
            f"FROM episode WHERE episode_id IN {ep}"
        ).fetchall():
            s.episodes[e] = (client, clin, pop, start, end, reason)
        for e, n, d in con.execute(
            f"SELECT episode_id, session_number, session_date FROM session WHERE episode_id IN {ep}"
        ).fetchall():
            s.sessions[(e, n)] = d
        for e, n, i, score in con.execute(
            f"SELECT episode_id, session_number, instrument, score FROM rating WHERE episode_id IN {ep}"
        ).fetchall():
            s.ratings[(e, n, i)] = score
        for e, n, i, no, score in con.execute(
            "SELECT episode_id, session_number, instrument, item_no, score FROM rating_item "
            f"WHERE episode_id IN {ep}"
        ).fetchall():
            s.items.setdefault((e, n, i), {})[no] = score
        s.clinicians = dict(
            con.execute(
                "SELECT clinician_id, team_id FROM clinician "
                "WHERE clinician_id IN (SELECT id FROM _import_clinicians)"
            ).fetchall()
        )
        s.teams = dict(
            con.execute(
                "SELECT team_id, supervisor_id FROM team WHERE team_id IN (SELECT id FROM _import_teams)"
            ).fetchall()
        )
        s.clients = {
            r[0]
            for r in con.execute(
                "SELECT client_id FROM client WHERE client_id IN (SELECT id FROM _import_clients)"
            ).fetchall()
        }
    finally:
        for name in lists:
            con.unregister(name)
    return s


# -- the plan: what the file changes --------------------------------------------------------------------
@dataclass
class _Plan:
    tables: dict[str, list[dict]] = field(default_factory=dict)  # "<table>_insert" / "<table>_update" → rows
    removed_items: list[tuple] = field(default_factory=list)  # ratings whose stored item scores go
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def add(self, name: str, row: dict) -> None:
        self.tables.setdefault(name, []).append(row)

    @property
    def empty(self) -> bool:
        return not self.tables and not self.removed_items


def _plan(records: list[_Record], stored: _Stored, has_end_column: bool) -> _Plan:
    plan = _Plan()

    def problem(r: _Record, column: str, text: str, value: str = "") -> None:
        plan.problems.append(RowProblem(r.row, column, text, value, r.line))

    # Episodes: who, and how they end.
    episodes: dict[str, dict] = {}
    for r in records:
        e = episodes.setdefault(r.episode_id, {"first": r, "population": None, "end": None})
        if r.population and e["population"] is None:
            e["population"] = (r.population, r)
        if r.end_date and e["end"] is None:
            e["end"] = (r.end_date, r.end_reason, r)
    for eid, e in episodes.items():
        old = stored.episodes.get(eid)
        r = e["first"]
        if old is None:
            continue
        if old[0] != r.client_id:
            problem(
                r, "client_id", f"episode {eid} is client {old[0]}'s in the database (one client per episode)"
            )
        if old[1] != r.clinician_id:
            problem(
                r,
                "clinician_id",
                f"episode {eid} is with clinician {old[1]} in the database (a transfer starts a new episode)",
            )
        if e["population"] and e["population"][0] != old[2]:
            problem(
                e["population"][1],
                "population",
                f"episode {eid} is {old[2]} in the database; "
                "an import does not change an episode's population",
            )

    # Sessions: the file's, merged over the stored ones, in order of their number.
    in_file: dict[tuple, tuple[dt.date, _Record]] = {}
    for r in records:
        in_file.setdefault((r.episode_id, r.session_number), (r.session_date, r))
    merged: dict[str, dict[int, tuple[dt.date, _Record | None]]] = {}
    for (eid, n), d in stored.sessions.items():
        if eid in episodes:
            merged.setdefault(eid, {})[n] = (d, None)
    for (eid, n), (d, r) in in_file.items():
        merged.setdefault(eid, {})[n] = (d, r)
    kept_ends = []
    for eid, sessions in merged.items():
        order = sorted(sessions.items())
        for (pn, (pd_, pr)), (n, (d, r)) in zip(order, order[1:], strict=False):
            if d >= pd_:
                continue
            if r is not None:
                where = f"row {pr.row}" if pr else "the database"
                problem(
                    r,
                    "session_date",
                    f"session {n} of episode {eid} is dated {d}, before session {pn} ({pd_}, {where})",
                    str(d),
                )
            elif pr is not None:
                problem(
                    pr,
                    "session_date",
                    f"session {pn} of episode {eid} is dated {pd_}, after session {n} ({d}, the database)",
                    str(pd_),
                )
        dates = [d for _, (d, _) in order]
        start = min(dates)
        last_n, (last, last_r) = max(order, key=lambda x: (x[1][0], x[0]))
        e, old = episodes[eid], stored.episodes.get(eid)
        if e["end"]:
            end, reason, end_r = e["end"]
        elif old and old[4]:
            end, reason, end_r = old[4], old[5], None
            if has_end_column:
                kept_ends.append(eid)
        else:
            end, reason, end_r = None, None, None
        if end is not None and end < last:
            if end_r is not None:
                if end < start:
                    text = f"{end} is before the first session of episode {eid} ({start})"
                else:
                    where = f"row {last_r.row}" if last_r else "the database"
                    text = f"{end} is before the last session of episode {eid} ({last}, {where})"
                problem(end_r, "end_date", text, str(end))
            elif last_r is not None:
                problem(
                    last_r,
                    "session_date",
                    f"session {last_n} ({last}) is after the end of episode {eid} in the database ({end}); "
                    "give the episode's new end_date",
                    str(last),
                )
        r = e["first"]
        if old is None:
            plan.add(
                "episode_insert",
                dict(
                    episode_id=eid,
                    client_id=r.client_id,
                    clinician_id=r.clinician_id,
                    population=e["population"][0] if e["population"] else "adult",
                    start_date=str(start),
                    end_date=str(end) if end else None,
                    end_reason=reason,
                ),
            )
        elif (start, end, reason) != (old[3], old[4], old[5]):
            plan.add(
                "episode_update",
                dict(
                    episode_id=eid,
                    start_date=str(start),
                    end_date=str(end) if end else None,
                    end_reason=reason,
                ),
            )
    if kept_ends:
        plan.notes.append(
            f"{len(kept_ends)} episode(s) keep the end recorded in the database, "
            "which the file does not give: " + ", ".join(kept_ends[:5]) + (" …" if len(kept_ends) > 5 else "")
        )

    for (eid, n), (d, _r) in in_file.items():
        old = stored.sessions.get((eid, n))
        row = dict(episode_id=eid, session_number=n, session_date=str(d))
        if old is None:
            plan.add("session_insert", row)
        elif old != d:
            plan.add("session_update", row)

    # Ratings and their item scores.
    ratings = {"inserted": 0, "updated": 0, "unchanged": 0}
    items = {"inserted": 0, "removed": 0}
    for r in records:
        k = (r.episode_id, r.session_number, r.instrument)
        old = stored.ratings.get(k)
        old_items = stored.items.get(k, {})
        new_items = old_items if r.items is None else r.items
        if old is not None and old == r.score and new_items == old_items:
            ratings["unchanged"] += 1
            continue
        row = dict(episode_id=k[0], session_number=k[1], instrument=k[2], score=r.score)
        if old is None:
            plan.add("rating_insert", row)
            ratings["inserted"] += 1
        else:
            plan.add("rating_update", row)
            ratings["updated"] += 1
            if r.items is None and old != r.score:
                new_items = {}  # item scores that described the old total no longer do
            if new_items != old_items and old_items:
                plan.removed_items.append(k)
                items["removed"] += len(old_items)
        if old is None or new_items != old_items:
            for no, v in sorted(new_items.items()):
                plan.add(
                    "rating_item_insert",
                    dict(episode_id=k[0], session_number=k[1], instrument=k[2], item_no=no, score=v),
                )
                items["inserted"] += 1

    # Clinicians, teams, clients: new ones inserted; a team's new supervisor applied and reported. A
    # clinician's team is refused: the database keeps one team per clinician, with no history, so moving a
    # clinician would move every past episode of theirs to the new team in the comparisons.
    team_of: dict[str, tuple[str, _Record]] = {}
    supervisor_of: dict[str, str] = {}
    for r in records:
        if r.team_id:
            team_of.setdefault(r.clinician_id, (r.team_id, r))
        if r.supervisor_id:
            supervisor_of.setdefault(r.team_id, r.supervisor_id)
    teams_needed = set(supervisor_of)
    for c in dict.fromkeys(r.clinician_id for r in records):
        team, r = team_of.get(c, (None, None))
        if c not in stored.clinicians:
            plan.add("clinician_insert", dict(clinician_id=c, team_id=team or DEFAULT_TEAM))
            teams_needed.add(team or DEFAULT_TEAM)
        elif team and team != stored.clinicians[c]:
            problem(
                r,
                "team_id",
                f"clinician {c} is in team {stored.clinicians[c]} in the database; an import does not move a "
                "clinician (all their past episodes would move too): give that team, or leave team_id empty",
                team,
            )
    for t in sorted(teams_needed):
        sup = supervisor_of.get(t)
        if t not in stored.teams:
            plan.add("team_insert", dict(team_id=t, name=t, supervisor_id=sup))
        elif sup and sup != stored.teams[t]:
            plan.add("team_update", dict(team_id=t, supervisor_id=sup))
            was = f"from {stored.teams[t]} " if stored.teams[t] else ""
            plan.notes.append(f"team {t}'s supervisor changes {was}to {sup}.")
    for c in dict.fromkeys(r.client_id for r in records):
        if c not in stored.clients:
            plan.add("client_insert", dict(client_id=c))

    def count(table: str, total: int) -> dict[str, int]:
        ins, upd = len(plan.tables.get(f"{table}_insert", [])), len(plan.tables.get(f"{table}_update", []))
        return {"inserted": ins, "updated": upd, "unchanged": total - ins - upd}

    plan.counts = {
        "ratings": ratings,
        "sessions": count("session", len(in_file)),
        "episodes": count("episode", len(episodes)),
        "item scores": items,
    }
    return plan


_WRITES = (
    ("team_insert", "INSERT INTO team SELECT team_id, name, supervisor_id FROM {f}"),
    (
        "team_update",
        "UPDATE team SET supervisor_id = f.supervisor_id FROM {f} f WHERE team.team_id = f.team_id",
    ),
    ("clinician_insert", "INSERT INTO clinician SELECT clinician_id, team_id FROM {f}"),
    ("client_insert", "INSERT INTO client SELECT client_id FROM {f}"),
    (
        "episode_insert",
        "INSERT INTO episode SELECT episode_id, client_id, clinician_id, population, "
        "CAST(start_date AS DATE), CAST(end_date AS DATE), end_reason FROM {f}",
    ),
    (
        "episode_update",
        "UPDATE episode SET start_date = CAST(f.start_date AS DATE), end_date = CAST(f.end_date AS DATE), "
        "end_reason = f.end_reason FROM {f} f WHERE episode.episode_id = f.episode_id",
    ),
    (
        "session_insert",
        "INSERT INTO session SELECT episode_id, CAST(session_number AS INTEGER), CAST(session_date AS DATE) "
        "FROM {f}",
    ),
    (
        "session_update",
        "UPDATE session SET session_date = CAST(f.session_date AS DATE) FROM {f} f "
        "WHERE session.episode_id = f.episode_id AND session.session_number = f.session_number",
    ),
    ("removed_items", None),
    (
        "rating_insert",
        "INSERT INTO rating SELECT episode_id, CAST(session_number AS INTEGER), instrument, score FROM {f}",
    ),
    (
        "rating_update",
        "UPDATE rating SET score = f.score FROM {f} f WHERE rating.episode_id = f.episode_id "
        "AND rating.session_number = f.session_number AND rating.instrument = f.instrument",
    ),
    (
        "rating_item_insert",
        "INSERT INTO rating_item SELECT episode_id, CAST(session_number AS INTEGER), instrument, "
        "CAST(item_no AS INTEGER), score FROM {f}",
    ),
)


def _apply(con, plan: _Plan, registry: Registry | None) -> None:
    """Write the plan (and the registry, when given) into a private file — a copy of the database or a new
    one, which replaces the target only when complete (and is removed when anything fails). No transaction is
    needed for that, and a million ratings are written in about half the time without one (DuckDB then need
    not check each key against the transaction's own uncommitted rows)."""
    if registry is not None:
        write_registry(con, registry)
    for name, sql in _WRITES:
        if name == "removed_items":
            if plan.removed_items:
                frame = pd.DataFrame(
                    plan.removed_items, columns=["episode_id", "session_number", "instrument"]
                )
                con.register("_import_frame", frame)
                try:
                    con.execute(
                        "DELETE FROM rating_item USING _import_frame f WHERE rating_item.episode_id = "
                        "f.episode_id AND rating_item.session_number = f.session_number "
                        "AND rating_item.instrument = f.instrument"
                    )
                finally:
                    con.unregister("_import_frame")
            continue
        rows = plan.tables.get(name)
        if not rows:
            continue
        con.register("_import_frame", pd.DataFrame(rows))
        try:
            con.execute(sql.format(f="_import_frame"))
        finally:
            con.unregister("_import_frame")


# -- new database files: built beside the target, renamed into place when complete ------------------------
def _put_in_place(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise _Refused("database", f"{path} appeared while importing; it was left as it is") from None
    except OSError:
        if path.exists():
            raise _Refused("database", f"{path} appeared while importing; it was left as it is") from None
        os.replace(tmp, path)
    else:
        tmp.unlink()
    fsync_folder(path.parent)


# -- the rejects file -----------------------------------------------------------------------------------
def write_rejects(report: ImportReport, path: Path | str) -> Path:
    """Every refused row as CSV — row, line, column, value, reason — with formula-looking cells made inert,
    for a data manager to fix the export in a spreadsheet (UTF-8 with a BOM so Excel reads it as such)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["row", "line", "column", "value", "reason"])
        for p in report.problems:
            w.writerow(
                [
                    p.row or "",
                    p.line or "",
                    csv_cell(_plain(p.column)),
                    csv_cell(_plain(p.value)),
                    csv_cell(_plain(p.problem)),
                ]
            )
    return path


def _check_rejects_path(rejects: Path | str, *others: Path | str) -> Path:
    path = Path(rejects)
    if path.is_dir():
        raise _Refused("rejects", f"--rejects {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise _Refused("rejects", f"--rejects: folder {path.parent} does not exist")
    for other in others:
        if Path(other).exists() and path.exists() and path.resolve() == Path(other).resolve():
            raise _Refused("rejects", f"--rejects {path} would overwrite the input or the database")
    return path


# -- the import -----------------------------------------------------------------------------------------
class _Progress:
    """A progress bar on stderr through the import's stages (reading, checking, writing, the metrics)."""

    def __init__(self, enabled: bool, with_store: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=7 if with_store else 6,
                file=sys.stderr,
                bar_format="alliance import: {desc:<36} {bar:30} {n_fmt}/{total_fmt} [{elapsed}]",
                leave=False,
            )

    def stage(self, words: str) -> None:
        if self.bar is not None:
            if self.bar.desc:
                self.bar.update(1)
            self.bar.set_description_str(words)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def import_csv(
    path: Path | str,
    db: Path | str,
    registry: Registry | None = None,
    *,
    dry_run: bool = False,
    rejects: Path | str | None = None,
    today: dt.date | None = None,
    refresh_store: bool = True,
    mapping: Path | str | None = None,
    progress: bool | None = None,
) -> ImportReport:
    """Check ``path`` (CSV, Excel .xlsx or Parquet; long or wide) and, if every row is valid, merge it into
    the database ``db`` (created if missing). ``dry_run`` reports the same without writing; ``rejects`` names
    a CSV that receives every problem; ``mapping`` a TOML file naming the file's columns, instrument columns
    and date format (``alliance.import_formats``). Problems are returned in the report, never raised; only
    an unforeseen failure raises. ``progress`` shows a progress bar on stderr (default: when it is a
    terminal)."""
    report = ImportReport(Path(str(path)), Path(str(db)), dry_run)
    bar = _Progress(sys.stderr.isatty() if progress is None else progress, refresh_store and not dry_run)
    today = today or dt.date.today()
    con = None
    held = ExitStack()  # the writer lock, from before the database is read until the new file is in place
    try:
        try:
            if rejects is not None:
                report.rejects = _check_rejects_path(rejects, path, db)
            source = _check_input_path(path)
            shape = Mapping()
            if mapping is not None:
                try:
                    shape = load_mapping(mapping, {*REQUIRED, *OPTIONAL})
                except FormatError as exc:
                    raise _Refused("mapping", str(exc)) from None
            target, exists = _check_db_path(db)
            report.path, report.db = source, target
            registry = registry or load_registry()
            changed_codes: list[str] = []
            added_codes: list[str] = []
            if exists:
                if not dry_run:  # a new file needs none: it is linked into place only if none appeared
                    try:
                        held.enter_context(writer_lock(target))
                    except DatabaseError as exc:
                        raise _Refused("database", str(exc)) from None
                con = _connect(target, read_only=True)
                registry, changed_codes, added_codes = _merge_registry(registry, _stored_instruments(con))
            bar.stage("reading")
            table = _read_input(source, shape, report.notes)
        except _Refused as refused:
            report.problems = [refused.problem]
            return report
        report.problems += table.problems
        source_rows = len(table.rows)
        shape_problems = _reshape(table, registry, shape, report.notes)
        report.problems += shape_problems
        if any(p.row <= 1 for p in shape_problems):
            return report
        columns, header_problems = _map_columns(table, report.notes)
        report.problems += header_problems
        if header_problems:
            return report
        report.rows = source_rows + len(table.problems)  # a row the CSV reader stopped at counts
        if not source_rows and not table.problems:
            report.problems.append(RowProblem(1, "file", "has a header but no rows", "", 1))
            return report
        if not table.rows and not shape_problems and not table.problems:
            report.problems.append(
                RowProblem(1, "file", "has no ratings: every instrument cell is empty", "", 1)
            )
            return report
        bar.stage(f"checking {len(table.rows):,} rows")
        records, row_problems = _check_rows(table, columns, registry, today, report.notes, shape.date_format)
        report.problems += row_problems
        bar.stage("checking the rows agree")
        conflicts = _check_agreement(records)
        report.problems += conflicts
        clean = [r for r in records if r.row not in {p.row for p in conflicts}]
        bar.stage("comparing with the database")
        stored = _load_stored(con, clean) if con is not None else _Stored()
        plan = _plan(clean, stored, "end_date" in columns)
        report.problems += plan.problems
        if con is not None:
            report.problems += _range_problems(con, registry, changed_codes)
        # A wide file's row gives several ratings: a problem of the row's own cells is said once.
        report.problems = list(dict.fromkeys(report.problems))
        report.problems.sort(key=lambda p: (p.row, p.line or 0))
        if report.problems:
            return report
        report.counts = plan.counts
        if changed_codes:
            plan.notes.append(
                f"instrument definition(s) updated from the registry: {', '.join(changed_codes)}."
            )
        if added_codes and exists:
            plan.notes.append(f"instrument(s) added to the database: {', '.join(added_codes)}.")
        report.notes += plan.notes
        if dry_run or (exists and plan.empty and not changed_codes and not added_codes):
            return report
        try:
            bar.stage("writing")
            if exists:
                con.close()
                con = None
                # Into a copy beside the file, swapped in whole: a running dashboard keeps its file meanwhile.
                with rewrite(target) as copy:
                    _apply(copy, plan, registry if (changed_codes or added_codes) else None)
                    _refresh(report, copy, target, refresh_store, bar)
                report.written = True
            else:
                _create(report, target, plan, registry, refresh_store, bar)
        except _Refused as refused:
            report.problems = [refused.problem]
        return report
    finally:
        bar.close()
        if con is not None:
            con.close()
        held.close()
        if report.rejects is not None:
            try:
                write_rejects(report, report.rejects)
            except OSError as exc:
                report.rejects_problem = f"cannot write {report.rejects} ({exc.strerror or exc})"


#: The same function: it reads Excel workbooks and Parquet as well as CSV.
import_file = import_csv


def _range_problems(con, registry: Registry, codes: list[str]) -> list[RowProblem]:
    """A registry that narrows an instrument's range must not strand ratings already stored outside it."""
    out = []
    for code in codes:
        ins = registry.get(code)
        n = con.execute(
            "SELECT count(*) FROM rating WHERE instrument = $c AND (score < $lo OR score > $hi)",
            {"c": ins.code, "lo": ins.min_score, "hi": ins.max_score},
        ).fetchone()[0]
        if n:
            out.append(
                RowProblem(
                    0,
                    "registry",
                    f"the registry gives {ins.code} the range {ins.min_score:g}–{ins.max_score:g}, which {n} "
                    "rating(s) already in the database fall outside",
                )
            )
    return out


def _refresh(
    report: ImportReport, con, target: Path, refresh_store: bool, bar: _Progress | None = None
) -> None:
    if not refresh_store:
        return
    if bar is not None:
        bar.stage("refreshing the stored metrics")
    try:
        write_store(con, target)
        report.store_refreshed = True
    except Exception as exc:  # the ratings are in; a stale store is detected and never read
        report.store_problem = f"{type(exc).__name__}: {_first_line(exc)}"


def _create(
    report: ImportReport,
    target: Path,
    plan: _Plan,
    registry: Registry,
    refresh_store: bool,
    bar: _Progress | None = None,
) -> None:
    """Build a new database under a temporary name beside ``target``; rename it into place when complete."""
    remove_stale_temporaries(target)
    tmp = temporary_path(target, "importing")
    con = None
    try:
        con = connect_writer(tmp)
        con.execute("SET enable_progress_bar = false")  # the command shows its own progress
        create_schema(con, registry)
        _apply(con, plan, None)
        _refresh(report, con, target, refresh_store, bar)
        con.close()
        con = None
        _put_in_place(tmp, target)
        report.written = True
    finally:
        if con is not None:
            con.close()
        for p in (tmp, Path(f"{tmp}.wal")):
            p.unlink(missing_ok=True)
