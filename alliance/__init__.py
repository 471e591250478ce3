"""Alliance: alliance and outcome monitoring for clinical supervision in psychotherapy."""

__version__ = "0.1.0"
