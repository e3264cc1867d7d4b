"""Run the agents service: ``python -m shipyard_services.agents [--port N] [--agent NAME --agent-spec PATH]``.

Agents, sessions and messages live in ``agents.database_url`` (SQLite under the data dir by default,
PostgreSQL on a cluster), so sessions survive restarts and replicas share them. An agent's
``spec.model.deployment`` resolves to a local inference server (``agents.deployments: local``) or to
the deployment's cluster Service (``cluster``).

The operator runs one service per Agent with ``--agent NAME --agent-spec PATH --grpc-port PORT``
(``operators/contract.py``): the manifest at PATH (its model already resolved to a URL) is registered,
or its spec updated, before the service reports READY. Every other flag is ``service_main``'s.
"""

from __future__ import annotations

import argparse
import functools
import sys

from shipyard.rpc.service_main import service_main
from shipyard_services.agents.server import build


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--agent", help="the Agent this service serves (must match the manifest's name)")
    parser.add_argument("--agent-spec", help="Agent manifest (JSON/YAML) to register at start")
    parser.add_argument("--grpc-port", type=int, help="gRPC port (the operator's name for --port)")
    own, rest = parser.parse_known_args(argv)
    if own.grpc_port is not None:
        rest += ["--port", str(own.grpc_port)]
    return service_main("agents", functools.partial(build, agent=own.agent, agent_spec=own.agent_spec), rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
