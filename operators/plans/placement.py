"""Pod placement and wiring shared by every kind: node pool, storage credentials, security context.

Returns a ``Blocker`` instead of raising when a valid spec cannot be satisfied (unknown node pool, missing
Secret): the plan turns it into a condition with that reason, never an exception trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard_operator.config import OperatorConfig


@dataclass(frozen=True)
class Blocker:
    """Why the children cannot be created yet: a CamelCase reason and a message naming the field."""

    reason: str
    message: str


def pool_placement(pool: str | None, cfg: OperatorConfig, *, field: str) -> dict[str, Any] | Blocker:
    """``nodeSelector`` + ``tolerations`` of the named pool; ``{}`` when no pool is asked for."""
    if pool is None:
        return {}
    if pool not in cfg.node_pools:
        known = ", ".join(sorted(cfg.node_pools)) or "none configured"
        return Blocker("UnknownNodePool", f"{field}: node pool {pool!r} is not configured (known: {known})")
    spec = cfg.node_pools[pool]
    out: dict[str, Any] = {}
    if spec.node_selector:
        out["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        out["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations]
    return out


def missing_secret(secret_exists: bool, cfg: OperatorConfig) -> Blocker | None:
    if secret_exists:
        return None
    return Blocker(
        "MissingSecret",
        f"storage credentials Secret {cfg.storage_secret!r} does not exist in this namespace "
        "(it must hold AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    )


def storage_env(cfg: OperatorConfig) -> dict[str, Any]:
    """``env`` + ``envFrom`` that give a container the artifact store and its credentials."""
    env = [{"name": "SHIPYARD_STORAGE_ROOT", "value": cfg.storage_root}]
    if cfg.s3_endpoint_url:
        env.append({"name": "SHIPYARD_S3_ENDPOINT_URL", "value": cfg.s3_endpoint_url})
    return {"env": env, "envFrom": [{"secretRef": {"name": cfg.storage_secret}}]}


def container_security() -> dict[str, Any]:
    """Pod Security "restricted": non-root, no privilege escalation, all capabilities dropped."""
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpus: float, memory: str, gpus: int) -> dict[str, Any]:
    """Requests = limits (guaranteed QoS for accelerator pods); GPUs as ``nvidia.com/gpu`` limits."""
    amount = {"cpu": format_cpu(cpus), "memory": memory}
    if gpus:
        amount["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amount), "limits": dict(amount)}


def format_cpu(cpus: float) -> str:
    """The canonical quantity the API server would store ("2", "500m"), so a re-read compares equal."""
    if float(cpus).is_integer():
        return str(int(cpus))
    return f"{round(cpus * 1000)}m"
