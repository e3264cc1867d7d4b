"""Pure reconcile decisions: spec + observed objects -> desired children + status + events.

Nothing here talks to the API server; every function takes plain values and returns plain values, so the
whole reconcile logic is tested table-driven without a cluster (``tests/unit/operator``).
"""

from shipyard_operator.plans.base import EventNote, Owner, Plan, Ref

__all__ = ["EventNote", "Owner", "Plan", "Ref"]
