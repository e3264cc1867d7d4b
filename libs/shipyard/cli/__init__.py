"""The ``shipyard`` command line: a thin edge that parses, delegates to cores/services, and renders."""
