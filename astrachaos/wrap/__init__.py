"""The Python front door: a user's own driver session under client faults, every write captured."""
