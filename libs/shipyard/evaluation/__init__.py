"""The evaluation core: benchmark tasks, prompt and request building, answer extraction and scoring.

Pure library code (no gRPC, no model loading), in the style of lm-evaluation-harness and OpenCompass:

- ``types``: the contract with model backends and the code sandbox (requests, results, records).
- ``tasks``: the task registry; each benchmark is a small YAML file plus, at most, a scoring function.
- ``datasets``: loading a task's rows from local paths or storage URIs, skipping malformed rows.
- ``prompts``: zero-/few-shot (fixed seed) and chain-of-thought prompts, and the requests for a backend.
- ``metrics`` / ``scoring``: acc, acc_norm, MC2, exact match, pass@k, stderr, per-dimension summaries.

Backends (``backends/``) and the sandbox (``sandbox.py``) implement the protocols in ``types``; the runner,
the service and the CLI are built on top.
"""
