"""The inference service: one engine behind the OpenAI-compatible HTTP API and gRPC ``InferenceService``.

``python -m shipyard_services.inference --model REF`` runs both servers in one process around one
``shipyard.engine.AsyncLLMEngine``; ``shipyard serve`` runs the same command in the foreground.
"""
