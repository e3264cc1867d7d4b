"""The training core: spec, presets, data loading, checkpoints, the per-worker loop and the Ray Train driver.

Pure library code usable without a server; there is no gRPC inside (the training service wraps it).
"""
