"""Who is looking and what they may see: the users file, sign-in, roles and each viewer's scope.

**The users file** (JSON; ``$ALLIANCE_USERS``, else ``<database>.users.json`` beside the database) holds one
entry per user: a role, a clinician code for clinicians and supervisors, an optional e-mail address (to map an
identity provider's user), and a password hash — scrypt with a per-user random salt, never the password.
``alliance users add/list/remove`` manages it.

**Roles.** ``clinician``: their own caseload; ``supervisor``: their own caseload and their supervisees' (the
clinicians of the teams they supervise, from the database); ``director``: everything; ``researcher``:
aggregates only — the comparison page, never a client page, a caseload or a meeting agenda. In comparisons a
clinician sees their own row as "you" and colleagues under a pseudonym, a supervisor sees their supervisees
named, a director every name, a researcher none (``alliance.clinician_comparison.clinician_names``).

**Sign-in** goes through ``panel serve``'s own hook: ``--auth-module alliance/signin.py --cookie-secret …``
serves the login page below, checks the password against the hash and sets Tornado's signed, HTTP-only
``user`` cookie, which Panel reads as ``pn.state.user``; every page, every websocket and the index are refused
without it. An identity provider (``--oauth-provider generic``) is the other way in: its user is mapped to the
users file by name or e-mail (docs/deployment.md). Without either, the server is the demo: full access, bound
to this machine, and every page says "demo — no sign-in".

The scope is decided here, on the server, from the signed-in user; pages get a ``Service`` built with it and
every query filters in SQL (``alliance.scope``). :func:`current_user` tells any part of the app who is
looking (the audit trail records it).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from alliance import config
from alliance.scope import Scope

#: Environment variable naming the users file.
USERS_ENV = "ALLIANCE_USERS"
FORMAT = "alliance-users/1"

ROLES = {
    "clinician": "their own caseload; comparisons with colleagues anonymised",
    "supervisor": "their own caseload and their supervisees'; comparisons with other teams anonymised",
    "director": "everything, every name",
    "researcher": "aggregates only (the comparison page), every clinician anonymised",
}
#: Which roles may open each page. The demo (no sign-in) opens every page with full access.
PAGE_ROLES = {
    "client": {"clinician", "supervisor", "director"},
    "caseload": {"clinician", "supervisor", "director"},
    "meeting": {"supervisor", "director"},
    "comparison": {"clinician", "supervisor", "director", "researcher"},
}
PAGE_WORDS = {
    "client": "the client page",
    "caseload": "the caseload page",
    "meeting": "the supervision meeting page",
    "comparison": "the comparison page",
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_CODE = re.compile(r"[^\x00-\x1f\x7f]{1,64}")

# scrypt: 2^14 × 8 × 128 bytes = 16 MB and some tens of milliseconds per check (OWASP's minimum parameters).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024
_SALT_BYTES = 16
_KEY_BYTES = 32
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

#: How long a sign-in lasts (the signed cookie's age is checked on every request).
SESSION_DAYS = 0.5
#: Failed sign-ins for one user name within the window before that name is held back for the window.
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0


class UsersError(Exception):
    """The users file or a user entry cannot be used; the message says what is wrong (one line)."""


@dataclass(frozen=True)
class User:
    """One entry of the users file. ``password`` is the hash ("" for a user who signs in elsewhere)."""

    name: str
    role: str
    clinician_id: str = ""
    email: str = ""
    password: str = dataclasses.field(default="", repr=False)

    def describe(self) -> str:
        who = f" {self.clinician_id}" if self.clinician_id else ""
        mail = f" <{self.email}>" if self.email else ""
        way = "password" if self.password else "identity provider only"
        return f"{self.name}{mail}: {self.role}{who} ({way})"


# -- passwords -------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$key`` (base64) with a fresh random salt."""
    check_password(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=_KEY_BYTES, maxmem=_MAXMEM, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(key)}"


def check_password(password: str) -> None:
    """Refuse a password that is too short or too long (UsersError)."""
    if len(password) < MIN_PASSWORD:
        raise UsersError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsersError(f"a password has at most {MAX_PASSWORD} characters")


# A hash of a random password: checked against when the user is unknown, so that an unknown name takes as
# long to refuse as a wrong password (no timing difference tells which names exist).
_DUMMY_HASH: list[str] = []


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison; False for a malformed hash)."""
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        salt_b, key_b = base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
        n, r, p = int(n), int(r), int(p)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and len(key_b) >= 16):
            return False
        candidate = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=salt_b,
            n=n,
            r=r,
            p=p,
            dklen=len(key_b),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key_b)


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user whose name and password these are, or None — in the same time for an unknown name."""
    user = users.get(name)
    if user is None or not user.password or len(password) > MAX_PASSWORD:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
        verify_password(password[:MAX_PASSWORD], _DUMMY_HASH[0])
        return None
    return user if verify_password(password, user.password) else None


# -- the users file --------------------------------------------------------------------------------------
def users_path(db: Path | str | None = None) -> Path:
    """The users file: $ALLIANCE_USERS, else ``<database stem>.users.json`` beside the database."""
    env = os.environ.get(USERS_ENV, "").strip()
    if env:
        return Path(env)
    db = Path(db) if db else config.database_path()
    return db.with_name(f"{db.stem}.users.json")


def _user_from(name: str, entry) -> User:
    if not isinstance(entry, dict):
        raise UsersError(f"user {name!r}: not an object")
    role = entry.get("role")
    fields = {k: entry.get(k, "") for k in ("clinician_id", "email", "password")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise UsersError(f"user {name!r}: clinician_id, email and password must be text")
    return validate_user(User(name=name, role=role, **fields))


def validate_user(user: User) -> User:
    """Check a user entry (UsersError with what is wrong)."""
    if not isinstance(user.name, str) or not _NAME.fullmatch(user.name):
        raise UsersError(
            f"user name {user.name!r}: 1–64 letters, digits and . _ @ + - (starting with a letter or digit)"
        )
    if user.role not in ROLES:
        raise UsersError(f"user {user.name!r}: role {user.role!r} is not one of {', '.join(ROLES)}")
    if user.role in ("clinician", "supervisor") and not user.clinician_id:
        raise UsersError(f"user {user.name!r}: a {user.role} needs a clinician code (--clinician CODE)")
    if user.role in ("director", "researcher") and user.clinician_id:
        raise UsersError(f"user {user.name!r}: a {user.role} has no clinician code")
    if user.clinician_id and not _CODE.fullmatch(user.clinician_id):
        raise UsersError(f"user {user.name!r}: clinician code {user.clinician_id!r} is not a code")
    if user.email and not _EMAIL.fullmatch(user.email):
        raise UsersError(f"user {user.name!r}: {user.email!r} is not an e-mail address")
    if user.password and not user.password.startswith("scrypt$"):
        raise UsersError(
            f"user {user.name!r}: the password is not a scrypt hash (plain passwords are refused)"
        )
    return user


def load_users(path: Path | str) -> dict[str, User]:
    """Every user of the file, by name (UsersError when the file is missing or malformed)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsersError(f"no users file at {path} (add a user with `alliance users add`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsersError(f"the users file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("users"), dict):
        raise UsersError(f"{path} is not an Alliance users file (format {FORMAT})")
    users = {name: _user_from(name, entry) for name, entry in data["users"].items()}
    emails = [u.email.lower() for u in users.values() if u.email]
    if len(emails) != len(set(emails)):
        raise UsersError(f"{path}: one e-mail address belongs to two users")
    return users


def save_users(path: Path | str, users: dict[str, User]) -> None:
    """Write the file atomically (a temporary file renamed into place), readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "users": {
            u.name: {"role": u.role, "clinician_id": u.clinician_id, "email": u.email, "password": u.password}
            for u in sorted(users.values(), key=lambda u: u.name)
        },
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(
    path: Path | str,
    name: str,
    role: str,
    *,
    password: str | None,
    clinician_id: str = "",
    email: str = "",
    replace: bool = False,
) -> User:
    """Add (or, with ``replace``, change) a user; ``password=None`` for one who signs in through an identity
    provider only. The password is hashed here and never stored or shown."""
    path = Path(path)
    users = load_users(path) if path.exists() else {}
    if name in users and not replace:
        raise UsersError(f"user {name!r} exists already (--replace to change it)")
    user = validate_user(
        User(
            name=name,
            role=role,
            clinician_id=clinician_id or "",
            email=email or "",
            password=hash_password(password) if password is not None else "",
        )
    )
    if user.email and any(u.email.lower() == user.email.lower() for u in users.values() if u.name != name):
        raise UsersError(f"the e-mail address {user.email!r} belongs to another user")
    users[name] = user
    save_users(path, users)
    return user


def remove_user(path: Path | str, name: str) -> None:
    users = load_users(path)
    if name not in users:
        raise UsersError(f"no user {name!r} in {path}")
    del users[name]
    save_users(path, users)


_USERS_CACHE: dict[Path, tuple[tuple, dict[str, User]]] = {}
_USERS_LOCK = threading.Lock()


def cached_users(path: Path | str) -> dict[str, User]:
    """``load_users``, read again only when the file changes (every request asks; a removed user is out at
    their next request)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise UsersError(f"no users file at {path}") from None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _USERS_LOCK:
        hit = _USERS_CACHE.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
    users = load_users(path)
    with _USERS_LOCK:
        _USERS_CACHE[path] = (stamp, users)
    return users


# -- who is looking --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """The viewer of a page. ``role`` is None for a signed-in name that the users file does not hold.

    ``signed_in`` is False in the demo (no sign-in: ``name`` is "demo"); ``address`` is the browser's address
    as the server saw it (the proxy's X-Forwarded-For / X-Real-IP with ``panel serve --use-xheaders``)."""

    name: str
    role: str | None
    clinician_id: str = ""
    signed_in: bool = False
    address: str = ""

    def describe(self) -> str:
        if not self.signed_in:
            return "demo — no sign-in"
        return f"{self.name} ({self.role or 'no role'})"


_SIGN_IN: dict[str, Path] = {}


def enable_sign_in(path: Path | str | None = None, argv: list[str] | None = None) -> Path:
    """Turn on sign-in with the users file at ``path`` (``panel serve --auth-module alliance/signin.py``).

    Refuses to start (UsersError) without a cookie secret of at least 32 characters or without a valid users
    file with at least one user who has a password."""
    secret = cookie_secret_given(sys.argv if argv is None else argv)
    if len(secret) < 32:
        raise UsersError(
            "sign-in needs a cookie secret of at least 32 characters: set PANEL_COOKIE_SECRET or pass "
            "--cookie-secret (generate one with `panel secret`)"
        )
    path = Path(path) if path else users_path()
    users = load_users(path)
    if not any(u.password for u in users.values()):
        raise UsersError(f"{path} has no user with a password (add one with `alliance users add`)")
    _SIGN_IN["path"] = path.resolve()
    return _SIGN_IN["path"]


def cookie_secret_given(argv: list[str]) -> str:
    """The cookie secret ``panel serve`` will use: --cookie-secret, else $PANEL_COOKIE_SECRET /
    $BOKEH_COOKIE_SECRET ("" when none)."""
    for i, arg in enumerate(argv):
        if arg == "--cookie-secret" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--cookie-secret="):
            return arg.split("=", 1)[1]
    return os.environ.get("PANEL_COOKIE_SECRET") or os.environ.get("BOKEH_COOKIE_SECRET") or ""


def sign_in_enabled() -> bool:
    """Whether this server signs users in (our login page, or Panel's OAuth or basic auth)."""
    import panel as pn

    return "path" in _SIGN_IN or bool(pn.config.oauth_provider) or bool(pn.config.basic_auth)


def _request():
    import panel as pn

    doc = pn.state.curdoc
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    return getattr(ctx, "request", None) if ctx is not None else None


def _address() -> str:
    request = _request()
    return str(getattr(request, "remote_ip", "") or "") if request is not None else ""


def _signed_in_users(db_path=None) -> dict[str, User]:
    return cached_users(_SIGN_IN.get("path") or users_path(db_path))


def find_user(users: dict[str, User], name: str | None, email: str | None = None) -> User | None:
    """The users-file entry of a signed-in name: by user name, else by e-mail (an identity provider's
    user), case-insensitively for e-mail."""
    if name and name in users:
        return users[name]
    for key in (name, email):
        if key and "@" in key:
            match = [u for u in users.values() if u.email and u.email.lower() == key.lower()]
            if len(match) == 1:
                return match[0]
    return None


def current_user(db_path=None) -> Identity:
    """Who is looking at the current page: the signed-in user mapped to the users file (``role`` None when
    unmapped), or the demo viewer when the server has no sign-in. Call it inside a session (a page, a
    callback); outside one it answers the demo viewer."""
    import panel as pn

    address = _address()
    if not sign_in_enabled():
        return Identity(name="demo", role="demo", signed_in=False, address=address)
    name = pn.state.user
    info = pn.state.user_info or {}
    email = info.get("email") if isinstance(info, dict) else None
    try:
        user = find_user(_signed_in_users(db_path), name, email)
    except UsersError:
        user = None
    if user is None:
        return Identity(name=str(name or ""), role=None, signed_in=True, address=address)
    return Identity(
        name=user.name, role=user.role, clinician_id=user.clinician_id, signed_in=True, address=address
    )


def index_pages(handler) -> list[str] | None:
    """The pages the index lists for the viewer of the index's request (``handler``, Tornado's request
    handler): those their role may open, none for a viewer the users file does not hold; None (every page)
    on a server without sign-in, the demo. The viewer is found as ``current_user`` finds them: by the
    signed-in name, else by the e-mail address in an identity provider's token. Each page still checks the
    viewer itself (``check_page``): this only spares people links that would refuse them."""
    if not sign_in_enabled():
        return None
    _, user = _index_user(handler)
    if user is None:
        return []
    return [page for page, roles in PAGE_ROLES.items() if user.role in roles]


def index_viewer(handler) -> str | None:
    """Who the index says is signed in, as the pages' bar says it ("name (role)"); None on a server without
    sign-in (the index shows the demo's banner instead). Shown escaped by the template."""
    if not sign_in_enabled():
        return None
    name, user = _index_user(handler)
    if user is None:
        return f"{name or 'unknown'} (no role)"
    return f"{user.name} ({user.role})"


def _index_user(handler) -> tuple[str, User | None]:
    """The signed-in name of the index's request and the users-file entry it maps to (or None)."""
    name = getattr(handler, "current_user", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    name = str(name or "")
    try:
        user = find_user(_signed_in_users(), name or None, _token_email(handler))
    except UsersError:
        user = None
    return name, user


def _token_email(handler) -> str | None:
    """The e-mail address in the identity provider's token that Panel's sign-in keeps in a signed cookie
    (``pn.state.user_info`` in a session), or None."""
    from panel.io.state import state
    from panel.util import decode_token

    try:
        raw = handler.get_secure_cookie("id_token")
        info = decode_token(state._decrypt_cookie(raw)) if raw else None
    except Exception:  # noqa: BLE001 — no provider's token, or one not readable: the signed-in name decides
        return None
    email = info.get("email") if isinstance(info, dict) else None
    return str(email) if email else None


class AccessRefused(Exception):
    """The viewer may not open this page; ``title``/``problem``/``remedy`` are shown, and nothing else."""

    def __init__(self, title: str, problem: str, remedy: str = ""):
        super().__init__(problem)
        self.title, self.problem, self.remedy = title, problem, remedy


def _loopback(address: str) -> bool:
    if not address:
        return True  # not served over a network (Jupyter, tests)
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def serving() -> bool:
    """Whether a ``panel serve`` session is being built or run here (not a notebook, not a test): it has a
    session context. Not ``pn.state.served``, which asks whether its *caller's* module is a served script
    (never true when asked from a module like this one: the demo's refusals below once never ran)."""
    import panel as pn

    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def check_page(identity: Identity, page: str, db_path=None) -> None:
    """Refuse (AccessRefused) an unknown user, a role not allowed on ``page``, or a demo that is reached from
    another machine or that runs although a users file is configured."""

    words = PAGE_WORDS.get(page, f"the {page} page")
    if not identity.signed_in:
        if not serving():
            return
        if not _loopback(identity.address):
            raise AccessRefused(
                "Sign-in required",
                "This server has no sign-in, so it answers only on the machine it runs on.",
                "Ask the administrator to turn sign-in on (docs/deployment.md).",
            )
        configured = users_path(db_path)
        if os.environ.get(USERS_ENV) or configured.exists():
            raise AccessRefused(
                "Sign-in is configured but not turned on",
                "A users file is configured for this database, but this server runs without sign-in.",
                "Serve with `make serve USERS=…` or `--auth-module alliance/signin.py` (docs/deployment.md).",
            )
        return
    if identity.role is None:
        raise AccessRefused(
            "No access",
            f"You are signed in as {identity.name or 'an unknown user'}, who has no access to Alliance.",
            "Ask the service's administrator to add you (`alliance users add`), then sign in again.",
        )
    if identity.role not in PAGE_ROLES.get(page, set()):
        allowed = sorted(p for p, roles in PAGE_ROLES.items() if identity.role in roles)
        raise AccessRefused(
            "Not available to your role",
            f"{words.capitalize()} is not available to the {identity.role} role.",
            f"Your role opens {', '.join(f'[{PAGE_WORDS[p]}]({p})' for p in allowed)}.",
        )


def scope_for(identity: Identity, db) -> Scope:
    """The scope a viewer's role gives them on the database ``db`` (``alliance.db.Database``)."""
    from alliance.agenda import team_clinicians
    from alliance.service import Service

    viewer = identity.describe()
    if not identity.signed_in:
        return dataclasses.replace(Scope.full_access("full access (demo)"), viewer=viewer, demo=True)
    if identity.role == "director":
        return dataclasses.replace(Scope.full_access("all clinicians (director)"), viewer=viewer)
    if identity.role == "researcher":
        return Scope(
            all_clinicians=True,
            label="aggregates only (researcher); every clinician anonymised",
            named=(),
            compare_all=True,
            viewer=viewer,
        )
    me = identity.clinician_id
    if identity.role == "clinician":
        scope = Scope.clinicians(me, label=f"your caseload ({me})")
    elif identity.role == "supervisor":
        team = team_clinicians(Service(db, Scope.full_access()), me)
        scope = Scope.clinicians(
            me, *team, label=f"your caseload ({me}) and your supervisees' ({len(team)} clinicians)"
        )
    else:
        return Scope(label="nothing", named=(), viewer=viewer)
    return dataclasses.replace(scope, named=scope.clinician_ids, you=me, compare_all=True, viewer=viewer)


_PROCESS_KEY = secrets.token_bytes(32)


def pseudonym_key(data_version: str) -> bytes:
    """The key of the comparison pseudonyms for one data version: from the cookie secret when the server has
    one (the same letters in every server process), else from a secret of this process."""
    import panel as pn

    secret = pn.config.cookie_secret or cookie_secret_given(sys.argv)
    base = secret.encode("utf-8") if secret else _PROCESS_KEY
    return hmac.new(base, f"alliance pseudonyms {data_version}".encode(), hashlib.sha256).digest()


# -- the page header -------------------------------------------------------------------------------------
#: What the pages' bar and the index say on a server without sign-in.
DEMO_BANNER = "Demo — no sign-in: full access, this machine only"


def access_header(scope: Scope) -> list:
    """What the page's app bar says about access: the demo banner, or who is signed in (and sign-out)."""
    import panel as pn

    from alliance.inert import html_text

    if scope.demo or not scope.viewer:
        return [
            pn.pane.HTML(
                '<span style="background:#E69F00;color:#111;padding:4px 12px;border-radius:4px;'
                'font-weight:700;white-space:nowrap">'
                f"{DEMO_BANNER}</span>",
                name="access-banner",
                margin=(8, 10),
            )
        ]
    return [
        pn.pane.HTML(
            '<span style="color:white;white-space:nowrap">Signed in as '
            f"<b>{html_text(scope.viewer, markdown=False)}</b>"
            ' · <a href="logout" style="color:white;font-weight:600">Sign out</a></span>',
            name="access-banner",
            margin=(8, 10),
        )
    ]


# -- the Tornado handlers of `panel serve --auth-module alliance/signin.py` -------------------------------
login_url = "/login"
logout_url = "/logout"
_TEMPLATE = config.REPO_ROOT / "alliance" / "templates" / "login.html"
_FAILURES: dict[str, list[float]] = {}
_FAILURES_LOCK = threading.Lock()


def _held_back(name: str) -> bool:
    now = time.monotonic()
    with _FAILURES_LOCK:
        recent = [t for t in _FAILURES.get(name, []) if now - t < FAILURE_WINDOW]
        _FAILURES[name] = recent
        return len(recent) >= MAX_FAILURES


def _failed(name: str) -> None:
    with _FAILURES_LOCK:
        _FAILURES.setdefault(name, []).append(time.monotonic())
        if len(_FAILURES) > 10_000:  # a flood of names: keep memory bounded
            _FAILURES.clear()


def safe_next(url: str | None) -> str:
    """A local path to return to after sign-in ("/" for anything else: no open redirect)."""
    url = (url or "").strip()
    if (
        not url.startswith("/")
        or url.startswith(("//", "/\\"))
        or any(c in url for c in "\\\r\n\t\x00")
        or len(url) > 2000
    ):
        return "/"
    return url


def _record_sign_in(action: str, name: str, address: str | None) -> bool:
    """Append a sign-in (or refused sign-in) to the audit trail (``alliance.audit``); False when it cannot be
    written — a sign-in is then refused, as every other unrecorded action is."""
    try:
        from alliance import audit
    except ImportError:  # pragma: no cover — the trail ships with the application
        return True
    try:
        audit.record(action, user=name[:64] or "(empty)", remote=address or "", detail="login page")
    except audit.AuditError:
        return action != "sign_in"
    return True


def get_user(request_handler) -> str | None:
    """The signed-in user of a request (HTTP or websocket): the signed cookie's name if it is recent and the
    users file still holds that name, else None (Bokeh then redirects to the login page or refuses)."""
    raw = request_handler.get_secure_cookie("user", max_age_days=SESSION_DAYS)
    if not raw:
        return None
    name = raw.decode("utf-8", "replace")
    try:
        users = _signed_in_users()
    except UsersError:
        return None
    return name if name in users else None


def _handlers():
    """The login and logout handlers (Tornado imported only when serving)."""
    import tornado.template
    import tornado.web
    from panel.util import base64url_encode

    template = tornado.template.Template(_TEMPLATE.read_text(encoding="utf-8"), autoescape="xhtml_escape")

    class LoginHandler(tornado.web.RequestHandler):
        """The login page (GET) and the password check (POST)."""

        def _page(self, next_url: str, error: str = "", name: str = "", note: str = "") -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Frame-Options", "DENY")
            self.set_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            )
            self.write(template.generate(next_url=next_url, error=error, name=name, note=note))

        def get(self) -> None:
            note = "You are signed out." if self.get_argument("signed_out", "") else ""
            self._page(safe_next(self.get_argument("next", "/")), note=note)

        def post(self) -> None:
            name = self.get_argument("username", "").strip()[:200]
            password = self.get_argument("password", "")
            next_url = safe_next(self.get_argument("next", "/"))
            if _held_back(name):
                self.set_status(429)
                return self._page(next_url, "Too many failed attempts: wait a few minutes.", name)
            try:
                user = authenticate(_signed_in_users(), name, password)
            except UsersError:
                user = None
            if user is None:
                _failed(name)
                _record_sign_in("sign_in_refused", name, self.request.remote_ip)
                self.set_status(401)
                return self._page(next_url, "Wrong user name or password.", name)
            if not _record_sign_in("sign_in", user.name, self.request.remote_ip):
                self.set_status(503)
                return self._page(
                    next_url, "Sign-in cannot be recorded in the audit trail: ask the administrator.", name
                )
            https = self.request.protocol == "https"
            cookie = {"httponly": True, "secure": https, "samesite": "Lax", "expires_days": SESSION_DAYS}
            self.set_secure_cookie("user", user.name, **cookie)
            # What Panel's own login sets, so that pn.state.user_info answers too.
            self.set_secure_cookie("id_token", base64url_encode(json.dumps({"user": user.name})), **cookie)
            self.redirect(next_url)

    class LogoutHandler(tornado.web.RequestHandler):
        def get(self) -> None:
            for name in ("user", "id_token", "is_guest"):
                self.clear_cookie(name)
            self.redirect("login?signed_out=1")

    return LoginHandler, LogoutHandler


__all__ = [
    "PAGE_ROLES",
    "ROLES",
    "AccessRefused",
    "Identity",
    "User",
    "UsersError",
    "access_header",
    "add_user",
    "authenticate",
    "check_page",
    "current_user",
    "enable_sign_in",
    "hash_password",
    "index_pages",
    "load_users",
    "remove_user",
    "scope_for",
    "sign_in_enabled",
    "users_path",
    "verify_password",
]
