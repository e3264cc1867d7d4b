"""Run the inference service: ``python -m shipyard_services.inference --model REF [flags]``.

One process, one engine, two APIs: OpenAI-compatible HTTP (``--http-port``) and gRPC
(``--grpc-port``). The flags are those the operator passes (operators/plans/deployment.py); each one
overrides the matching ``ShipyardConfig`` field. Prints one machine-readable line once both listen:
``READY inference grpc=HOST:PORT http=http://HOST:PORT metrics=URL``. SIGTERM/SIGINT stop it gracefully.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shipyard.config import ShipyardConfig, load_config
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.errors import ShipyardError
from shipyard.rpc.from_config import server_options, telemetry_options
from shipyard.telemetry.bootstrap import setup_telemetry
from shipyard_services.inference.server import InferenceServers
from shipyard_services.inference.serving_models import ServedModels, parse_adapter_flag

SERVICE = "inference"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m shipyard_services.inference", description=__doc__)
    p.add_argument("--model", required=True, help="smollm2-135m-instruct, model:NAME[@V], a directory or URI")
    p.add_argument("--served-model-name", help="name clients use (default: the model's name)")
    p.add_argument("--http-port", type=int, help="OpenAI HTTP port (inference.http_port; 0 = free port)")
    p.add_argument("--grpc-port", "--port", dest="grpc_port", type=int, help="gRPC port (0 = free port)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port (0 = disabled)")
    p.add_argument("--max-num-seqs", type=int, help="inference.max_num_seqs")
    p.add_argument("--kv-cache-memory-fraction", type=float, help="inference.kv_cache_memory")
    p.add_argument("--quantization", choices=["none", "int8"], help="inference.quantization")
    p.add_argument("--max-model-len", type=int, help="inference.max_model_len")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=URI",
        help="LoRA adapter to serve (repeatable)",
    )
    p.add_argument("--config", help="YAML config file (default: $SHIPYARD_CONFIG)")
    p.add_argument("--data-dir", help="local data directory (overrides storage.data_dir)")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> ShipyardConfig:
    flags: dict[str, Any] = {
        "inference.http_port": args.http_port,
        "grpc.ports.inference": args.grpc_port,
        "telemetry.metrics_port": args.metrics_port,
        "inference.max_num_seqs": args.max_num_seqs,
        "inference.kv_cache_memory": args.kv_cache_memory_fraction,
        "inference.quantization": args.quantization,
        "inference.max_model_len": args.max_model_len,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.data_dir is not None:
        overrides.update({"storage.data_dir": args.data_dir, "storage.root": ""})
    return load_config(args.config, overrides)


def build_served(args: argparse.Namespace, config: ShipyardConfig, metrics: EngineMetrics) -> ServedModels:
    """Load the model (and the ``--adapter`` ones) into a new engine."""
    from shipyard.models.registry import ModelRegistry
    from shipyard.storage.routing import RoutingStorage

    registry = ModelRegistry(RoutingStorage(config.storage), config.storage.root)
    engine = AsyncLLMEngine.from_config(
        args.model,
        config.inference,
        served_model_name=args.served_model_name,
        storage_config=config.storage,
        registry=registry,
        metrics=metrics,
    )
    served = ServedModels(engine, source=args.model, storage_config=config.storage)
    for flag in args.adapter:
        served.load_adapter(*parse_adapter_flag(flag))
    return served


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args)
    except ShipyardError as exc:
        print(f"shipyard {SERVICE}: {exc}", file=sys.stderr)
        return 2
    telemetry = setup_telemetry(telemetry_options(config, SERVICE))
    try:
        # The engine's instruments join the service's registry: one /metrics shows RPC and engine metrics.
        served = build_served(args, config, EngineMetrics(telemetry.metrics.registry))
        servers = InferenceServers.start(
            served,
            telemetry.metrics.registry,
            http_host=config.grpc.host,
            http_port=config.inference.http_port,
            grpc_options=server_options(config, SERVICE),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.metrics.meter_provider,
        )
    except ShipyardError as exc:
        print(f"shipyard {SERVICE}: {exc}", file=sys.stderr)
        telemetry.shutdown()
        return 2
    metrics_url = telemetry.endpoint.url if telemetry.endpoint else ""
    print(
        f"READY {SERVICE} grpc={servers.grpc.address} http={servers.http.url} metrics={metrics_url}"
        f" model={served.base_name}",
        flush=True,
    )
    restore = servers.grpc.install_signal_handlers()
    try:
        servers.grpc.wait_for_termination()  # returns once a signal stopped gRPC
    finally:
        restore()
        servers.stop()
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
