"""A writer process for the audit trail's concurrency test (a module of its own: a spawned process imports
only this and alliance.audit, not the test module and its fixtures)."""

from __future__ import annotations

from alliance.audit import AuditLog


def append_many(path: str, writer: int, start, n: int = 25) -> None:
    """Wait for ``start``, then append ``n`` view records as ``writer<writer>``."""
    start.wait()
    log = AuditLog(path)
    for i in range(n):
        log.record(
            "view_client", user=f"writer{writer}", client=f"C-{writer}-{i}", episode=f"E{writer}{i:03d}"
        )
