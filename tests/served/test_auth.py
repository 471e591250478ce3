"""`panel serve --auth-module alliance/signin.py`: sign-in with the users file, and each role's scope.

A real server with sign-in on, against the demo database, with one user per role (their clinician codes taken
from the database with SQL). Without the signed cookie every page, the index and the websocket are refused;
a wrong password is refused; the right one is admitted to exactly its scope, read from the document the
server sends over the session's websocket (as a browser gets it) with the cookie the login page set."""

from __future__ import annotations

import html
import http.client
import json
import re
import secrets
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from tornado.httpclient import HTTPRequest
from tornado.web import create_signed_value

from alliance.auth import add_user, remove_user
from alliance.loadgen import PageDocument, Visit, texts
from tests.conftest import REPO, Server
from tests.served.test_served import _served_document, document_text

CODE = re.compile(r"\bCL\d\d\b")
CLIENT = re.compile(r"\bC-[0-9a-f]{6}\b")


def sql(db: Path, query: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def cast(db: Path) -> dict:
    """Who plays each role in the demo database, and what each may see — from the database itself."""
    (clinician,) = sql(
        db,
        """SELECT e.clinician_id FROM episode e JOIN clinician c USING (clinician_id) JOIN team t USING (team_id)
           WHERE e.clinician_id <> t.supervisor_id GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""",
    )[0]
    (team, supervisor) = sql(
        db,
        "SELECT team_id, supervisor_id FROM clinician JOIN team USING (team_id) WHERE clinician_id = ?",
        [clinician],
    )[0]
    members = {c for (c,) in sql(db, "SELECT clinician_id FROM clinician WHERE team_id = ?", [team])}
    supervised = {
        c
        for (c,) in sql(
            db,
            "SELECT c.clinician_id FROM clinician c JOIN team t USING (team_id) WHERE t.supervisor_id = ?",
            [supervisor],
        )
    } | {supervisor}
    everyone = {c for (c,) in sql(db, "SELECT clinician_id FROM clinician")}
    clients = {
        cl: {c for (c,) in sql(db, "SELECT DISTINCT client_id FROM episode WHERE clinician_id = ?", [cl])}
        for cl in everyone
    }
    # A client seen by another team only: outside both the clinician's and the supervisor's scope.
    outsider = sorted(
        c
        for (c,) in sql(
            db,
            """SELECT client_id FROM episode GROUP BY client_id
               HAVING bool_and(list_contains(CAST(? AS VARCHAR[]), clinician_id) = false)""",
            [sorted(supervised | {clinician})],
        )
    )[0]
    return {
        "clinician": clinician,
        "team": team,
        "members": members,
        "supervisor": supervisor,
        "supervised": supervised,
        "everyone": everyone,
        "clients": clients,
        "outsider": outsider,
    }


@pytest.fixture(scope="module")
def signin(demo_db, tmp_path_factory):
    """A served demo with sign-in on, one user per role, and the passwords the tests sign in with."""
    folder = tmp_path_factory.mktemp("signin")
    users = folder / "users.json"
    people = cast(demo_db)
    password = secrets.token_urlsafe(18)
    add_user(users, "cli", "clinician", password=password, clinician_id=people["clinician"])
    add_user(users, "sup", "supervisor", password=password, clinician_id=people["supervisor"])
    add_user(users, "dir", "director", password=password)
    add_user(users, "res", "researcher", password=password)
    add_user(users, "gone", "director", password=password)
    secret = secrets.token_urlsafe(40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALLIANCE_USERS", str(users))
        mp.setenv("PANEL_COOKIE_SECRET", secret)
        server = Server(
            demo_db, folder / "panel.log", extra=("--auth-module", str(REPO / "alliance/signin.py"))
        )
    server.users, server.password, server.secret, server.people = users, password, secret, people
    yield server
    server.stop()


def request(url: str, method: str = "GET", body: dict | None = None, cookie: str = ""):
    """One request, redirects not followed: (status, headers, text)."""
    parts = urllib.parse.urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        con.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), data, headers)
        r = con.getresponse()
        return r.status, r.headers, r.read().decode()
    finally:
        con.close()


def sign_in(server, name: str, password: str | None = None) -> str:
    """Sign in through the login form; the Cookie header the browser would then send."""
    status, headers, _ = request(
        server.url + "/login",
        "POST",
        {"username": name, "password": password or server.password, "next": "/"},
    )
    assert status == 302, f"{name} was not admitted ({status})"
    jar = SimpleCookie()
    for line in headers.get_all("Set-Cookie"):
        jar.load(line)
    return "; ".join(f"{k}={m.value}" for k, m in jar.items())


def document_as(url: str, cookie: str, arguments: dict | None = None) -> dict:
    """The document of a new session of ``url`` as a browser signed in with ``cookie`` gets it."""

    def pull():
        with mock.patch(
            "bokeh.client.connection.HTTPRequest", partial(HTTPRequest, headers={"Cookie": cookie})
        ):
            return _served_document(url, arguments)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(pull).result(timeout=300)


def text_as(server, page: str, who: str, arguments: dict | None = None) -> str:
    return document_text(document_as(f"{server.url}/{page}", sign_in(server, who), arguments))


def client_options(doc: dict) -> list[str]:
    """The options of the client page's "Client" select, as sent to the browser."""
    for ref in _models(doc):
        attrs = ref.get("attributes", {})
        if attrs.get("label") == "Client" and "options" in attrs:
            return [o if isinstance(o, str) else o[0] for o in attrs["options"]]
    raise AssertionError("the document has no Client select")


def select_options(doc: dict, label: str) -> list[str]:
    for ref in _models(doc):
        attrs = ref.get("attributes", {})
        if attrs.get("label") == label and "options" in attrs:
            return [o if isinstance(o, str) else o[0] for o in attrs["options"]]
    raise AssertionError(f"the document has no {label} select")


def _models(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "attributes" in node:
            yield node
        for v in node.values():
            yield from _models(v)
    elif isinstance(node, list):
        for v in node:
            yield from _models(v)


# -- sign-in -------------------------------------------------------------------------------------------------
@pytest.mark.served
@pytest.mark.parametrize("path", ["/", "/client", "/caseload", "/comparison", "/meeting", "/client?client=x"])
def test_without_the_cookie_every_page_goes_to_the_login_page(signin, path):
    status, headers, body = request(signin.url + path)
    assert status == 302
    location = headers["Location"]
    assert urllib.parse.urlsplit(location).path.endswith("/login")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["next"] == [path]
    assert "CL" not in body and "C-" not in body


@pytest.mark.served
def test_without_the_cookie_the_websocket_is_refused(signin):
    with pytest.raises(Exception) as refused:
        document_as(f"{signin.url}/client", cookie="")
    assert "403" in str(refused.value) or "connect" in str(refused.value).lower()


@pytest.mark.served
def test_the_login_page_is_the_apps_own(signin):
    status, headers, body = request(signin.url + "/login?next=/client")
    assert status == 200
    assert "<title>Alliance · Sign in</title>" in body and 'name="password"' in body
    assert 'value="/client"' in body  # back to the page asked for
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.served
@pytest.mark.parametrize(
    "name, password",
    [("cli", "wrong password!"), ("cli", ""), ("nobody", "whatever it is"), ("", ""), ("dir", None)],
)
def test_a_wrong_password_is_refused(signin, name, password):
    if password is None:  # the right password of another user
        password = signin.password + "x"
    status, headers, body = request(signin.url + "/login", "POST", {"username": name, "password": password})
    assert status == 401
    assert "Wrong user name or password." in body
    assert not [c for c in headers.get_all("Set-Cookie") or [] if c.startswith("user=")]


@pytest.mark.served
def test_the_right_password_sets_a_signed_http_only_cookie(signin):
    status, headers, _ = request(
        signin.url + "/login", "POST", {"username": "cli", "password": signin.password, "next": "/client"}
    )
    assert status == 302 and headers["Location"] == "/client"
    user = next(c for c in headers.get_all("Set-Cookie") if c.startswith("user="))
    assert "HttpOnly" in user and "SameSite=Lax" in user
    assert signin.password not in str(headers)
    # With it the page is served.
    jar = SimpleCookie(user)
    status, _, body = request(signin.url + "/client", cookie=f"user={jar['user'].value}")
    assert status == 200 and "<title>Alliance · Client</title>" in body


@pytest.mark.served
@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_no_open_redirect_after_sign_in(signin, next_url):
    status, headers, _ = request(
        signin.url + "/login", "POST", {"username": "cli", "password": signin.password, "next": next_url}
    )
    assert status == 302 and headers["Location"] == "/"


@pytest.mark.served
def test_a_forged_or_removed_user_cookie_is_not_admitted(signin):
    forged = create_signed_value("not the secret" * 3, "user", "dir").decode()
    assert request(signin.url + "/client", cookie=f"user={forged}")[0] == 302
    # Signed with the server's secret but for a name the users file does not hold.
    unknown = create_signed_value(signin.secret, "user", "mallory").decode()
    assert request(signin.url + "/client", cookie=f"user={unknown}")[0] == 302
    # A user removed from the file is out at the next request.
    cookie = sign_in(signin, "gone")
    assert request(signin.url + "/client", cookie=cookie)[0] == 200
    remove_user(signin.users, "gone")
    assert request(signin.url + "/client", cookie=cookie)[0] == 302


@pytest.mark.served
def test_sign_out_clears_the_cookie(signin):
    cookie = sign_in(signin, "cli")
    status, headers, _ = request(signin.url + "/logout", cookie=cookie)
    assert status == 302 and "login" in headers["Location"]
    cleared = [c for c in headers.get_all("Set-Cookie") if c.startswith("user=")]
    assert cleared and 'user=""' in cleared[0]


# -- each role's scope ---------------------------------------------------------------------------------------
@pytest.mark.served
def test_a_clinician_sees_their_own_caseload_only(signin):
    people = signin.people
    me, mine = people["clinician"], people["clients"][people["clinician"]]
    others = set().union(*(c for cl, c in people["clients"].items() if cl != me)) - mine
    doc = document_as(f"{signin.url}/client", sign_in(signin, "cli"))
    text = document_text(doc)
    assert "Signed in as <b>cli (clinician)</b>" in text
    assert f"Clinician <strong>{me}</strong>" in text
    assert select_options(doc, "Clinician") == [me]
    assert set(client_options(doc)) <= mine and client_options(doc)
    assert not set(CLIENT.findall(text)) & others, "another clinician's client is in the clinician's page"
    caseload = text_as(signin, "caseload", "cli")
    links = set(re.findall(r"client\?client=(C-[0-9a-f]{6})", caseload))
    assert links and links <= mine
    assert not set(CLIENT.findall(caseload)) & others
    assert not signin.errors(), signin.errors()[0]


def _every_string(doc) -> str:
    """Every value of every model of a visit's document, as the server sent it: the tables' cells too."""
    return html.unescape(json.dumps(doc.models()))


def _options(doc, label: str) -> list[str]:
    """The options of a visit's select labelled ``label``."""
    return PageDocument.options(doc.select(label)[1])


def _seen_by(server, name: str, who: str) -> dict:
    """What ``who`` gets of page ``name`` as a browser does (the HTML, then the session it names over the
    websocket, with the sign-in cookie): the HTML, the page's texts, every string and the Clinician options."""
    visit = Visit(server.url, name, 120, cookie=sign_in(server, who))
    try:
        return {
            "html": visit.html,
            "texts": html.unescape("\n".join(texts(visit.doc))),
            "everything": _every_string(visit.doc),
            "clinicians": _options(visit.doc, "Clinician"),
        }
    finally:
        visit.close()


@pytest.mark.served
@pytest.mark.parametrize("name", ["caseload", "client"])
def test_a_page_written_from_someone_elses_kept_session_opens_in_the_viewers_own_scope(signin, name):
    """The server writes later visitors' HTML from one session per page that it keeps (``--reuse-sessions``),
    which may be a director's; a clinician's HTML then carries no client or clinician code, and their own
    session, built when their websocket connects, holds their clients only."""
    people = signin.people
    me, mine = people["clinician"], people["clients"][people["clinician"]]
    others = set().union(*(c for cl, c in people["clients"].items() if cl != me)) - mine
    with ThreadPoolExecutor(max_workers=1) as pool:  # the sessions' own IO loops, outside pytest's thread
        # The director's visit first: the page's kept session may be theirs.
        director, clinician, director_again = (
            pool.submit(_seen_by, signin, name, who).result(timeout=300) for who in ("dir", "cli", "dir")
        )
    for seen in (director, clinician, director_again):
        assert not CLIENT.findall(seen["html"]) and not CODE.findall(seen["html"]), "data in a page's HTML"
    assert "Signed in as <b>cli (clinician)</b>" in clinician["texts"]
    shown = set(CLIENT.findall(clinician["everything"]))
    assert shown and shown <= mine, "the clinician's page shows no client, or another clinician's"
    assert not shown & others
    assert set(CODE.findall(clinician["everything"])) <= {me}
    assert clinician["clinicians"] == [me]
    # The director after them still has every clinician: nobody's scope is kept for the next person.
    assert "Signed in as <b>dir (director)</b>" in director_again["texts"]
    assert len(director_again["clinicians"]) == len(people["clients"]) > 1
    assert not signin.errors(), signin.errors()[0]


@pytest.mark.served
def test_a_deep_link_outside_the_scope_is_not_found_like_a_missing_client(signin):
    people = signin.people
    cookie = sign_in(signin, "cli")
    outside_doc = document_as(f"{signin.url}/client", cookie, {"client": people["outsider"]})
    missing_doc = document_as(f"{signin.url}/client", cookie, {"client": "C-000000"})
    outside, missing = document_text(outside_doc), document_text(missing_doc)
    assert f"Client {people['outsider']} not found." in outside
    assert "Client C-000000 not found." in missing
    # The same page either way: no episode, no heading, nothing of the outsider's but the code asked for.
    for text in (outside, missing):
        assert "No episode selected" in text and "<h3>Client " not in text
        assert "This client has no episode you can see." in text
        assert not (set(CODE.findall(text)) - {people["clinician"]})
    # A client outside the scope answers exactly as one that does not exist.
    assert shown_texts(outside_doc, people) == shown_texts(missing_doc, people)
    assert not signin.errors(), signin.errors()[0]


def shown_texts(doc: dict, people) -> list[str]:
    """Every text, label, option and value of a document's models, the code asked for written as CODE."""
    texts = []
    for model in _models(doc):
        for key in ("object", "text", "label", "options", "value", "title", "visible"):
            if key in model["attributes"]:
                texts.append(f"{key}={model['attributes'][key]}")
    texts = [re.sub(r"'id': 'p\d+'", "'id': ID", t) for t in texts]  # model ids count per process
    return sorted(t.replace(people["outsider"], "CODE").replace("C-000000", "CODE") for t in texts)


def index_listing(server, cookie: str) -> tuple[set[str], str]:
    """The pages the index links for a viewer with ``cookie``, and the index's text."""
    status, _, index = request(server.url + "/", cookie=cookie)
    assert status == 200, status
    return set(re.findall(r'<a class="page" href="\.?/?([a-z_]+)"', index)), index


@pytest.mark.served
def test_the_index_lists_only_the_pages_the_role_may_open(signin):
    """Clinicians: no meeting page; supervisors and directors: all four; researchers: the comparison only (the
    roles' pages as the deployment guide gives them). A name the users file does not hold is refused
    before the index (see above), so the index never lists pages for it."""
    expected = {
        "cli": {"client", "caseload", "comparison"},
        "sup": {"client", "caseload", "comparison", "meeting"},
        "dir": {"client", "caseload", "comparison", "meeting"},
        "res": {"comparison"},
    }
    roles = {"cli": "clinician", "sup": "supervisor", "dir": "director", "res": "researcher"}
    for who, pages in expected.items():
        listed, index = index_listing(signin, sign_in(signin, who))
        assert listed == pages, (who, listed)
        assert "No page of Alliance is open" not in index
        assert f"Signed in as <b>{who} ({roles[who]})</b>" in index and 'href="logout"' in index
    assert not signin.errors(), signin.errors()[0]


@pytest.mark.served
def test_a_supervisor_sees_their_team_and_its_meeting(signin):
    people = signin.people
    doc = document_as(f"{signin.url}/client", sign_in(signin, "sup"))
    with_episodes = {c for c in people["supervised"] if people["clients"][c]}
    assert set(select_options(doc, "Clinician")) == with_episodes
    meeting = text_as(signin, "meeting", "sup")
    assert f"Agenda for {people['supervisor']}" in meeting
    shown = set(re.findall(r"Client (C-[0-9a-f]{6})", meeting))
    team_clients = set().union(*(people["clients"][c] for c in people["supervised"]))
    assert shown and shown <= team_clients
    assert not signin.errors(), signin.errors()[0]


@pytest.mark.served
def test_a_director_sees_every_clinician(signin):
    doc = document_as(f"{signin.url}/client", sign_in(signin, "dir"))
    with_episodes = {c for c, cl in signin.people["clients"].items() if cl}
    assert set(select_options(doc, "Clinician")) == with_episodes
    comparison = text_as(signin, "comparison", "dir")
    assert len(set(CODE.findall(comparison))) >= 10 and "clinician A" not in comparison


@pytest.mark.served
@pytest.mark.parametrize("page", ["client", "caseload", "meeting"])
def test_a_researcher_is_refused_every_page_with_client_rows(signin, page):
    text = text_as(signin, page, "res")
    assert "Not available to your role" in text and "researcher" in text
    assert not CLIENT.findall(text) and not CODE.findall(text)
    assert "Traceback" not in text


@pytest.mark.served
def test_a_clinician_is_refused_the_meeting_page(signin):
    text = text_as(signin, "meeting", "cli")
    assert "Not available to your role" in text
    assert not CLIENT.findall(text) and not CODE.findall(text)


@pytest.mark.served
def test_comparisons_name_only_whom_the_role_may_see(signin):
    people = signin.people
    research = text_as(signin, "comparison", "res")
    assert not CODE.findall(research), "a researcher sees a clinician's code"
    assert "clinician A" in research
    mine = text_as(signin, "comparison", "cli")
    assert f"you ({people['clinician']})" in mine
    assert set(CODE.findall(mine)) == {people["clinician"]}, "a clinician sees a colleague's code"
    team = text_as(signin, "comparison", "sup")
    named = set(CODE.findall(team))
    assert named <= people["supervised"], "a supervisor sees another team's codes"
    assert named & (people["supervised"] - {people["supervisor"]}), "a supervisor's supervisees are not named"
    assert f"you ({people['supervisor']})" in team
    assert not signin.errors(), signin.errors()[0]


@pytest.mark.served
def test_each_sign_in_and_refusal_is_one_audit_record(signin, demo_db):
    from alliance import audit

    name = "sup"
    before = {a: len(audit.records(db=demo_db, action=a, user=name)) for a in ("sign_in", "sign_in_refused")}
    sign_in(signin, name)
    status, _, _ = request(signin.url + "/login", "POST", {"username": name, "password": "not the password"})
    assert status == 401
    after = {a: audit.records(db=demo_db, action=a, user=name) for a in before}
    assert len(after["sign_in"]) == before["sign_in"] + 1
    assert len(after["sign_in_refused"]) == before["sign_in_refused"] + 1
    assert after["sign_in"][-1]["remote"].startswith("127.0.0.1")
    assert signin.password not in str(after)


# -- an identity provider (OAuth 2 / OpenID Connect), stubbed ---------------------------------------------------
class StubIdentityProvider:
    """The three endpoints of an OpenID Connect provider that Panel's ``--oauth-provider generic`` uses:
    ``/authorize`` signs in whoever ``next_email`` names and sends the browser back with a code, ``/token``
    trades the code for an access token, ``/userinfo`` answers the e-mail address of the token's person."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        idp = self
        self.next_email: str | None = None
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | str, headers: dict | None = None):
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header(
                    "Content-Type", "application/json" if isinstance(body, dict) else "text/html"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/authorize":
                    if idp.next_email is None:  # nobody is signing in: the provider's own login page
                        return self._send(200, "<html>identity provider</html>")
                    code = secrets.token_urlsafe(12)
                    idp.codes[code] = idp.next_email
                    back = f"{query['redirect_uri']}?" + urllib.parse.urlencode(
                        {"code": code, "state": query["state"]}
                    )
                    return self._send(302, "", {"Location": back})
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in idp.tokens:
                        return self._send(401, {"error": "invalid_token"})
                    return self._send(200, {"email": idp.tokens[token], "sub": token})
                return self._send(404, {"error": "not found"})

            def do_POST(self):
                body = dict(
                    urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode())
                )
                email = idp.codes.pop(body.get("code", ""), None)
                if self.path != "/token" or email is None or body.get("client_secret") != "stub-secret":
                    return self._send(400, {"error": "invalid_grant"})
                token = secrets.token_urlsafe(16)
                idp.tokens[token] = email
                return self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def oidc(demo_db, tmp_path_factory):
    """A served demo whose sign-in is an (stubbed) identity provider; the users file maps e-mail addresses."""
    yield from _oidc_server(demo_db, tmp_path_factory)


@pytest.fixture(scope="module")
def oidc_by_subject(demo_db, tmp_path_factory):
    """The same, with the provider's subject (an opaque id, as GitHub's login is a name) as the signed-in
    name: the e-mail address is only in the provider's token."""
    yield from _oidc_server(demo_db, tmp_path_factory, {"USER_KEY": "sub"})


def _oidc_server(demo_db, tmp_path_factory, params: dict | None = None):
    import alliance.serving
    from alliance.serving import free_port

    folder = tmp_path_factory.mktemp("oidc")
    users = folder / "users.json"
    people = cast(demo_db)
    add_user(
        users, "ana", "clinician", password=None, clinician_id=people["clinician"], email="Ana@Example.org"
    )
    add_user(users, "rui", "researcher", password=None, email="rui@example.org")
    idp = StubIdentityProvider()
    port = free_port()
    extra = {
        "AUTHORIZE_URL": f"{idp.url}/authorize",
        "TOKEN_URL": f"{idp.url}/token",
        "USER_URL": f"{idp.url}/userinfo",
        **(params or {}),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALLIANCE_USERS", str(users))
        mp.setenv("PANEL_COOKIE_SECRET", secrets.token_urlsafe(40))
        mp.setattr(alliance.serving, "free_port", lambda: port)
        server = Server(
            demo_db,
            folder / "panel.log",
            extra=(
                "--oauth-provider", "generic", "--oauth-key", "alliance", "--oauth-secret", "stub-secret",
                "--oauth-extra-params", repr(extra), "--oauth-redirect-uri", f"http://localhost:{port}/login",
            ),
        )  # fmt: skip
    server.idp, server.people = idp, people
    yield server
    server.stop()
    idp.stop()


def sign_in_at_provider(server, email: str) -> str:
    """The browser's round trip: the app's /login → the provider → back with a code; the app's cookies."""
    jar = SimpleCookie()

    def keep(headers):
        for line in headers.get_all("Set-Cookie") or []:
            jar.load(line)

    def cookie() -> str:
        return "; ".join(f"{k}={m.value}" for k, m in jar.items() if m.value)

    status, headers, _ = request(server.url + "/login?next=/client")
    assert status == 302, status
    keep(headers)
    server.idp.next_email = email
    try:
        status, headers, _ = request(headers["Location"])  # at the provider
        assert status == 302, status
        status, headers, body = request(headers["Location"], cookie=cookie())  # back at the app with a code
        assert status == 302, (status, body[:300])
        keep(headers)
    finally:
        server.idp.next_email = None
    return cookie()


@pytest.mark.served
def test_an_identity_providers_user_is_mapped_by_email_to_their_role(oidc):
    people = oidc.people
    cookie = sign_in_at_provider(oidc, "ana@example.org")  # the users file spells it Ana@Example.org
    doc = document_as(f"{oidc.url}/client", cookie)
    text = document_text(doc)
    assert "Signed in as <b>ana (clinician)</b>" in text
    assert select_options(doc, "Clinician") == [people["clinician"]]
    assert set(client_options(doc)) <= people["clients"][people["clinician"]]
    research = document_text(document_as(f"{oidc.url}/client", sign_in_at_provider(oidc, "rui@example.org")))
    assert "Not available to your role" in research and not CLIENT.findall(research)
    # The index, too, finds them by their e-mail address: a clinician's pages, a researcher's one.
    assert index_listing(oidc, cookie)[0] == {"client", "caseload", "comparison"}
    assert index_listing(oidc, sign_in_at_provider(oidc, "rui@example.org"))[0] == {"comparison"}
    assert not oidc.errors(), oidc.errors()[0]


@pytest.mark.served
def test_a_user_signed_in_under_the_providers_own_id_is_mapped_by_the_tokens_email(oidc_by_subject):
    server = oidc_by_subject
    cookie = sign_in_at_provider(server, "ana@example.org")
    doc = document_as(f"{server.url}/client", cookie)
    assert "Signed in as <b>ana (clinician)</b>" in document_text(doc)
    assert select_options(doc, "Clinician") == [server.people["clinician"]]
    assert index_listing(server, cookie)[0] == {"client", "caseload", "comparison"}
    assert index_listing(server, sign_in_at_provider(server, "rui@example.org"))[0] == {"comparison"}
    assert not server.errors(), server.errors()[0]


@pytest.mark.served
def test_an_identity_providers_user_not_in_the_users_file_is_refused(oidc):
    cookie = sign_in_at_provider(oidc, "mallory@example.org")
    for page in ("client", "caseload", "comparison", "meeting"):
        text = document_text(document_as(f"{oidc.url}/{page}", cookie))
        assert "No access" in text and "mallory@example.org" in text
        assert not CLIENT.findall(text) and not CODE.findall(text)
    listed, index = index_listing(oidc, cookie)
    assert not listed and "No page of Alliance is open to your account" in index
    assert "Signed in as <b>mallory@example.org (no role)</b>" in index
    assert not oidc.errors(), oidc.errors()[0]


def test_a_server_without_sign_in_refuses_every_page_when_a_users_file_is_configured(demo_db, tmp_path):
    """Someone serves the notebooks by hand, without the sign-in module, while the database has users: no page
    may show data as if this were the demo (full access for whoever reaches the server)."""
    users = tmp_path / "users.json"
    add_user(users, "dir", "director", password=secrets.token_urlsafe(18))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALLIANCE_USERS", str(users))
        server = Server(demo_db, tmp_path / "panel.log")
    try:
        for page in ("client", "caseload", "comparison", "meeting"):
            with ThreadPoolExecutor(max_workers=1) as pool:  # the session's own IO loop, outside pytest's
                doc = pool.submit(_served_document, f"{server.url}/{page}", None).result(timeout=300)
            text = document_text(doc)
            assert "Sign-in is configured but not turned on" in text, page
            assert not CODE.search(text) and not CLIENT.search(text), f"{page} shows data without sign-in"
        assert server.errors() == []
    finally:
        server.stop()
