"""Reading a run's keys back and classifying every record."""
