"""The inference engine: continuous batching over a paged KV cache, with no gRPC or HTTP inside.

``AsyncLLMEngine`` is what servers call; ``LLMEngine`` is its synchronous step loop; the scheduler and
block manager decide which tokens run each step; the model runner computes them.
"""

from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.batch import ModelInput, ModelRunner, SequenceChunk
from shipyard.engine.llm_engine import LLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.engine.outputs import EngineStats, RequestOutput, TokenLogprob
from shipyard.engine.request_stream import AsyncRequestStream, SyncRequestStream
from shipyard.engine.sampling_params import SamplingParams

__all__ = [
    "AsyncLLMEngine",
    "AsyncRequestStream",
    "EngineMetrics",
    "EngineStats",
    "LLMEngine",
    "ModelInput",
    "ModelRunner",
    "RequestOutput",
    "SamplingParams",
    "SequenceChunk",
    "SyncRequestStream",
    "TokenLogprob",
]
