"""What a run writes and how: the record plan, channels to the driver, dual write, app log, stats."""
