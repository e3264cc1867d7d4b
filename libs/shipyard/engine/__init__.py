"""The inference engine: continuous batching over a paged KV cache, with no gRPC or HTTP inside.

``AsyncLLMEngine`` is what servers call; ``LLMEngine`` is its synchronous step loop; the scheduler and
block manager decide which tokens run each step; the model runner computes them.
"""
