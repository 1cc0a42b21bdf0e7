"""An example gate suite against httpbin (see README). Run it with --staging-target=URL."""
