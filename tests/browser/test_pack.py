"""The meeting pack opened from its file in Chromium with the network cut off: no request fails, nothing is
fetched, no console error; every agenda client's section shows its heading and its three charts, drawn (the
outcome line in its colour on the outcome chart, the alliance chart not blank)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from alliance import style
from alliance.marks import MarkStore
from alliance.service import Service
from alliance.state import forget_service_metrics
from tests.browser.test_client_page import TIMEOUT
from tests.conftest import AS_OF

pytestmark = pytest.mark.browser
SUPERVISOR = "CL08"


@pytest.fixture(scope="module")
def pack(demo_db, tmp_path_factory):
    from alliance.pack import build_pack

    out = tmp_path_factory.mktemp("pack") / "meeting-pack.html"
    forget_service_metrics()
    agenda = build_pack(
        Service.open(demo_db), SUPERVISOR, AS_OF, out, MarkStore(out.with_suffix(".sqlite")), progress=False
    )
    assert len(agenda) >= 3
    return out, agenda


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _pixels_like(png: bytes, colour: str, tolerance: int = 12) -> int:
    """How many pixels of a screenshot are ``colour`` (within a tolerance per channel)."""
    target = _rgb(colour)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(
        count
        for count, rgb in image.getcolors(maxcolors=1 << 20)
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def test_pack_opens_offline_with_every_client_drawn(page: Page, pack):
    out, agenda = pack
    fetched: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def offline(route):
        if route.request.url.startswith(("data:", "blob:")) or route.request.url == out.as_uri():
            route.continue_()
        else:  # another file or any address: a pack that needs it is not self-contained
            fetched.append(route.request.url)
            route.abort()

    page.set_viewport_size({"width": 1366, "height": 768})
    page.route("**/*", offline)
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri(), timeout=TIMEOUT)
    expect(page.locator(".bk-Figure")).to_have_count(3 * len(agenda), timeout=TIMEOUT)

    for r in agenda.itertuples():
        section = page.locator(f'section[id="{r.episode_id}"]')
        expect(
            section.get_by_role("heading", name=f"Client {r.client_id} · episode {r.episode_id}")
        ).to_be_visible()
        figures = section.locator(".bk-Figure")
        expect(figures).to_have_count(3)
        assert section.locator("canvas").count() >= 3
        outcome = figures.nth(0).screenshot()
        assert _pixels_like(outcome, style.CONSTRUCT_COLOURS["outcome"]) > 30, (
            f"{r.episode_id}: no outcome line"
        )
        alliance = Image.open(io.BytesIO(figures.nth(1).screenshot())).convert("RGB")
        assert len(alliance.getcolors(maxcolors=1 << 20)) > 20, f"{r.episode_id}: the alliance chart is blank"
        # No toolbar on paper.
        assert (
            section.locator(".bk-Toolbar").count() == 0
            or not section.locator(".bk-Toolbar").first.is_visible()
        )
    assert not fetched, f"the pack asked for {fetched}"
    assert not failed, failed
    assert not errors, errors


def test_pack_button_shows_progress_while_it_builds(page: Page, served):
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{served.url}/meeting?supervisor={SUPERVISOR}", timeout=TIMEOUT)
    button = page.get_by_role("button", name="Meeting pack (HTML)")
    expect(button).to_be_visible(timeout=TIMEOUT)
    with page.expect_download(timeout=TIMEOUT) as download:
        button.click()
        # While it builds, the button says how far it is, client by client.
        expect(page.get_by_text(re.compile(r"^Building the pack… \d+ of \d+ clients$"))).to_be_visible(
            timeout=TIMEOUT
        )
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"Supervision meeting · {SUPERVISOR}" in text
    expect(page.get_by_role("button", name="Meeting pack (HTML)")).to_be_visible(timeout=TIMEOUT)
