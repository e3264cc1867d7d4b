"""The agents service: a thin gRPC edge over the agent catalog (``shipyard.agents.catalog``)."""
