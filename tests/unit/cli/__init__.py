"""Tests of CLI commands run through click, in embedded mode."""
