# ruff: noqa: E501 — prose for the page, wrapped as it reads
"""Plain-language help texts shown on the pages, with the methods they describe cited."""

from alliance.flags import agenda_help, caseload_help

CLIENT_PAGE_HELP = """
**Outcome (top).** The outcome measure's total by session. The dashed grey line is the clinical cut-off
(e.g. ORS below 25, PHQ-9 10 or more is the clinical range). Each point's colour *and shape* give the status at
that session: ▲ red = not on track (worse than the 10th percentile of the expected course, or reliably worse
than at intake), ◆ amber = at risk (worse than the 25th percentile), ● green = on track, ■ grey = functional
(non-clinical at intake and still). Session 1 is the intake.

**Expected course (blue bands).** What happened to this service's own closed episodes with a similar intake
score (±1 point, widened until at least 30 episodes): light band 10th–90th percentile, darker band 25th–75th,
dotted line the median, smoothed over log(session) (after Finch, Lambert & Schaalje 2001). Where too few
similar episodes exist there is no band, and status falls back to Lambert's rational rule (red if reliably
worse, amber without reliable improvement by session 4).

**Reliable-change band (grey).** Intake score ± the instrument's reliable change (e.g. ORS 5 points, PHQ-9 6):
a later score inside it is not reliably different from the intake (Jacobson & Truax 1991; fixed thresholds as
in NHS Talking Therapies).

**Sudden gains and losses (thick green or red stroke).** Candidate events by Tang & DeRubeis (1999) with the
semantics of the R package suddengains: a change of at least the reliable change between two sessions, at
least 25 % of the symptom severity, and stable against the three sessions either side. Short noisy scales
give false positives: treat them as questions, not verdicts.

**Alliance (middle).** The alliance measure (SRS or WAI-SR) by session, with the cut-off where one is validated
(SRS below 36; WAI-SR has none, so its flags compare with the client's own first sessions). Amber points are
below the cut-off. Small grey ▼ marks are dips (lower than the previous rating): shown, not an alarm.
**✕ marks a rupture**: a rating at least k = 2 SD below the mean of up to five earlier ratings (SD = the larger
of the client's own and the service's session-to-session SD). The shaded span runs from the rupture to its
repair: green = repaired (back within 1 SD of the baseline within 3 ratings), red = not repaired, amber =
still open (fewer than 3 later ratings); a span not repaired stops at the last rating (nothing is known after
it). These are our rules, built on Stiles et al. 2004, Strauss et al.
2006 and Gumz et al. 2012; unrepaired ruptures predict worse outcome and dropout (Eubanks, Muran & Safran
2018). Self-report alliance scales under-detect ruptures: a quiet chart is not proof of a good alliance, and
SRS ratings persistently at 39–40 can mean politeness (ceiling).

**Items (optional).** SRS's four items or WAI-SR's Task, Bond and Goal subscales, as lines or a heat strip:
any SRS item below about 9 is worth a conversation.

**Events (bottom).** Missing ratings (grey), alerts (red status, unrepaired or open ruptures, sudden losses)
and how the episode ended (■ planned, ⊠ unplanned). Methods and thresholds in force are listed under the
summary; `docs/metrics.md` describes every rule.
"""

CASELOAD_PAGE_HELP = f"""
**Episodes.** One row per episode (open ones by default; switch on *Show closed episodes* for the rest), flagged
ones first. Flags, strongest first: {caseload_help()}. Status colours come with a symbol (▲ red, ◆ amber,
● green, ■ functional). Click a client code to open the episode on the client page.

**Headline figures.** Counts and shares with their n and a 95 % Wilson interval: a share of a handful of
episodes is uncertain, and the interval says how much. Reliably improved and recovered are among closed
episodes with at least two ratings; dropout among closed episodes (closed without a planned ending before
reliable improvement).

**Caseload picture.** Each thin line is one episode's change from its intake score (up is better for every
measure); red lines are flagged episodes. The blue bands are the change of all the service's closed episodes on
the same measure at each session (10–90th and 25–75th percentiles, dotted median). Click a line to open that
client.

**This caseload by quarter.** The same figures by calendar quarter, for self-review or supervision: closed episodes by the quarter of their
last session, alliance by the quarter of the session. Small quarters move a lot by chance.
"""

COMPARISON_PAGE_HELP = """
**How to read this page.** Each dot in the **funnel plot** is a clinician: the chosen rate (or effect size)
against the number of closed episodes it rests on. The blue line is the service value; the dashed and dotted
curves are the 95 % and 99.8 % control limits around it (Spiegelhalter 2005), wide for small caseloads and
narrow for large ones. **Inside the funnel means no evidence of a difference** from the service — most
clinicians should be there by chance alone; outside the 99.8 % limits is the only "different" there is. Outside
on the better side is a green ▲, on the worse side a red ▼, grey ● inside — in the measure's own direction:
above the funnel is better for improvement and recovery, worse for deterioration and dropout. The **caterpillar plot** shows each
clinician's mean improvement shrunk towards the service mean in proportion to how little data it rests on
(empirical Bayes from a random-intercept model), with 95 % intervals; overlapping intervals mean the ranking
between them is not reliable. The therapist-effect ICC is the share of outcome variance between clinicians
(typically about 5 %, Baldwin & Imel 2013). The **table** gives every rate with its 95 % Wilson interval and n,
the pre–post effect size (mean improvement ÷ SD of the service's intake scores) and the severity-adjusted
effect size (ACORN: improvement adjusted for intake severity, so severe caseloads are not penalised by
regression to the mean). Effect sizes count closed episodes with two or more ratings and a clinical-range
intake. Clinicians with fewer closed episodes than the minimum (default 5, as ACORN requires) are greyed and
not ranked.
"""

MEETING_PAGE_HELP = f"""
**The agenda.** For the chosen supervisor and meeting date, the open episodes of each supervisee, ranked by the
strongest reason to discuss them (docs/methods.md §11): {agenda_help()}.
Each reason says what happened, at which session and on which date, using the same rules as the client and
caseload pages. A meeting date in the past shows the data as they stood on that day.

**Discussed.** Mark a client as discussed with an optional short action (what to try, e.g. "ask for feedback
on goals") — never clinical notes about the client. A client discussed and not worse since moves down at the
next meeting; the agenda shows when each client was last discussed. Marks are kept in a small file beside the
ratings database (which stays read-only).

**Meeting pack.** One self-contained HTML file (charts included, opens without a server or network) with the
agenda and each agenda client's charts and summary; a PDF of the same when Chromium is available. From the
command line: `alliance pack --supervisor CODE --date YYYY-MM-DD --out pack.html [--pdf]`.
"""
