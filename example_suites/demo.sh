#!/usr/bin/env bash
# The demo gate: install pytest-staging into .venv, start the bundled httpbin (its own venv,
# 127.0.0.1, a free port), run the example gate suite against it, stop the server.
# Extra arguments go to pytest, e.g. `bash example_suites/demo.sh --staging-tier=smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --disable-pip-version-check -q -e '.[all]'

exec .venv/bin/python example_suites/httpbin/target.py run -- \
  sh -c '.venv/bin/pytest example_suites/httpbin -n 2 -rs \
           --staging-target="$STAGING_HTTPBIN_URL" --staging-release=demo "$@"' demo "$@"
