#!/usr/bin/env bash
# ci/perf-ab.sh — engine-speed regression check: builds bench at a base
# commit and at HEAD, runs `bench perf --json` of each in turn on this
# machine (interleaved, so drifts in the machine's speed hit both alike),
# and compares the figures with `bench regress --perf`.
#
# usage: ci/perf-ab.sh [BASE_REF] [OUT]
#   BASE_REF  git ref to compare against; empty or absent: the last commit
#             at least a day old (what the previous nightly saw)
#   OUT       output folder, default results/perf: base.json, head.json,
#             regress.txt, regress.md (also appended to GITHUB_STEP_SUMMARY)
# PERF_RUNS sets the runs per side (default 5, the least with room for
# p < 0.05); PERF_ARGS the bench perf flags (default --quick --no-ref);
# PERF_MIN_EFFECT the minimum slowdown that counts (default 10%: with two
# dozen figures compared at α = 0.05, timing noise on a shared runner would
# otherwise flag one now and then).
#
# Exit status: 0 when nothing got slower, 1 on a regression, other on
# failure. A base commit without `bench perf` is skipped with status 0.
# Compare only figures from one machine: absolute speeds of CI runners
# differ by more than any regression worth catching.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

base_ref=${1:-}
out=${2:-results/perf}
runs=${PERF_RUNS:-5}
min_effect=${PERF_MIN_EFFECT:-10%}
read -r -a perf_args <<<"${PERF_ARGS:---quick --no-ref}"
if [ -z "$base_ref" ]; then
	base_ref=$(git rev-list -1 --before="1 day ago" HEAD)
fi
if [ -z "$base_ref" ]; then
	echo "ci/perf-ab.sh: no commit a day old to compare with; skipped"
	exit 0
fi

tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
mkdir -p "$out"
git worktree add --detach "$tmp/base" "$base_ref" >/dev/null
(cd "$tmp/base" && go build -o "$tmp/bench-base" ./cmd/bench)
go build -o "$tmp/bench-head" ./cmd/bench
if ! "$tmp/bench-base" help | grep -q '^ *perf '; then
	echo "ci/perf-ab.sh: $base_ref has no bench perf; skipped"
	exit 0
fi

: >"$out/base.json"
: >"$out/head.json"
for i in $(seq "$runs"); do
	echo "== bench perf run $i of $runs: base $(git rev-parse --short "$base_ref"), then HEAD"
	"$tmp/bench-base" perf --json "${perf_args[@]}" >>"$out/base.json"
	"$tmp/bench-head" perf --json "${perf_args[@]}" >>"$out/head.json"
done

status=0
"$tmp/bench-head" regress --perf --min-effect "$min_effect" --baseline "$out/base.json" --current "$out/head.json" | tee "$out/regress.txt" || status=${PIPESTATUS[0]}
"$tmp/bench-head" regress --perf --min-effect "$min_effect" --baseline "$out/base.json" --current "$out/head.json" --format markdown >"$out/regress.md" || true
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
	cat "$out/regress.md" >>"$GITHUB_STEP_SUMMARY"
fi
exit "$status"
