"""The reasons to look at a client, in one registry: the caseload's flags, the meeting agenda's reasons, the
pack's legend and the help text all read it (docs/methods.md §11).

Each entry says what the reason is called, where it ranks on the agenda (strongest first), the rule in
plain words, and whether the caseload shows it as a flag and counts it as "needs attention". A new reason is
one entry here and one detector (``alliance.caseload.caseload_table`` for caseload flags, and
``alliance.agenda.episode_reasons`` for the words with the session and date it arose).
"""

from __future__ import annotations

from dataclasses import dataclass

#: A client not seen for this many days while not reliably improved is a dropout risk (docs/methods.md §11).
NO_SESSION_DAYS = 21


@dataclass(frozen=True)
class Reason:
    """One reason to discuss a client."""

    key: str
    rank: int  # agenda order: 1 is the strongest reason
    label: str  # short words for the agenda, the pack legend and the help
    rule: str  # the rule that raises it, in words a supervisor reads aloud
    caseload: str | None = None  # the words in the caseload's flag column; None: not a caseload flag
    attention: bool = True  # a caseload flag that marks the episode as needing attention


REASONS: tuple[Reason, ...] = (
    Reason(
        "deterioration",
        1,
        "reliable deterioration",
        "worse than at intake by at least the reliable change",
        caseload="reliably deteriorated",
    ),
    Reason(
        "not_on_track",
        2,
        "not on track (red)",
        "worse than the 10th percentile of the expected course for the intake score",
        caseload="not on track",
    ),
    Reason(
        "unrepaired_rupture",
        3,
        "unrepaired rupture",
        "the alliance fell at least k SD below its baseline and has not come back within 3 ratings, "
        "or the episode ended or is still within that window",
        caseload="rupture not repaired",
    ),
    Reason(
        "below_cutoff",
        4,
        "alliance below cut-off at the last two ratings",
        "the last two alliance ratings below the cut-off: SRS 36; WAI-SR the client's own baseline rule",
    ),
    Reason(
        "sudden_loss",
        5,
        "sudden loss",
        "a candidate sudden loss by the Tang & DeRubeis criteria, mirrored",
        caseload="sudden loss",
    ),
    Reason("at_risk", 6, "at risk (yellow)", "worse than the 25th percentile of the expected course"),
    Reason(
        "no_recent_session",
        7,
        f"no session for {NO_SESSION_DAYS}+ days while not improved",
        f"no session for {NO_SESSION_DAYS} days or more while not reliably improved: a dropout risk",
        caseload=f"no session for {NO_SESSION_DAYS}+ days",
    ),
    Reason(
        "late_decline",
        8,
        "late alliance decline",
        "the slope of the last four alliance ratings falls faster than one reference SD per session",
    ),
    Reason(
        "ceiling",
        9,
        "ceiling alliance with no improvement",
        "80 % or more SRS ratings at 39–40, possibly politeness; on the agenda only without reliable "
        "improvement",
        caseload="ceiling alliance",
        attention=False,  # a soft signal: shown, but not highlighted on its own
    ),
)

BY_KEY: dict[str, Reason] = {r.key: r for r in REASONS}
#: Caseload flags in agenda order: key → words.
CASELOAD_FLAGS: dict[str, str] = {r.key: r.caseload for r in REASONS if r.caseload}


def legend() -> str:
    """The reasons, strongest first, as one line (the pack and the meeting page)."""
    return " · ".join(f"{r.rank}. {r.label}" for r in REASONS)


def caseload_help() -> str:
    """The caseload flags with their rules, for the page's help text."""
    return "; ".join(f"**{r.caseload}**: {r.rule}" for r in REASONS if r.caseload)


def agenda_help() -> str:
    """The agenda reasons, strongest first, for the meeting page's help text."""
    return "; ".join(r.label for r in REASONS)
