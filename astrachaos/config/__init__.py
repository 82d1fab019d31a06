"""Scenarios and profiles from YAML: loading, overrides, the shipped catalog, connection settings."""
