"""The viewer's scope: which clinicians' data a viewer may see, and which clinicians they may see by name.

Every query a page runs takes the scope as bound parameters ($scope_all, $scope_clinicians) and filters in
SQL, so data outside the scope never leaves DuckDB. Who gets which scope is decided by ``alliance.auth``
from the signed-in user's role and the database (a clinician: their caseload; a supervisor: theirs and their
supervisees'; a director: everything; a researcher: aggregates only). Without sign-in the demo runs with a
full-access scope and says so on every page.

Comparisons across clinicians are aggregates: a clinician's and a researcher's comparison page covers every
clinician (``compare_all``), with the clinicians outside ``named`` shown under a pseudonym
(``alliance.clinician_comparison.clinician_names``), never their code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """A set of clinician codes a viewer may see, or every clinician (``all_clinicians``).

    ``named``: the clinicians whose codes the viewer may see in comparisons (None: every clinician);
    ``you``: the viewer's own clinician code, shown as "you"; ``compare_all``: comparisons cover every
    clinician (aggregates, names as ``named`` allows), not only the scope; ``viewer``: who is looking, in
    words for the page header; ``demo``: no sign-in (the demo's full access on this machine only).
    """

    clinician_ids: tuple[str, ...] = ()
    all_clinicians: bool = False
    label: str = ""
    named: tuple[str, ...] | None = None
    you: str = ""
    compare_all: bool = False
    viewer: str = ""
    demo: bool = False

    @classmethod
    def full_access(cls, label: str = "full access (demo)") -> Scope:
        """Every clinician in the service — the demo's scope."""
        return cls(all_clinicians=True, label=label)

    @classmethod
    def clinicians(cls, *clinician_ids: str, label: str = "") -> Scope:
        """Only the named clinicians' episodes."""
        ids = tuple(sorted({str(c) for c in clinician_ids}))
        return cls(clinician_ids=ids, label=label or f"clinicians {', '.join(ids)}")

    def restrict(self, *clinician_ids: str) -> Scope:
        """The part of this scope that covers the given clinicians (a viewer never widens their scope)."""
        wanted = {str(c) for c in clinician_ids}
        allowed = wanted if self.all_clinicians else wanted & set(self.clinician_ids)
        narrowed = Scope.clinicians(
            *allowed, label=f"{self.label or 'scope'}, clinicians {', '.join(sorted(wanted))}"
        )
        return dataclasses.replace(
            narrowed, named=self.named, you=self.you, viewer=self.viewer, demo=self.demo
        )

    def covers(self, clinician_id: str) -> bool:
        """Whether this scope holds the clinician's episodes."""
        return self.all_clinicians or str(clinician_id) in self.clinician_ids

    def shows_name(self, clinician_id: str) -> bool:
        """Whether the viewer may see this clinician's code in a comparison."""
        return self.named is None or str(clinician_id) in self.named

    def params(self) -> dict[str, object]:
        """The bound SQL parameters every scoped query takes."""
        return {"scope_all": self.all_clinicians, "scope_clinicians": list(self.clinician_ids)}

    def describe_comparison(self) -> str:
        """Plain words for the comparison page: whom it compares and whom it names."""
        if not self.compare_all or self.named is None:
            return self.describe()
        named = (
            "every clinician under a pseudonym"
            if not self.named
            else ("you and the clinicians in your scope by code, every other clinician under a pseudonym")
        )
        return f"Comparing every clinician of the service (aggregates only): {named}"

    def describe(self) -> str:
        """Plain words for the page banner."""
        if self.all_clinicians:
            return f"Viewing scope: {self.label or 'all clinicians'}"
        return f"Viewing scope: {self.label}"
