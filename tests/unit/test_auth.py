"""The users file (hashed passwords, add/list/remove), each role's scope on the demo database, which pages a
role may open, and the pseudonyms of the comparison page (alliance.auth, alliance.clinician_comparison)."""

from __future__ import annotations

import io
import json
import re
import stat

import duckdb
import pandas as pd
import pytest

from alliance import auth
from alliance.auth import (
    AccessRefused,
    Identity,
    UsersError,
    add_user,
    authenticate,
    check_page,
    hash_password,
    load_users,
    safe_next,
    scope_for,
    users_path,
    verify_password,
)
from alliance.cli import main
from alliance.clinician_comparison import ComparisonFilter, clinician_names, rename_clinicians
from alliance.datastore import DataStore
from alliance.db import open_database

PASSWORD = "a long enough passphrase"


# -- passwords -----------------------------------------------------------------------------------------------
def test_a_password_is_stored_as_a_salted_scrypt_hash():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second, "the same password hashed twice must differ (a random salt each time)"
    for stored in (first, second):
        kind, n, r, p, salt, key = stored.split("$")
        assert kind == "scrypt" and int(n) >= 2**14 and PASSWORD not in stored
        assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", first)
    assert not verify_password("", first)


@pytest.mark.parametrize(
    "stored", ["", "plain", PASSWORD, "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$AA==", "md5$abc"]
)
def test_a_malformed_hash_never_matches(stored):
    assert not verify_password(PASSWORD, stored)
    assert not verify_password(stored, stored)


def test_too_short_a_password_is_refused():
    with pytest.raises(UsersError, match="at least"):
        hash_password("short")


def test_authenticate(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "ana", "clinician", password=PASSWORD, clinician_id="CL01")
    add_user(path, "idp", "director", password=None, email="boss@example.org")
    users = load_users(path)
    assert authenticate(users, "ana", PASSWORD).name == "ana"
    assert authenticate(users, "ana", "wrong password") is None
    assert authenticate(users, "nobody", PASSWORD) is None
    assert authenticate(users, "idp", "") is None, "a user without a password never signs in with one"
    assert authenticate(users, "ana", "x" * 5000) is None


# -- the users file ------------------------------------------------------------------------------------------
def test_the_users_file_holds_no_password_and_only_its_owner_reads_it(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "ana", "clinician", password=PASSWORD, clinician_id="CL01")
    text = path.read_text()
    assert PASSWORD not in text
    assert json.loads(text)["users"]["ana"]["password"].startswith("scrypt$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_plain_password_in_the_file_is_refused(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps({"format": auth.FORMAT, "users": {"x": {"role": "director", "password": "pw"}}})
    )
    with pytest.raises(UsersError, match="not a scrypt hash"):
        load_users(path)


@pytest.mark.parametrize(
    "name, role, clinician, problem",
    [
        ("ana", "clinician", "", "needs a clinician code"),
        ("ana", "supervisor", "", "needs a clinician code"),
        ("ana", "director", "CL01", "has no clinician code"),
        ("ana", "admin", "", "is not one of"),
        ("a b", "director", "", "user name"),
        ("<script>", "director", "", "user name"),
        ("", "director", "", "user name"),
    ],
)
def test_a_bad_user_is_refused(tmp_path, name, role, clinician, problem):
    with pytest.raises(UsersError, match=problem):
        add_user(tmp_path / "u.json", name, role, password=PASSWORD, clinician_id=clinician)
    assert not (tmp_path / "u.json").exists()


def test_users_path_is_beside_the_database_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.USERS_ENV, raising=False)
    assert users_path(tmp_path / "service.duckdb") == tmp_path / "service.users.json"
    monkeypatch.setenv(auth.USERS_ENV, str(tmp_path / "elsewhere.json"))
    assert users_path(tmp_path / "service.duckdb") == tmp_path / "elsewhere.json"


def run(capsys, monkeypatch, *argv, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_alliance_users_add_list_remove(tmp_path, demo_db, capsys, monkeypatch):
    users = str(tmp_path / "users.json")
    (clinician,) = (
        duckdb.connect(str(demo_db), read_only=True)
        .execute("SELECT min(clinician_id) FROM clinician")
        .fetchone()
    )
    common = ("--db", str(demo_db), "--users", users)
    code, out, err = run(
        capsys, monkeypatch, "users", "add", "ana", "--role", "clinician", "--clinician", clinician,
        "--password-stdin", *common, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, err
    assert "added ana" in out and PASSWORD not in out + err
    code, out, err = run(
        capsys, monkeypatch, "users", "add", "ana", "--role", "director", "--no-password", *common
    )
    assert code == 2 and "exists already" in err
    code, out, err = run(
        capsys, monkeypatch, "users", "add", "ana", "--role", "director", "--replace", "--password-stdin",
        *common, stdin=PASSWORD + "!\n",
    )  # fmt: skip
    assert code == 0 and load_users(users)["ana"].role == "director"
    assert verify_password(PASSWORD + "!", load_users(users)["ana"].password)
    code, out, err = run(capsys, monkeypatch, "users", "list", *common)
    assert code == 0 and "ana: director" in out and "scrypt" not in out and PASSWORD not in out
    code, out, err = run(capsys, monkeypatch, "users", "remove", "ana", *common)
    assert code == 0 and load_users(users) == {}
    code, out, err = run(capsys, monkeypatch, "users", "remove", "ana", *common)
    assert code == 2 and "no user 'ana'" in err


def test_alliance_users_checks_the_code_against_the_database(tmp_path, demo_db, capsys, monkeypatch):
    users = str(tmp_path / "users.json")
    con = duckdb.connect(str(demo_db), read_only=True)
    (not_supervising,) = con.execute(
        "SELECT min(clinician_id) FROM clinician WHERE clinician_id NOT IN (SELECT supervisor_id FROM team)"
    ).fetchone()
    con.close()
    common = ("--db", str(demo_db), "--users", users, "--password-stdin")
    code, _, err = run(
        capsys, monkeypatch, "users", "add", "x", "--role", "clinician", "--clinician", "CL-NONE", *common,
        stdin=PASSWORD,
    )  # fmt: skip
    assert code == 2 and "no clinician 'CL-NONE'" in err
    code, _, err = run(
        capsys, monkeypatch, "users", "add", "x", "--role", "supervisor", "--clinician", not_supervising,
        *common, stdin=PASSWORD,
    )  # fmt: skip
    assert code == 2 and "supervises no team" in err
    code, _, err = run(
        capsys, monkeypatch, "users", "add", "x", "--role", "director", *common, stdin="short\n"
    )
    assert code == 2 and "at least" in err
    assert not (tmp_path / "users.json").exists()


# -- roles and scopes ----------------------------------------------------------------------------------------
def signed_in(role, clinician_id="") -> Identity:
    return Identity(name="someone", role=role, clinician_id=clinician_id, signed_in=True)


def test_each_role_gets_its_scope(demo_db):
    db = open_database(demo_db)
    con = duckdb.connect(str(demo_db), read_only=True)
    supervisor, team = con.execute(
        "SELECT supervisor_id, team_id FROM team ORDER BY team_id LIMIT 1"
    ).fetchone()
    supervised = {
        c
        for (c,) in con.execute(
            "SELECT clinician_id FROM clinician JOIN team USING (team_id) WHERE supervisor_id = ?",
            [supervisor],
        ).fetchall()
    }
    (clinician,) = con.execute(
        "SELECT min(clinician_id) FROM clinician WHERE team_id <> ? AND clinician_id NOT IN "
        "(SELECT supervisor_id FROM team)",
        [team],
    ).fetchone()
    con.close()

    mine = scope_for(signed_in("clinician", clinician), db)
    assert mine.clinician_ids == (clinician,) and not mine.all_clinicians
    assert mine.named == (clinician,) and mine.you == clinician and mine.compare_all

    theirs = scope_for(signed_in("supervisor", supervisor), db)
    assert set(theirs.clinician_ids) == supervised | {supervisor} and not theirs.all_clinicians
    assert set(theirs.named) == set(theirs.clinician_ids) and theirs.you == supervisor
    assert clinician not in theirs.clinician_ids

    director = scope_for(signed_in("director"), db)
    assert director.all_clinicians and director.named is None

    researcher = scope_for(signed_in("researcher"), db)
    assert researcher.named == () and researcher.compare_all and not researcher.you

    demo = scope_for(Identity(name="demo", role="demo"), None)
    assert demo.all_clinicians and demo.demo and demo.named is None


PAGES = ["client", "caseload", "meeting", "comparison"]
ALLOWED = {
    "clinician": {"client", "caseload", "comparison"},
    "supervisor": {"client", "caseload", "meeting", "comparison"},
    "director": set(PAGES),
    "researcher": {"comparison"},
    None: set(),
}


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize("page", PAGES)
def test_which_role_opens_which_page(role, page):
    identity = signed_in(role, "CL01" if role in ("clinician", "supervisor") else "")
    if page in ALLOWED[role]:
        check_page(identity, page)
    else:
        with pytest.raises(AccessRefused) as refused:
            check_page(identity, page)
        assert refused.value.problem and refused.value.title


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/client?client=C-1", "/client?client=C-1"),
        ("/", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_a_local_path_is_returned_to_after_sign_in(url, expected):
    assert safe_next(url) == expected


def test_sign_in_refuses_to_start_without_a_secret_or_a_user(tmp_path, monkeypatch):
    monkeypatch.delenv("PANEL_COOKIE_SECRET", raising=False)
    monkeypatch.delenv("BOKEH_COOKIE_SECRET", raising=False)
    path = tmp_path / "users.json"
    with pytest.raises(UsersError, match="cookie secret"):
        auth.enable_sign_in(path, argv=["panel", "serve"])
    with pytest.raises(UsersError, match="cookie secret"):
        auth.enable_sign_in(path, argv=["panel", "serve", "--cookie-secret", "short"])
    secret = ["--cookie-secret", "s" * 40]
    with pytest.raises(UsersError, match="no users file"):
        auth.enable_sign_in(path, argv=secret)
    add_user(path, "idp", "director", password=None)
    with pytest.raises(UsersError, match="no user with a password"):
        auth.enable_sign_in(path, argv=secret)


# -- who is named in a comparison ------------------------------------------------------------------------
CODES = [f"CL{i:02d}" for i in range(1, 31)]


def test_clinician_names_you_named_and_pseudonyms():
    key = b"k" * 32
    names = clinician_names(CODES, named=("CL03", "CL04"), you="CL03", key=key)
    assert names["CL03"] == "you (CL03)" and names["CL04"] == "CL04"
    hidden = {c: n for c, n in names.items() if c not in ("CL03", "CL04")}
    assert all(re.fullmatch(r"clinician [A-Z]{1,2}", n) for n in hidden.values())
    assert len(set(hidden.values())) == len(hidden), "two clinicians share a pseudonym"
    # Stable for the same key (data version), whatever the viewer; not in the codes' order.
    assert clinician_names(CODES, named=(), key=key)["CL10"] == names["CL10"]
    letters = [clinician_names(CODES, named=(), key=key)[c] for c in CODES]
    assert letters != sorted(letters, key=lambda n: (len(n), n))
    assert clinician_names(CODES, named=(), key=b"o" * 32) != clinician_names(CODES, named=(), key=key)
    assert clinician_names(CODES, named=None, key=key) == {c: c for c in CODES}


def test_renamed_comparison_frames_carry_no_hidden_code(demo_db):
    store = DataStore.open(demo_db)
    change = store.metrics().episode_change
    instrument = change["instrument"].value_counts().index[0]
    frames = store.comparison(ComparisonFilter(instrument=instrument))
    codes = sorted(store.metrics().episode_end["clinician_id"].unique())
    you = codes[0]
    names = clinician_names(codes, named=(you,), you=you, key=b"x" * 32)
    renamed = rename_clinicians(frames, names)
    text = []
    for value in renamed.values():
        if isinstance(value, pd.DataFrame):
            assert "episode_id" not in value.columns and "client_id" not in value.columns
            text.append(value.to_csv())
        elif value is not None and hasattr(value, "table"):
            text.append(value.table.to_csv())
    shown = set(re.findall(r"\bCL\d\d\b", "\n".join(text)))
    assert shown == {you}
    assert f"you ({you})" in renamed["table"]["clinician_id"].tolist()
    # The numbers are the same rows, only renamed.
    assert renamed["table"]["closed"].tolist() == frames["table"]["closed"].tolist()
    assert renamed["rates"].attrs == frames["rates"].attrs
    assert frames["table"]["clinician_id"].str.fullmatch(r"CL\d\d").all(), "the cached frames keep the codes"


def test_an_identity_providers_user_is_found_by_name_or_email(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "ana", "clinician", password=None, clinician_id="CL01", email="Ana@Example.org")
    add_user(path, "dora", "director", password=PASSWORD)
    users = load_users(path)
    assert auth.find_user(users, "ana").name == "ana"
    assert auth.find_user(users, "ana@example.org").name == "ana"  # the provider's e-mail claim
    assert auth.find_user(users, "someone", email="ANA@example.org").name == "ana"
    assert auth.find_user(users, "mallory@example.org") is None
    assert auth.find_user(users, None) is None


def test_the_meeting_pack_holds_only_the_scope_even_for_another_supervisor(demo_db):
    """The pack is built from the page's scoped service: a supervisor's pack holds their team's clients, and
    even with another supervisor forced into the page's state (the widget refuses it) it holds none of
    theirs."""
    from alliance.pages import meeting_page

    con = duckdb.connect(str(demo_db), read_only=True)
    supervisors = [s for (s,) in con.execute("SELECT supervisor_id FROM team ORDER BY team_id").fetchall()]
    mine, other = supervisors[0], supervisors[1]

    def clients_of(supervisor):
        return {
            c
            for (c,) in con.execute(
                "SELECT DISTINCT e.client_id FROM episode e JOIN clinician USING (clinician_id) "
                "JOIN team t USING (team_id) WHERE t.supervisor_id = ?",
                [supervisor],
            ).fetchall()
        }

    team_clients, other_clients = clients_of(mine), clients_of(other)
    con.close()
    scope = scope_for(signed_in("supervisor", mine), open_database(demo_db))
    page = meeting_page(demo_db, scope)
    assert page.state.supervisor == mine
    assert page.state.param.supervisor.objects == [mine]
    pack = page._pack_html().getvalue().decode()
    shown = set(re.findall(r"\bC-[0-9a-f]{6}\b", pack))
    assert shown and shown <= team_clients
    page.state.supervisor = other  # what no widget can do: the data are still read within the scope
    forced = set(re.findall(r"\bC-[0-9a-f]{6}\b", page._pack_html().getvalue().decode()))
    assert not forced & (other_clients - team_clients)
