"""The driver side of a run: session factory, request throttler, resettable session, retry, run table."""
