"""Agents' pure core: tools (``tools``), retrieval behind search (``retrieval``) and sessions (``sessions``).

No gRPC here: the agents service and CLI call these modules.
"""
