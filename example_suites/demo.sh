#!/usr/bin/env bash
# The demo gate: install pytest-staging into .venv, start the bundled httpbin (its own venv,
# 127.0.0.1, a free port), run the example gate suite against it with a demo signing key, stop
# the server, then show the signed verdict the way release tooling sees it and verify it.
# Extra arguments go to pytest, e.g. `bash example_suites/demo.sh --staging-tier=smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --disable-pip-version-check -q -e '.[all]'
python3 example_suites/httpbin/target.py setup >/dev/null

mkdir -p .demo
[ -f .demo/signing.key ] || .venv/bin/pytest-staging keygen --out .demo/signing >/dev/null
verdict=.demo/staging-verdict.intoto.json

status=0
# The "artifact" of this demo is what got deployed: httpbin's pinned requirements.
.venv/bin/python example_suites/httpbin/target.py run -- \
  sh -c '.venv/bin/pytest example_suites/httpbin -n 2 -rs \
           --staging-target="$STAGING_HTTPBIN_URL" --staging-release=httpbin-0.10.4 \
           --staging-signing-key=.demo/signing.key \
           --staging-artifact-file="${STAGING_HTTPBIN_VENV:-.venv-httpbin}/staging-requirements.txt" \
           --staging-verdict='"$verdict"' --staging-report=.demo/staging-report.html "$@"' demo "$@" || status=$?

echo
echo "== the verdict, as release tooling sees it =="
.venv/bin/pytest-staging show "$verdict" --key .demo/signing.pub
echo "HTML report: .demo/staging-report.html"
echo
echo "the signature, whatever the decision (--expect any):"
.venv/bin/pytest-staging verify "$verdict" --key .demo/signing.pub --expect any || status=$?
echo
# What release tooling runs: verify expects PROMOTE unless told otherwise. A partial demo run
# (--staging-tier=smoke) is a HOLD on purpose, so this says no without failing the demo.
echo "release tooling promotes only if this succeeds:"
echo "  .venv/bin/pytest-staging verify $verdict --key .demo/signing.pub"
if .venv/bin/pytest-staging verify "$verdict" --key .demo/signing.pub; then
  echo "=> release tooling would promote this build"
else
  echo "=> release tooling would NOT promote this build"
fi
exit "$status"
