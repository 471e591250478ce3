"""Import a long CSV of ratings into an Alliance database.

Columns: ``client_id, clinician_id, session_date, session_number, instrument, score`` (required), and
optionally ``episode_id, team_id, supervisor_id, population, end_date, end_reason`` and item columns
``item_1 … item_N``. One row is one instrument's total at one session. A session number is the position in
the episode: a session without a rating is a gap. Without ``episode_id`` each client's rows form one episode.

Every row is checked first; if any row fails, the problems are reported with their row numbers (as a
spreadsheet shows them: the header is row 1) and nothing is written. Valid files are written in one
transaction, so a failure part-way leaves the database as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from alliance.registry import POPULATIONS, Registry, load_registry
from alliance.schema import check_schema, create_schema, write_registry
from alliance.store import write_store

REQUIRED = ("client_id", "clinician_id", "session_date", "session_number", "instrument", "score")
OPTIONAL = ("episode_id", "team_id", "supervisor_id", "population", "end_date", "end_reason")
END_REASONS = ("planned", "dropout", "transferred", "other")
ITEM_COLUMN = re.compile(r"^item_?(\d+)$", re.IGNORECASE)
DEFAULT_TEAM = "unassigned"
#: Item scores must add up to the total within this tolerance (one-decimal visual-analogue items).
ITEM_SUM_TOLERANCE = 0.05


@dataclass(frozen=True)
class RowProblem:
    """One problem with one row of the input."""

    row: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column}: {self.problem}"


@dataclass
class ImportReport:
    """What an import wrote, or why it wrote nothing."""

    path: Path
    problems: list[RowProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: Why the stored metrics could not be brought up to date (the ratings were written all the same; pages
    #: compute the metrics until `alliance refresh` succeeds).
    store_problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 50) -> str:
        if self.ok:
            parts = ", ".join(f"{n} {t}" for t, n in self.counts.items())
            done = f"Imported {self.path}: {parts}."
            if self.store_problem:
                done += (
                    f"\nThe stored metrics were not refreshed ({self.store_problem}); run `alliance refresh`."
                )
            else:
                done += " Stored metrics refreshed."
            return done
        lines = [f"{self.path}: {len(self.problems)} problem(s); nothing was written."]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  … and {len(self.problems) - limit} more")
        return "\n".join(lines)


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype("string").str.strip() == "")


def read_ratings(path: Path, registry: Registry) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Read and check a CSV; returns the cleaned rows and every problem found (row numbers 2…)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        return pd.DataFrame(), [RowProblem(0, "file", f"{path} not found")]
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        return pd.DataFrame(), [RowProblem(0, "file", f"cannot be read as CSV ({exc})")]
    raw.columns = [c.strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        return pd.DataFrame(), [RowProblem(1, "header", f"missing required column(s) {', '.join(missing)}")]
    if raw.empty:
        return pd.DataFrame(), [RowProblem(1, "file", "has a header but no rows")]

    problems: list[RowProblem] = []
    rowno = pd.Series(np.arange(len(raw)) + 2, index=raw.index)
    bad = pd.Series(False, index=raw.index)

    def flag(mask: pd.Series, column: str, message) -> None:
        nonlocal bad
        mask = mask & ~bad  # one problem per row is enough to act on
        for i in np.flatnonzero(mask.to_numpy()):
            text = message(raw.iloc[i]) if callable(message) else message
            problems.append(RowProblem(int(rowno.iloc[i]), column, text))
        bad = bad | mask

    for col in REQUIRED:
        flag(_blank(raw[col]), col, "missing value")
    for col in ("client_id", "clinician_id", "episode_id", "team_id", "supervisor_id"):
        if col in raw.columns:
            raw[col] = raw[col].str.strip()

    canon = raw["instrument"].map(registry.canonical)
    known = ", ".join(sorted(i.code for i in registry))
    flag(
        canon.isna(),
        "instrument",
        lambda r: f"unknown instrument {r['instrument']!r} (known: {known})",
    )
    raw["instrument"] = canon

    score = pd.to_numeric(raw["score"], errors="coerce")
    flag(score.isna(), "score", lambda r: f"{r['score']!r} is not a number")
    lo = raw["instrument"].map(lambda c: registry.get(c).min_score if isinstance(c, str) else np.nan)
    hi = raw["instrument"].map(lambda c: registry.get(c).max_score if isinstance(c, str) else np.nan)
    flag(
        (score < lo) | (score > hi),
        "score",
        lambda r: (
            f"{r['score']} is outside {r['instrument']}'s range "
            f"{registry.get(r['instrument']).min_score:g}–{registry.get(r['instrument']).max_score:g}"
        ),
    )

    number = pd.to_numeric(raw["session_number"], errors="coerce")
    flag(
        number.isna() | (number < 1) | (number != np.floor(number)),
        "session_number",
        lambda r: f"{r['session_number']!r} is not a session position (1, 2, 3, …)",
    )

    date = pd.to_datetime(raw["session_date"], errors="coerce", format="%Y-%m-%d")
    flag(date.isna(), "session_date", lambda r: f"{r['session_date']!r} is not a date (YYYY-MM-DD)")

    population = (
        raw["population"].str.strip().str.lower().replace("", "adult")
        if "population" in raw.columns
        else pd.Series("adult", index=raw.index)
    )
    flag(
        ~population.isin(POPULATIONS),
        "population",
        lambda r: f"{r['population']!r} is not one of {', '.join(POPULATIONS)}",
    )
    raw["population"] = population

    end_date = (
        pd.to_datetime(raw["end_date"].replace("", None), errors="coerce", format="%Y-%m-%d")
        if "end_date" in raw.columns
        else pd.Series(pd.NaT, index=raw.index)
    )
    if "end_date" in raw.columns:
        flag(
            end_date.isna() & ~_blank(raw["end_date"]),
            "end_date",
            lambda r: f"{r['end_date']!r} is not a date (YYYY-MM-DD)",
        )
    end_reason = (
        raw["end_reason"].str.strip().str.lower().replace("", None)
        if "end_reason" in raw.columns
        else pd.Series(None, index=raw.index, dtype=object)
    )
    flag(
        end_reason.notna() & ~end_reason.isin(END_REASONS),
        "end_reason",
        lambda r: f"{r['end_reason']!r} is not one of {', '.join(END_REASONS)}",
    )
    flag(end_reason.notna() & end_date.isna(), "end_reason", "an end reason needs an end_date")

    # Item columns: within the item range, no more items than the instrument has, summing to the total.
    items = {int(m.group(1)): c for c in raw.columns if (m := ITEM_COLUMN.match(c))}
    item_values = {}
    for no, col in sorted(items.items()):
        v = pd.to_numeric(raw[col].replace("", None), errors="coerce")
        flag(v.isna() & ~_blank(raw[col]), col, lambda r, col=col: f"{r[col]!r} is not a number")
        n_items = raw["instrument"].map(lambda c: registry.get(c).n_items if isinstance(c, str) else 0)
        flag(v.notna() & (n_items < no), col, lambda r, no=no: f"{r['instrument']} has no item {no}")
        imin = raw["instrument"].map(lambda c: registry.get(c).item_min if isinstance(c, str) else None)
        imax = raw["instrument"].map(lambda c: registry.get(c).item_max if isinstance(c, str) else None)
        flag(
            v.notna() & ((v < imin.astype(float)) | (v > imax.astype(float))),
            col,
            lambda r, col=col: f"item score {r[col]} is outside the item range of {r['instrument']}",
        )
        item_values[no] = v
    if item_values:
        item_frame = pd.DataFrame(item_values)
        n_given = item_frame.notna().sum(axis=1)
        n_items = raw["instrument"].map(lambda c: registry.get(c).n_items if isinstance(c, str) else 0)
        complete = (n_given == n_items) & (n_given > 0)
        flag(
            complete & ((item_frame.sum(axis=1) - score).abs() > ITEM_SUM_TOLERANCE),
            "score",
            lambda r: f"total {r['score']} is not the sum of its item scores",
        )

    if "episode_id" not in raw.columns or _blank(raw["episode_id"]).all():
        # Each client's rows form one episode.
        raw["episode_id"] = raw["client_id"] + "-1"
    else:
        flag(
            _blank(raw["episode_id"]),
            "episode_id",
            "missing value (give every row an episode_id or none)",
        )

    frame = pd.DataFrame(
        {
            "row": rowno,
            "client_id": raw["client_id"],
            "clinician_id": raw["clinician_id"],
            "episode_id": raw["episode_id"],
            "population": raw["population"],
            "team_id": raw["team_id"].replace("", DEFAULT_TEAM) if "team_id" in raw.columns else DEFAULT_TEAM,
            "supervisor_id": raw["supervisor_id"].replace("", None)
            if "supervisor_id" in raw.columns
            else None,
            "session_number": number,
            "session_date": date.dt.date,
            "instrument": raw["instrument"],
            "score": score,
            "end_date": end_date.dt.date,
            "end_reason": end_reason,
        }
    )
    for no, v in item_values.items():
        frame[f"item_{no}"] = v
    frame = frame[~bad]
    problems += _consistency_problems(frame)
    problems.sort(key=lambda p: p.row)
    return frame, problems


def _consistency_problems(frame: pd.DataFrame) -> list[RowProblem]:
    """Rows that contradict each other: duplicates, one session on two dates, one episode two clients."""
    problems = []
    dup = frame.duplicated(["episode_id", "session_number", "instrument"], keep="first")
    for r in frame[dup].itertuples():
        problems.append(
            RowProblem(
                r.row,
                "session_number",
                f"second {r.instrument} rating for episode {r.episode_id} session {int(r.session_number)}",
            )
        )
    for key, cols, what in (
        (["episode_id", "session_number"], "session_date", "session date"),
        (["episode_id"], "client_id", "client"),
        (["episode_id"], "clinician_id", "clinician"),
        (["episode_id"], "population", "population"),
        (["clinician_id"], "team_id", "team"),
    ):
        first = frame.groupby(key, sort=False)[cols].transform("first")
        for r in frame[frame[cols] != first].itertuples():
            problems.append(
                RowProblem(
                    r.row,
                    cols,
                    f"{what} differs from an earlier row of the same "
                    f"{' and '.join(k.replace('_id', '') for k in key)}",
                )
            )
    order = frame.sort_values(["episode_id", "session_number"])
    sess = order.drop_duplicates(["episode_id", "session_number"])
    prev = sess.groupby("episode_id")["session_date"].shift()
    for r in sess[prev.notna() & (pd.to_datetime(sess["session_date"]) < pd.to_datetime(prev))].itertuples():
        problems.append(
            RowProblem(
                r.row,
                "session_date",
                f"session {int(r.session_number)} of episode {r.episode_id} is dated "
                "before an earlier session",
            )
        )
    return problems


def import_csv(path: Path | str, db: Path | str, registry: Registry | None = None) -> ImportReport:
    """Check ``path`` and, if every row is valid, add it to the database ``db`` (created if missing)."""
    path, db = Path(path), Path(db)
    registry = registry or load_registry()
    report = ImportReport(path)
    frame, report.problems = read_ratings(path, registry)
    if report.problems:
        return report

    new_file = not db.exists()
    con = duckdb.connect(str(db))
    try:
        if new_file:
            create_schema(con, registry)
        else:
            check_schema(con, db)
        clash = con.execute(
            "SELECT episode_id FROM episode WHERE list_contains($ids, episode_id) LIMIT 5",
            {"ids": frame["episode_id"].unique().tolist()},
        ).fetchall()
        if clash:
            ids = [c[0] for c in clash]
            rows = frame.loc[frame["episode_id"].isin(ids)].groupby("episode_id")["row"].min()
            report.problems = [
                RowProblem(
                    int(rows[i]),
                    "episode_id",
                    f"episode {i} is already in {db}; nothing was written",
                )
                for i in ids
            ]
            return report
        report.counts = _write(con, frame, registry, new_file)
    except Exception:
        con.close()
        if new_file:
            db.unlink(missing_ok=True)  # never leave a half-made database behind
        raise
    try:
        write_store(con, db)
    except Exception as exc:  # the ratings are in; a stale store is detected and never read
        report.store_problem = f"{type(exc).__name__}: {exc}"
    finally:
        con.close()
    return report


def _write(con, frame: pd.DataFrame, registry: Registry, new_file: bool) -> dict[str, int]:
    teams = frame.groupby("team_id", as_index=False).agg(supervisor_id=("supervisor_id", "first"))
    teams["name"] = teams["team_id"]
    clinicians = frame.drop_duplicates("clinician_id")[["clinician_id", "team_id"]]  # noqa: F841 — read by SQL
    clients = frame.drop_duplicates("client_id")[["client_id"]]  # noqa: F841 — read by SQL
    episodes = frame.groupby("episode_id", as_index=False).agg(
        client_id=("client_id", "first"),
        clinician_id=("clinician_id", "first"),
        population=("population", "first"),
        start_date=("session_date", "min"),
        end_date=("end_date", "max"),
        end_reason=("end_reason", "first"),
    )
    sessions = frame.drop_duplicates(["episode_id", "session_number"])[
        ["episode_id", "session_number", "session_date"]
    ].astype({"session_number": "int64"})
    ratings = frame[["episode_id", "session_number", "instrument", "score"]].astype(
        {"session_number": "int64"}
    )
    item_cols = [c for c in frame.columns if c.startswith("item_")]
    items = (
        frame.melt(
            id_vars=["episode_id", "session_number", "instrument"],
            value_vars=item_cols,
            var_name="item",
            value_name="item_score",
        )
        .dropna(subset=["item_score"])
        .rename(columns={"item_score": "score"})
        if item_cols
        else pd.DataFrame(columns=["episode_id", "session_number", "instrument", "item", "score"])
    )
    items["item_no"] = items["item"].str.removeprefix("item_").astype("int64")
    items = items.astype({"session_number": "int64"})[
        ["episode_id", "session_number", "instrument", "item_no", "score"]
    ]

    con.execute("BEGIN TRANSACTION")
    try:
        if not new_file:
            write_registry(con, registry)
        # Teams, clinicians and clients may already exist from an earlier import: add only new ones.
        con.execute(
            "INSERT INTO team SELECT team_id, name, supervisor_id FROM teams "
            "WHERE team_id NOT IN (SELECT team_id FROM team)"
        )
        con.execute(
            "INSERT INTO clinician SELECT clinician_id, team_id FROM clinicians "
            "WHERE clinician_id NOT IN (SELECT clinician_id FROM clinician)"
        )
        con.execute(
            "INSERT INTO client SELECT client_id FROM clients "
            "WHERE client_id NOT IN (SELECT client_id FROM client)"
        )
        con.execute(
            "INSERT INTO episode SELECT episode_id, client_id, clinician_id, population, "
            "start_date, end_date, end_reason FROM episodes"
        )
        con.execute("INSERT INTO session SELECT episode_id, session_number, session_date FROM sessions")
        con.execute("INSERT INTO rating SELECT episode_id, session_number, instrument, score FROM ratings")
        con.execute(
            "INSERT INTO rating_item SELECT episode_id, session_number, instrument, item_no, score FROM items"
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {
        "episodes": len(episodes),
        "sessions": len(sessions),
        "ratings": len(ratings),
        "item scores": len(items),
    }
