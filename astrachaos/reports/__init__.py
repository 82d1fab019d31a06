"""Reports of a run: console (Rich), JSON; each renders a RunResult and never prints."""
