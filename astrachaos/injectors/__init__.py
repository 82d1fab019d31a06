"""Fault injectors: a small interface, a registry fed by entry points, and the built-ins."""
