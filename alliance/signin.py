"""The sign-in hook of ``panel serve``: ``panel serve dashboards/*.ipynb --auth-module alliance/signin.py
--cookie-secret SECRET`` (or ``make serve USERS=path/to/users.json``).

Bokeh loads this file as the server's auth module: every page, websocket and the index then need the signed
``user`` cookie that the login page sets after checking the password against the users file
($ALLIANCE_USERS, else the file beside $ALLIANCE_DB). The server refuses to start without a cookie secret of
at least 32 characters or without a users file that holds a user with a password. See ``alliance.auth``.
"""

from __future__ import annotations

from alliance.auth import UsersError, _handlers, enable_sign_in, get_user, login_url, logout_url

try:
    USERS_FILE = enable_sign_in()
except UsersError as exc:  # one clear line, then panel serve stops
    raise SystemExit(f"alliance sign-in: {exc}") from None

LoginHandler, LogoutHandler = _handlers()

__all__ = ["LoginHandler", "LogoutHandler", "get_user", "login_url", "logout_url"]
