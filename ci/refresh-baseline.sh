#!/usr/bin/env bash
# ci/refresh-baseline.sh — replaces the committed baseline (ci/baseline/)
# with a fresh run of experiments/nightly.toml. Run it, read the diff that
# `bench regress` prints against the old baseline, and commit ci/baseline/
# in the same commit as the change that moved the metrics (or changed
# nightly.toml), saying why.
#
# usage: ci/refresh-baseline.sh [SWEEP]   (SWEEP defaults to experiments/nightly.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

sweep=${1:-experiments/nightly.toml}
name=$(basename "$sweep" .toml)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/bench" ./cmd/bench
"$tmp/bench" run "$sweep" --out "$tmp/out"
"$tmp/bench" status "$tmp/out/$name"
if [ -f ci/baseline/trials.parquet ]; then
	echo "== the new baseline against the old one"
	"$tmp/bench" regress --baseline ci/baseline --current "$tmp/out/$name" || true
fi
mkdir -p ci/baseline
cp "$tmp/out/$name/trials.parquet" "$tmp/out/$name/manifest.json" ci/baseline/
echo "ci/baseline/ refreshed from $sweep; review and commit it"
