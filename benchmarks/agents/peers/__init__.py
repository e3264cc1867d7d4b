"""Peer agent frameworks run in their own virtual environment (they pin their own dependencies).

Each side is a script: it reads GSM8K questions as JSON lines, runs them through the framework's agent
against the same OpenAI-compatible endpoint, and writes one JSON line per question (the framework's final
answer text, its steps, its failed tool calls, its wall time). Scoring happens in the benchmark itself, so
every side is scored by the same code.
"""
