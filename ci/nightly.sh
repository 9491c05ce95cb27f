#!/usr/bin/env bash
# ci/nightly.sh — the nightly regression check: runs experiments/nightly.toml
# from scratch and compares it with the committed baseline (ci/baseline/)
# with `bench regress`.
#
# usage: ci/nightly.sh [OUT]      (OUT defaults to results/ci)
#
# Writes OUT/nightly/ (the sweep's results: Parquet tables, manifest, and
# report.html when `bench report` is available) and the comparison as
# OUT/regress.txt, OUT/regress.md and OUT/regress.json. When
# GITHUB_STEP_SUMMARY is set, the Markdown table is appended to it.
#
# Exit status: 0 when nothing regressed, 1 on a regression (a metric worse
# by at least 5% at p < 0.05, a missing trial, a new failure), and 2 (or
# bench run's own status when it was not 1: 130 after Ctrl-C) when the sweep
# or a tool failed. `bench regress` exits 1 for "regressions found" only;
# any other status of it (2: bad flags, a missing folder, an unreadable
# table; a crash) is a tool failure here, never reported as a regression.
#
# NIGHTLY_SWEEP and NIGHTLY_BASELINE override the sweep file and the
# baseline folder; BENCH names a prebuilt bench binary to use.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

out=${1:-results/ci}
sweep=${NIGHTLY_SWEEP:-experiments/nightly.toml}
baseline=${NIGHTLY_BASELINE:-ci/baseline}
name=$(basename "$sweep" .toml) # the sweep's name = its file's base name
bench=${BENCH:-}
if [ -z "$bench" ]; then
	bench=$(mktemp -d)/bench
	go build -o "$bench" ./cmd/bench
fi

mkdir -p "$out"
# A fresh run: resuming would keep trials that older code produced.
rm -rf "${out:?}/$name"

echo "== bench run $sweep ($(date +%T))"
run_status=0
"$bench" run "$sweep" --out "$out" || run_status=$?
if [ ! -f "$out/$name/trials.parquet" ]; then
	echo "ci/nightly.sh: bench run left no $out/$name/trials.parquet (status $run_status)" >&2
	exit 2
fi
"$bench" status "$out/$name" || true

echo "== bench regress --baseline $baseline --current $out/$name ($(date +%T))"
status=0
"$bench" regress --baseline "$baseline" --current "$out/$name" --format text | tee "$out/regress.txt" || status=${PIPESTATUS[0]}
"$bench" regress --baseline "$baseline" --current "$out/$name" --format markdown >"$out/regress.md" || true
"$bench" regress --baseline "$baseline" --current "$out/$name" --format json >"$out/regress.json" || true
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
	cat "$out/regress.md" >>"$GITHUB_STEP_SUMMARY"
fi

echo "== bench report $out/$name ($(date +%T))"
"$bench" report "$out/$name" || echo "ci/nightly.sh: bench report failed; the comparison above stands" >&2

# A sweep that did not finish is a tool failure whatever regress says (its
# missing trials would read as regressions): its own status, but never 1.
if [ "$run_status" -ne 0 ]; then
	echo "ci/nightly.sh: bench run exited with status $run_status: a tool failure" >&2
	[ "$run_status" -eq 1 ] && exit 2
	exit "$run_status"
fi
case "$status" in
0) ;;
1) exit 1 ;;
*)
	echo "ci/nightly.sh: bench regress could not compare (exit status $status): a tool failure, not a regression" >&2
	exit 2
	;;
esac
