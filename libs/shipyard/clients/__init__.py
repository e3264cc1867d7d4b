"""Clients of Shipyard's own services that plug into the domain cores from outside them.

The cores (``shipyard.evaluation``, ...) must not import gRPC or the wire types; code here may, and
joins a core through the core's plug-in points (e.g. ``shipyard.evaluation.backends.register_backend``)
when an edge (the CLI, a service) imports it.
"""
