"""The ``alliance`` command: build the demo database, import ratings, refresh the stored metrics, export
the clinical metrics, write a meeting pack, write a validation report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from alliance import audit, config


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

    refused = audit.command_check(args.db)  # the trail must be writable before the database changes
    if refused:
        say(refused, sys.stderr)
        return 2
    try:
        try:
            paths = args.instruments
            registry = load_registry([config.DEFAULT_REGISTRY, *paths] if paths else None)
        except RegistryError as exc:
            say(str(exc), sys.stderr)
            return 2
        report = import_csv(
            args.file,
            args.db,
            registry=registry,
            dry_run=args.dry_run,
            rejects=args.rejects,
            mapping=args.mapping,
            progress=True if args.progress else None,
        )
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
    if report.exit_code == 0:  # imported, nothing to change, or a dry run: one audit record
        digest = audit.file_digest(args.file)
        detail = f"{Path(args.file).name} (sha256 {digest or 'unreadable'}): {report.lines()[0]}"
        if problem := audit.command_record("import", args.db, detail):
            say(problem, sys.stderr)
            return 2
    return report.exit_code


def cmd_metrics(args) -> int:
    from alliance.db import DatabaseError
    from alliance.export import write_metrics

    try:
        if Path(args.db).is_file():  # recorded before any data are written (a missing file is reported below)
            audit.record("export_csv", db=args.db, detail=f"alliance metrics → {args.out}")
        written = write_metrics(Path(args.db), Path(args.out), as_of=args.as_of)
    except audit.AuditError as exc:
        print(f"alliance metrics: refused: {exc}", file=sys.stderr)
        return 2
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

    if refused := audit.command_check(args.db):
        print(f"alliance refresh: {refused}", file=sys.stderr)
        return 2
    settings = MetricSettings(as_of=args.as_of)
    if args.if_stale:
        from alliance.db import Database
        from alliance.store import is_current

        try:
            db = Database(args.db)
            try:
                current = is_current(db, settings)
            finally:
                db.close()
        except DatabaseError as exc:
            print(f"alliance refresh: {exc}", file=sys.stderr)
            return 2
        if current:
            print(f"Stored metrics of {args.db} are current: nothing to do.")
            return 0
    try:
        stamp = refresh(Path(args.db), settings)
    except DatabaseError as exc:
        print(f"alliance refresh: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the copy beside the file could not be written (disk full, permissions)
        print(f"alliance refresh: {args.db} was left as it was: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(
        f"Stored metrics of {args.db} refreshed in {stamp.seconds:.1f} s: data version {stamp.data_version}, "
        f"as of {stamp.as_of:%d %b %Y}."
    )
    detail = f"stored metrics refreshed: data version {stamp.data_version}, as of {stamp.as_of:%Y-%m-%d}"
    if problem := audit.command_record("refresh", args.db, detail):
        print(f"alliance refresh: {problem}", file=sys.stderr)
        return 2
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
    except audit.AuditError as exc:  # the pack is recorded before it is written
        print(f"alliance pack: refused: {exc}", file=sys.stderr)
        return 2
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


def cmd_users(args) -> int:
    """``alliance users add/list/remove``: the users file (alliance.auth). Passwords are read without echo
    (or one line from stdin with --password-stdin), hashed, and never printed or stored as typed."""
    import getpass

    from alliance.auth import ROLES, UsersError, add_user, load_users, remove_user, users_path

    path = Path(args.users) if args.users else users_path(args.db)

    def say(line: str, stream=sys.stdout) -> None:
        print(f"alliance users: {line}", file=stream)

    try:
        if args.action == "list":
            users = load_users(path) if path.exists() else {}
            say(f"{path}: {len(users)} user{'' if len(users) == 1 else 's'}")
            for user in sorted(users.values(), key=lambda u: u.name):
                print(f"  {user.describe()}")
            return 0
        if args.action == "remove":
            remove_user(path, args.name)
            say(f"removed {args.name} from {path}")
            return 0
        if args.no_password:
            password = None
        elif args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"Password for {args.name}: ")
            if getpass.getpass("Again: ") != password:
                say("the two passwords differ; nothing changed", sys.stderr)
                return 1
        problem = _check_clinician(args)
        if problem:
            say(problem, sys.stderr)
            return 2
        user = add_user(
            path,
            args.name,
            args.role,
            password=password,
            clinician_id=args.clinician or "",
            email=args.email or "",
            replace=args.replace,
        )
    except UsersError as exc:
        say(str(exc), sys.stderr)
        return 2
    except (OSError, KeyboardInterrupt, EOFError) as exc:
        say(f"{path}: {type(exc).__name__} {exc}; nothing changed", sys.stderr)
        return 2
    say(f"{'changed' if args.replace else 'added'} {user.describe()} in {path} — {ROLES[user.role]}")
    return 0


def _check_clinician(args) -> str:
    """A clinician or supervisor code must be one of the database's clinicians (when the database exists)."""
    from alliance.db import DatabaseError, open_database
    from alliance.scope import Scope
    from alliance.service import Service

    db_path = Path(args.db) if args.db else config.database_path()
    if not args.clinician or not db_path.exists():
        return ""
    try:
        clinicians = Service(open_database(db_path), Scope.full_access()).clinicians()
    except DatabaseError as exc:
        return f"cannot check the clinician code: {exc}"
    if args.clinician not in set(clinicians["clinician_id"]):
        return f"no clinician {args.clinician!r} in {db_path}; nothing changed"
    if args.role == "supervisor" and args.clinician not in set(clinicians["supervisor_id"].dropna()):
        return f"{args.clinician!r} supervises no team in {db_path}; give them the clinician role"
    return ""


def cmd_audit(args) -> int:
    return audit.command(args)


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
        help="import ratings: CSV, Excel .xlsx or Parquet, long or wide (see docs/import.md)",
        description="Check every row, then merge the file into the database: new ratings inserted, changed "
        "ones updated, unchanged ones left; any problem and nothing is written.",
    )
    imp.add_argument(
        "file", help="CSV (any delimiter, UTF-8, optional sep= line), Excel .xlsx or Parquet; long or wide"
    )
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
    imp.add_argument(
        "--mapping",
        metavar="PATH",
        help="TOML file naming the file's columns, instrument columns (wide files) and date format",
    )
    imp.add_argument(
        "--progress",
        action="store_true",
        help="show a progress bar on stderr even when it is not a terminal (it shows on a terminal anyway)",
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
    ref.add_argument(
        "--if-stale",
        action="store_true",
        help="only when the stored metrics are not current (make serve runs this on the demo: a demo "
        "database built by an earlier version of Alliance gets the store this version reads)",
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

    aud = sub.add_parser(
        "audit",
        help="print the audit trail: who viewed, exported, imported or marked what, when, from where",
        description="The records of a database's audit trail (<db stem>.audit.sqlite or $ALLIANCE_AUDIT), "
        "oldest first; --verify checks that none was altered, removed or inserted outside the application.",
    )
    aud.add_argument("--db", default=None, help="database file (default: $ALLIANCE_DB or the demo)")
    aud.add_argument("--since", type=_date, default=None, help="first day (UTC, YYYY-MM-DD)")
    aud.add_argument("--until", type=_date, default=None, help="last day (UTC, YYYY-MM-DD)")
    aud.add_argument("--user", default=None, help="only this user's records")
    aud.add_argument("--client", default=None, help="only records about this client code")
    aud.add_argument("--episode", default=None, help="only records about this episode code")
    aud.add_argument("--action", choices=audit.ACTIONS, default=None, help="only this action")
    aud.add_argument("--csv", metavar="OUT", default=None, help="write the records to this CSV file instead")
    aud.add_argument("--verify", action="store_true", help="check the hash chain and append-only triggers")
    aud.set_defaults(func=cmd_audit)

    users = sub.add_parser(
        "users",
        help="manage who may sign in and with which role (the users file, hashed passwords)",
        description="The users file: $ALLIANCE_USERS, else <db stem>.users.json beside the database. Roles: "
        "clinician (own caseload), supervisor (own caseload and supervisees'), director (everything), "
        "researcher (aggregates only).",
    )
    users_sub = users.add_subparsers(dest="action", required=True)
    helps = {"add": "add a user (or change one with --replace)", "list": "list the users", "remove": "remove"}
    for action, words in helps.items():
        a = users_sub.add_parser(action, help=words)
        a.add_argument("--db", default=None, help="database file (default: $ALLIANCE_DB or the demo)")
        a.add_argument("--users", default=None, help="users file (default: $ALLIANCE_USERS, else by --db)")
        if action != "list":
            a.add_argument("name", help="user name (letters, digits and . _ @ + -)")
        if action == "add":
            roles = ["clinician", "supervisor", "director", "researcher"]
            a.add_argument("--role", required=True, choices=roles)
            a.add_argument("--clinician", default=None, help="their clinician code (clinician, supervisor)")
            a.add_argument("--email", default=None, help="e-mail address at the identity provider (OAuth)")
            how = a.add_mutually_exclusive_group()
            how.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
            how.add_argument("--no-password", action="store_true", help="identity provider sign-in only")
            a.add_argument("--replace", action="store_true", help="change an existing user")
    users.set_defaults(func=cmd_users)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
