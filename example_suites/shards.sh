#!/usr/bin/env bash
# The example gate suite split in 3 shards, as 3 CI jobs would run it: start the bundled httpbin,
# run `pytest --staging-shard=K/3` for K = 1, 2, 3 in parallel processes (each writes its own
# signed partial verdict and log), stop the server, merge the partials into one signed verdict,
# then show and verify it the way release tooling does. See docs/shards.md.
#
# Extra arguments go to every shard's pytest, e.g. the functional tiers only, recorded rather
# than held (the load tier's budget needs a quiet machine):
#   bash example_suites/shards.sh --staging-tier=smoke,contract \
#       -o staging_allow_deselection=true -o "staging_required_tiers=smoke contract"
# Keys, partials, logs and the merged verdict go to $STAGING_DEMO_DIR (default .demo).
# Exit status: the merge's (0 PROMOTE, 6 not, 1 a partial did not verify, 2 usage).
set -euo pipefail
cd "$(dirname "$0")/.."

SHARDS=3
demo=${STAGING_DEMO_DIR:-.demo}
httpbin_venv=${STAGING_HTTPBIN_VENV:-.venv-httpbin}

# Inside the server's lifetime (`target.py run`): the shards, in parallel, each on its own.
if [ "${1:-}" = __run-shards ]; then
  shift
  pids=()
  for k in $(seq 1 "$SHARDS"); do
    # The "artifact" of this demo is what got deployed: httpbin's pinned requirements.
    .venv/bin/pytest example_suites/httpbin -p no:cacheprovider -rs \
      --staging-target="$STAGING_HTTPBIN_URL" --staging-release=httpbin-0.10.4 \
      --staging-signing-key="$demo/signing.key" \
      --staging-artifact-file="$httpbin_venv/staging-requirements.txt" \
      --staging-shard="$k/$SHARDS" --staging-verdict="$demo/shards/shard-$k.intoto.json" \
      "$@" > "$demo/shards/shard-$k.log" 2>&1 &
    pids+=("$!")
  done
  for k in $(seq 1 "$SHARDS"); do
    status=0
    wait "${pids[$((k - 1))]}" || status=$?
    echo "shard $k of $SHARDS: exit $status, $(tail -n 1 "$demo/shards/shard-$k.log") (log: $demo/shards/shard-$k.log)"
  done
  exit 0
fi

[ -x .venv/bin/pytest-staging ] || {
  python3 -m venv .venv
  .venv/bin/pip install --disable-pip-version-check -q -e '.[all]'
}
python3 example_suites/httpbin/target.py setup >/dev/null

mkdir -p "$demo/shards"
[ -f "$demo/signing.key" ] || .venv/bin/pytest-staging keygen --out "$demo/signing" >/dev/null
rm -f "$demo"/shards/shard-*.intoto.json  # an earlier run's partials are not this run's
verdict=$demo/staging-verdict.intoto.json

echo "== $SHARDS shards in parallel (as $SHARDS CI jobs) =="
STAGING_DEMO_DIR=$demo .venv/bin/python example_suites/httpbin/target.py run -- \
  bash example_suites/shards.sh __run-shards "$@"

echo
echo "== the merge job: verify every partial, merge, sign one verdict =="
status=0
.venv/bin/pytest-staging merge "$demo"/shards/shard-*.intoto.json \
  --key "$demo/signing.pub" --signing-key "$demo/signing.key" --out "$verdict" || status=$?

echo
echo "== the merged verdict, as release tooling sees it =="
.venv/bin/pytest-staging show "$verdict" --key "$demo/signing.pub" || true
echo
echo "release tooling promotes only if this succeeds:"
echo "  .venv/bin/pytest-staging verify $verdict --key $demo/signing.pub"
if .venv/bin/pytest-staging verify "$verdict" --key "$demo/signing.pub"; then
  echo "=> release tooling would promote this build"
else
  echo "=> release tooling would NOT promote this build"
fi
exit "$status"
