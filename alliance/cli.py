"""The ``alliance`` command: build the demo database, import ratings, refresh the stored metrics, export
the clinical metrics, write a meeting pack, write a validation report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from alliance import config


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _registry(paths: list[Path] | None):
    from alliance.registry import RegistryError, load_registry

    try:
        return load_registry([config.DEFAULT_REGISTRY, *(paths or [])] if paths else None)
    except RegistryError as exc:
        raise SystemExit(f"alliance: {exc}") from None


def cmd_demo(args) -> int:
    from alliance.demo import write_demo

    try:
        counts = write_demo(
            Path(args.out),
            n_episodes=args.episodes,
            seed=args.seed,
            as_of=args.as_of,
            force=args.force,
        )
    except FileExistsError as exc:
        print(f"alliance demo: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    return 0


def cmd_import(args) -> int:
    """Every outcome is one or more one-line messages, never a traceback: 0 imported or nothing to change,
    1 the file has problems (nothing written), 2 the database or the registry cannot be used."""
    from alliance.importer import import_csv
    from alliance.registry import RegistryError, load_registry

    def say(line: str, stream) -> None:
        text = f"alliance import: {line}"
        encoding = getattr(stream, "encoding", None) or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream)

    try:
        try:
            paths = args.instruments
            registry = load_registry([config.DEFAULT_REGISTRY, *paths] if paths else None)
        except RegistryError as exc:
            say(str(exc), sys.stderr)
            return 2
        report = import_csv(args.file, args.db, registry=registry, dry_run=args.dry_run, rejects=args.rejects)
    except KeyboardInterrupt:
        say("interrupted; the database holds either all of this import or none of it", sys.stderr)
        return 130
    except Exception as exc:  # the command's edge: whatever was not foreseen still gets one line
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        say(f"{args.file} → {args.db}: failed ({type(exc).__name__}: {detail})", sys.stderr)
        return 2
    stream = sys.stdout if report.ok else sys.stderr
    for line in report.lines():
        say(line, stream)
    return report.exit_code


def cmd_metrics(args) -> int:
    from alliance.db import DatabaseError
    from alliance.export import write_metrics

    try:
        written = write_metrics(Path(args.db), Path(args.out), as_of=args.as_of)
    except DatabaseError as exc:
        print(f"alliance metrics: {exc}", file=sys.stderr)
        return 2
    for name, n in written.items():
        print(f"{Path(args.out) / name}: {n:,} rows")
    return 0


def cmd_refresh(args) -> int:
    from alliance.clinical import MetricSettings
    from alliance.db import DatabaseError
    from alliance.store import refresh

    try:
        stamp = refresh(Path(args.db), MetricSettings(as_of=args.as_of))
    except DatabaseError as exc:
        print(f"alliance refresh: {exc}", file=sys.stderr)
        return 2
    print(
        f"Stored metrics of {args.db} refreshed in {stamp.seconds:.1f} s: data version {stamp.data_version}, "
        f"as of {stamp.as_of:%d %b %Y}."
    )
    return 0


def cmd_pack(args) -> int:
    from alliance.agenda import supervisors
    from alliance.db import DatabaseError
    from alliance.pack import build_pack, print_pdf
    from alliance.service import Service

    try:
        service = Service.open(args.db)
        known = supervisors(service)
        if args.supervisor not in known:
            print(
                f"alliance pack: no team has supervisor {args.supervisor!r} ({', '.join(known)})",
                file=sys.stderr,
            )
            return 2
        agenda = build_pack(service, args.supervisor, args.date, Path(args.out))
    except DatabaseError as exc:
        print(f"alliance pack: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}: {len(agenda)} agenda client(s)")
    if args.pdf:
        try:
            pdf = print_pdf(Path(args.out), Path(args.out).with_suffix(".pdf"))
        except RuntimeError as exc:
            print(f"alliance pack: no PDF: {exc}", file=sys.stderr)
            return 1
        print(f"Wrote {pdf}")
    return 0


def cmd_validate(args) -> int:
    from alliance.db import DatabaseError
    from alliance.validate import validate, write_report

    try:
        report = validate(Path(args.db), as_of=args.as_of)
    except DatabaseError as exc:
        print(f"alliance validate: {exc}", file=sys.stderr)
        return 2
    html_path, folder = write_report(report, Path(args.out))
    print(f"Wrote {html_path} and the same figures as CSV in {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alliance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate a realistic demo database with planted events")
    demo.add_argument("--episodes", type=int, default=1500, help="number of episodes (default 1500)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--out", default=str(config.DEFAULT_DB), help="database file to write")
    demo.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="the demo's 'today' (default: today); dates are offsets from it",
    )
    demo.add_argument("--force", action="store_true", help="overwrite an existing file")
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser(
        "import",
        help="import ratings in long format, CSV or Parquet (see README: Importing ratings)",
        description="Check every row, then merge the file into the database: new ratings inserted, changed "
        "ones updated, unchanged ones left; any problem and nothing is written.",
    )
    imp.add_argument("file", help="CSV (any delimiter, UTF-8, optional sep= line) or Parquet file")
    imp.add_argument("--db", required=True, help="database file (created if missing)")
    imp.add_argument(
        "--instruments",
        type=Path,
        action="append",
        help="extra instrument registry file (TOML); may be repeated",
    )
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="check the file and report what would be inserted, updated and unchanged; write nothing",
    )
    imp.add_argument(
        "--rejects",
        metavar="PATH",
        help="write every problem (row, line, column, value, reason) to this CSV, to fix the export",
    )
    imp.set_defaults(func=cmd_import)

    met = sub.add_parser("metrics", help="write the clinical metrics as CSV (see docs/metrics.md)")
    met.add_argument("--db", required=True, help="database file")
    met.add_argument("--out", required=True, help="directory for the CSV files (created if missing)")
    met.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="the date the data describe (default: the database's, else today)",
    )
    met.set_defaults(func=cmd_metrics)

    ref = sub.add_parser("refresh", help="recompute the stored clinical metrics of a database")
    ref.add_argument("--db", required=True, help="database file")
    ref.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="the date the data describe (default: the database's, else today)",
    )
    ref.set_defaults(func=cmd_refresh)

    pack = sub.add_parser("pack", help="write a supervision meeting pack (self-contained HTML, optional PDF)")
    pack.add_argument("--supervisor", required=True, help="supervisor code (team.supervisor_id)")
    pack.add_argument("--date", type=_date, default=dt.date.today(), help="meeting date (default: today)")
    pack.add_argument("--out", required=True, help="HTML file to write")
    pack.add_argument("--db", default=None, help="database file (default: $ALLIANCE_DB or the demo)")
    pack.add_argument("--pdf", action="store_true", help="also print a PDF beside it with headless Chromium")
    pack.set_defaults(func=cmd_pack)

    val = sub.add_parser(
        "validate", help="write a validation report (self-contained HTML, the figures as CSV beside it)"
    )
    val.add_argument("--db", required=True, help="database file")
    val.add_argument("--out", default="validation.html", help="HTML file to write (default validation.html)")
    val.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="the date the data describe (default: the database's, else today)",
    )
    val.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
