"""An example gate suite against httpbin (see docs/example-target.md). Run it with --staging-target=URL."""
