"""A drop-in for the driver's Session: client faults on every write, each reported to an observer."""
