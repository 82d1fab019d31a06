"""A loopback TCP proxy per node, with network toxics and CQL-aware request faults."""
