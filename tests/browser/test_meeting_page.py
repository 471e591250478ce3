"""The meeting pack in headless Chromium with no network (file://): every agenda client's charts are drawn;
its PDF has a page or more per agenda client. The served meeting page: the agenda, a client's charts opened in
place and back, and a "Discussed" mark that shows on the agenda."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

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


def test_pack_opens_offline_and_shows_every_chart(page: Page, pack):
    out, agenda = pack
    remote: list[str] = []

    def offline(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri(), timeout=TIMEOUT)
    expect(page.get_by_text(f"Supervision meeting · {SUPERVISOR}")).to_be_visible(timeout=TIMEOUT)
    # Outcome, alliance and events strip for every agenda client, each drawn on a canvas.
    expect(page.locator(".bk-Figure")).to_have_count(3 * len(agenda), timeout=TIMEOUT)
    assert page.locator("canvas").count() >= 3 * len(agenda)
    for r in agenda.itertuples():  # its agenda link and its section's heading
        heading = re.compile(rf"^Client {r.client_id} · episode {r.episode_id}$")
        expect(page.get_by_text(heading)).to_have_count(2)
    assert not remote, f"the pack asked the network for {remote}"
    assert not errors, errors


def test_pack_pdf_has_a_page_per_agenda_client(pack, tmp_path):
    from alliance.pack import print_pdf

    out, agenda = pack
    pdf = print_pdf(out, tmp_path / "meeting-pack.pdf")
    try:
        from pypdf import PdfReader

        pages = len(PdfReader(str(pdf)).pages)
    except ImportError:  # pypdf is not a dependency: count the page objects
        pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= len(agenda) + 1  # the agenda, then each client from a new page


def test_meeting_page_opens_a_client_in_place_and_marks_discussed(page: Page, served):
    page.goto(f"{served.url}/meeting?supervisor={SUPERVISOR}", timeout=TIMEOUT)
    expect(page.get_by_text(re.compile(rf"^Agenda for {SUPERVISOR}"))).to_be_visible(timeout=TIMEOUT)
    first = page.get_by_text(re.compile(r"^#1 · Client \S+ · episode \S+$"))
    expect(first).to_be_visible(timeout=TIMEOUT)
    m = re.match(r"#1 · Client (\S+) · episode (\S+)", first.inner_text())
    client, episode = m.groups()

    page.get_by_role("button", name="Open charts").first.click()
    expect(page.get_by_text(re.compile(rf"^Client {client} · episode {episode}$"))).to_be_visible(
        timeout=TIMEOUT
    )
    expect(page.locator(".bk-Figure")).to_have_count(3, timeout=TIMEOUT)
    page.get_by_role("button", name="Back to the agenda").click()
    expect(first).to_be_visible(timeout=TIMEOUT)

    page.get_by_role("textbox", name="Action note").first.fill("try eliciting feedback on goals")
    page.get_by_role("button", name="Discussed").first.click()
    expect(page.get_by_text(re.compile(r"try eliciting feedback on goals"))).to_be_visible(timeout=TIMEOUT)
    # Discussed today and not worse since: it moves down the agenda.
    item = page.get_by_text(re.compile(rf"^#\d+ · Client {client} · episode {episode}$"))
    expect(item).to_be_visible()
    assert not item.inner_text().startswith("#1 ")
