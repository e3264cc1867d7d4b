"""``python -m shipyard_operator``: run the operator (leader-elected through kopf peering by default).

``--standalone`` skips peering for development against a personal cluster; with peering, several replicas
may run and only the one with the highest ``--priority`` acts (the chart installs the ClusterKopfPeering).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from shipyard.errors import ShipyardError
from shipyard_operator.config import load_operator_config
from shipyard_operator.handlers import build_registry, configure
from shipyard_operator.kube import KubeClient, load_api_client
from shipyard_operator.reconcile import Reconciler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard_operator", description=__doc__)
    parser.add_argument("--config", help="operator config YAML (images, storage, node pools)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    parser.add_argument("--namespace", action="append", default=[], help="watch only these (default: all)")
    parser.add_argument("--standalone", action="store_true", help="no peering/leader election (dev only)")
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    parser.add_argument("--peering", default="shipyard-operator", help="ClusterKopfPeering name")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness probe endpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        cfg = load_operator_config(args.config)
        reconciler = Reconciler(KubeClient(load_api_client(args.kubeconfig)), cfg)
    except ShipyardError as exc:
        print(f"shipyard-operator: {exc}", file=sys.stderr)
        return 2
    settings = kopf.OperatorSettings()
    configure(settings, peering_name=args.peering)
    asyncio.run(
        kopf.operator(
            registry=build_registry(reconciler),
            settings=settings,
            standalone=args.standalone,
            priority=args.priority,
            peering_name=args.peering,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
