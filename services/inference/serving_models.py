"""What the server serves: the engine's base model and its LoRA adapters, by the names requests use.

Both edges resolve a request's ``model`` here (base name or adapter name → the engine's adapter
argument) and load/unload adapters here, so an adapter loaded over gRPC is listed and usable over HTTP
at once. Adapter URIs may be local or remote (``s3://``); remote ones are copied to a local directory
first, because the engine reads PEFT files from disk.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import tempfile
import threading
from typing import Any

from shipyard.config import StorageConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage import open_storage, parse
from shipyard.wire.inference import ModelInfo

__all__ = ["ServedModels", "parse_adapter_flag"]

_ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def parse_adapter_flag(value: str) -> tuple[str, str]:
    """``name=uri`` (the ``--adapter`` flag) → ``(name, uri)``."""
    name, sep, uri = value.partition("=")
    if not sep or not name or not uri:
        raise InvalidArgument.field("adapter", f"{value!r} must look like name=uri")
    return name, uri


class ServedModels:
    """The engine plus the name and source of everything it serves; thread-safe."""

    def __init__(
        self,
        engine: AsyncLLMEngine,
        *,
        source: str = "",
        storage_config: StorageConfig | None = None,
    ) -> None:
        self.engine = engine
        self._source = source
        self._storage_config = storage_config
        self._adapter_sources: dict[str, str] = {}
        self._downloads: dict[str, pathlib.Path] = {}
        self._lock = threading.Lock()

    @property
    def base_name(self) -> str:
        return self.engine.model_name

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def resolve(self, model: str | None, *, field: str = "model") -> str | None:
        """The engine's adapter argument for a request's ``model``: None for the base model."""
        if not model or model == self.base_name:
            return None
        if model in self.engine.adapters():
            return model
        raise NotFound(f"model {model!r} does not exist; served models: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [self.base_name, *sorted(self.engine.adapters())]

    def list(self) -> list[ModelInfo]:
        base = ModelInfo(self.base_name, "base", "", self._source, self.engine.max_model_len)
        with self._lock:
            sources = dict(self._adapter_sources)
        adapters = [
            ModelInfo(name, "adapter", self.base_name, sources.get(name, ""), self.engine.max_model_len)
            for name in sorted(self.engine.adapters())
        ]
        return [base, *adapters]

    def get(self, name: str) -> ModelInfo:
        for info in self.list():
            if info.name == name:
                return info
        raise NotFound(f"model {name!r} does not exist")

    def load_adapter(self, name: str, uri: str) -> ModelInfo:
        """Load the PEFT adapter at ``uri`` as ``name`` (blocking: call from a worker thread)."""
        if not isinstance(name, str) or not _ADAPTER_NAME.match(name):
            raise InvalidArgument.field(
                "name",
                f"{name!r} must be 1-63 lowercase letters, digits, '.', '_' or '-', starting alphanumeric",
            )
        if name == self.base_name:
            raise InvalidArgument.field("name", f"{name!r} is the base model's name")
        path, download = self._local_path(uri)
        try:
            self.engine.load_adapter(name, str(path))
        except BaseException:
            if download is not None:
                shutil.rmtree(download, ignore_errors=True)
            raise
        with self._lock:
            self._adapter_sources[name] = uri
            if download is not None:
                self._downloads[name] = download
        return self.get(name)

    def unload_adapter(self, name: str) -> None:
        if not name:
            raise InvalidArgument.field("name", "must not be empty")
        self.engine.unload_adapter(name)
        with self._lock:
            self._adapter_sources.pop(name, None)
            download = self._downloads.pop(name, None)
        if download is not None:
            shutil.rmtree(download, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            downloads, self._downloads = list(self._downloads.values()), {}
        for path in downloads:
            shutil.rmtree(path, ignore_errors=True)

    def _local_path(self, uri: str) -> tuple[pathlib.Path, pathlib.Path | None]:
        """The adapter's local directory, and the temporary copy to remove later (None if local)."""
        from shipyard.training.checkpoint import download_dir

        if not isinstance(uri, str) or not uri:
            raise InvalidArgument.field("uri", "must be an adapter directory path or URI")
        parsed = parse(uri, field="uri")
        if parsed.scheme == "file":
            path = pathlib.Path(parsed.path)
            if not path.is_dir():
                raise NotFound(f"adapter directory {str(path)!r} does not exist")
            return path, None
        target = pathlib.Path(tempfile.mkdtemp(prefix="shipyard-adapter-"))
        if download_dir(open_storage(uri, self._storage_config, field="uri"), uri, target) == 0:
            shutil.rmtree(target, ignore_errors=True)
            raise NotFound(f"no adapter files under {uri}")
        return target, target
