"""Fixtures shared by every test: where the shared data lives, and the real-server fixtures.

Servers (S3 through moto's server mode, our gRPC services) are started by fixtures on loopback ports;
nothing here mocks the component under test.
"""

from __future__ import annotations

import os
import pathlib

import pytest

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.ray",
    "tests.integration.rpc_harness",
    "tests.integration.kmock_harness",
    "tests.unit.inference_api.tiny_model",
    "tests.unit.inference_api.servers",
]

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The shared data folder (``../shared/data`` next to the checkout, or $SHIPYARD_SHARED_DATA)."""
    path = pathlib.Path(os.environ.get("SHIPYARD_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "INDEX.md").exists():
        pytest.fail(f"shared data not found at {path}; set SHIPYARD_SHARED_DATA")
    return path
