"""See shipyard.data."""
