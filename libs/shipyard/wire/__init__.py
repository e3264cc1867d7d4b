"""Conversions between protobuf wire messages and domain types, one module per service.

Shared by the services (server side) and the CLI/other services (client side), so both agree on
the mapping; cores never import this package.
"""
