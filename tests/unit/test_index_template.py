"""The index of the served pages (``alliance/templates/index.html``, rendered by Tornado as ``panel serve
--index`` renders it): who is signed in and a way to sign out, or the demo's banner without sign-in; the
pages the viewer's role opens; a signed-in name from an identity provider shown as text, never as markup."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado.template import Loader

from alliance import auth, config

ITEMS = [
    ("/caseload", "caseload"),
    ("/client", "client"),
    ("/comparison", "comparison"),
    ("/meeting", "meeting"),
]


def render(current_user) -> str:
    loader = Loader(str(config.REPO_ROOT / "alliance" / "templates"))  # Tornado's default: values escaped
    handler = SimpleNamespace(current_user=current_user, get_secure_cookie=lambda name: None)
    return loader.load("index.html").generate(handler=handler, items=ITEMS, prefix="").decode("utf-8")


@pytest.fixture
def signed_in(monkeypatch):
    users = {"ana": auth.User(name="ana", role="clinician", clinician_id="CL01")}
    monkeypatch.setattr(auth, "sign_in_enabled", lambda: True)
    monkeypatch.setattr(auth, "_signed_in_users", lambda db_path=None: users)


def test_the_index_says_who_is_signed_in_and_offers_sign_out(signed_in):
    html = render(b"ana")
    assert "Signed in as <b>ana (clinician)</b>" in html
    assert '<a href="logout">Sign out</a>' in html
    assert "Demo" not in html
    assert 'href="/meeting"' not in html and 'href="/client"' in html  # a clinician's pages only


def test_a_name_the_users_file_does_not_hold_is_shown_as_text_with_no_role(signed_in):
    html = render("<img src=x onerror=alert(1)>")
    assert "Signed in as <b>&lt;img src=x onerror=alert(1)&gt; (no role)</b>" in html
    assert "<img" not in html
    assert "No page of Alliance is open to your account" in html


def test_without_sign_in_the_index_shows_the_demo_banner_and_every_page(monkeypatch):
    monkeypatch.setattr(auth, "sign_in_enabled", lambda: False)
    html = render(None)
    assert "Demo — no sign-in: full access, this machine only" in html
    assert "Sign out" not in html
    assert all(f'href="{slug}"' in html for slug, _ in ITEMS)
