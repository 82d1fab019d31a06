"""Application write patterns: how a simulated application treats the driver."""
