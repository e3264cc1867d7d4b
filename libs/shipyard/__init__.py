"""Shipyard: one platform for the whole life of a large language model.

The package is the shared library every service, the CLI and the operator build on. Its public surface
is deliberately small; domain packages (``shipyard.data``, ...) are pure cores usable without gRPC.
"""

__version__ = "0.1.0"
