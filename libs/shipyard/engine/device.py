"""Which device and dtype the engine runs on, and how much memory that device has for the KV cache.

``auto`` means CUDA when present, else CPU; the dtype default follows the device (float32 on CPU, where
bfloat16 matmuls are hundreds of times slower, bfloat16 on CUDA). The KV-cache budget is a fraction of
the device's total memory (``kv_cache_memory <= 1``) or a byte count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from shipyard.config import InferenceConfig
from shipyard.errors import FailedPrecondition, InvalidArgument

__all__ = ["DevicePlacement", "device_memory_bytes", "kv_cache_budget_bytes", "resolve_placement"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class DevicePlacement:
    device: torch.device
    dtype: torch.dtype


def resolve_placement(config: InferenceConfig) -> DevicePlacement:
    """The device and dtype ``config`` asks for (``auto`` resolved); CUDA asked for but absent fails."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise FailedPrecondition("inference.device is 'cuda' but no CUDA device is available")
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda") if use_cuda else torch.device("cpu")
    if config.dtype == "auto":
        dtype = torch.bfloat16 if use_cuda else torch.float32
    else:
        dtype = _DTYPES[config.dtype]
    return DevicePlacement(device, dtype)


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of ``device``: the GPU's memory, or the machine's physical RAM for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def kv_cache_budget_bytes(config: InferenceConfig, device: torch.device) -> int:
    """Bytes the KV cache may take: ``kv_cache_memory`` as a fraction of device memory, or as bytes."""
    value = config.kv_cache_memory
    if value <= 1:
        return int(value * device_memory_bytes(device))
    if value != int(value):
        raise InvalidArgument.field("kv_cache_memory", f"a byte count must be a whole number, got {value}")
    return int(value)
