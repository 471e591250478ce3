"""Reading a `panel serve` log: a browser that goes away while the server writes to it is not a failure; any
other traceback is."""

from alliance.serving import server_errors

CLIENT_WENT_AWAY = """2026-11-30 08:44:19,900 WebSocket connection opened
2026-11-30 08:44:20,010 Task exception was never retrieved
future: <Task finished name='Task-812' coro=<WebSocketProtocol13.write_message.<locals>.wrapper() done> exception=WebSocketClosedError()>
Traceback (most recent call last):
  File "/x/tornado/websocket.py", line 1140, in wrapper
    await fut
tornado.iostream.StreamClosedError: Stream is closed

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/x/tornado/websocket.py", line 1142, in wrapper
    raise WebSocketClosedError()
tornado.websocket.WebSocketClosedError
2026-11-30 08:44:20,015 WebSocket connection opened
"""

PAGE_FAILED = """2026-11-30 08:45:00,000 Error running application handler
Traceback (most recent call last):
  File "/x/alliance/pages.py", line 10, in build
    raise KeyError("episode")
KeyError: 'episode'
2026-11-30 08:45:01,000 WebSocket connection closed: code=1001, reason=None
"""


def test_a_browser_going_away_is_not_an_error():
    assert server_errors(CLIENT_WENT_AWAY) == []


def test_a_failing_page_is_an_error_even_beside_a_closed_socket():
    errors = server_errors(CLIENT_WENT_AWAY + PAGE_FAILED)
    assert len(errors) == 1 and "KeyError: 'episode'" in errors[0]


def test_a_traceback_without_a_named_exception_counts():
    assert (
        len(server_errors("2026-11-30 08:45:00,000 boom\nTraceback (most recent call last):\n  ...\n")) == 1
    )
