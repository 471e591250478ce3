"""The viewer's scope: which clinicians' data a viewer may see.

Every query a page runs takes the scope as bound parameters ($scope_all, $scope_clinicians) and filters in
SQL, so data outside the scope never leaves DuckDB. Access control (who gets which scope) comes later; the
demo runs with a full-access scope and says so on the page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """A set of clinician codes a viewer may see, or every clinician (``all_clinicians``)."""

    clinician_ids: tuple[str, ...] = ()
    all_clinicians: bool = False
    label: str = ""

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
        return Scope.clinicians(
            *allowed, label=f"{self.label or 'scope'}, clinicians {', '.join(sorted(wanted))}"
        )

    def params(self) -> dict[str, object]:
        """The bound SQL parameters every scoped query takes."""
        return {"scope_all": self.all_clinicians, "scope_clinicians": list(self.clinician_ids)}

    def describe(self) -> str:
        """Plain words for the page banner."""
        if self.all_clinicians:
            return f"Viewing scope: {self.label or 'all clinicians'}"
        return f"Viewing scope: {self.label}"
