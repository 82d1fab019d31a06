"""astrachaos: find out whether an application that writes to Cassandra or Astra DB loses records."""

__version__ = "0.1.0"
