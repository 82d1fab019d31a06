"""One run end to end: runner, sides, run directory, result, re-verify, suite, progress."""
