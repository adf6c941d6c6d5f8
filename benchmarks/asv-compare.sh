#!/usr/bin/env bash
# Compare two commits recorded by asv on one machine and write the comparison where the benchmark report links it.
#
#   benchmarks/asv-compare.sh [BASE [HEAD]]
#
# BASE and HEAD default to the two most recent commits (in `git log` order) that have results for machine
# ASV_MACHINE (default: the host name) in benchmarks/results/. Writes reports/asv-compare.md: the command, the two
# commits and asv's table (every benchmark, sorted by ratio; ratios < 1 are faster at HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
ASV=${ASV:-.venv/bin/asv}
MACHINE=${ASV_MACHINE:-$(hostname -s)}
OUT=${OUT:-reports/asv-compare.md}
dir="benchmarks/results/$MACHINE"
[ -d "$dir" ] || { echo "asv-compare: no results for machine '$MACHINE' in $dir" >&2; exit 2; }
recorded=$(for f in "$dir"/*.json; do
  [ "$(basename "$f")" = machine.json ] || python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commit_hash"])' "$f"
done | sort -u)
ordered=$(git log --format=%H | grep -F -x -f <(printf '%s\n' $recorded) || true)
base=${1:-$(printf '%s\n' $ordered | sed -n 2p)}
head=${2:-$(printf '%s\n' $ordered | sed -n 1p)}
if [ -z "$base" ] || [ -z "$head" ]; then
  echo "asv-compare: machine '$MACHINE' has results for fewer than two commits of this branch: run \`make asv\`" >&2
  exit 2
fi
table=$("$ASV" compare "$base" "$head" --machine "$MACHINE" --no-only-changed --sort ratio)
{
  echo "# asv: \`$(git log -1 --format=%h "$base")\` against \`$(git log -1 --format=%h "$head")\` on machine \`$MACHINE\`"
  echo
  echo "\`benchmarks/asv-compare.sh $(git log -1 --format=%h "$base") $(git log -1 --format=%h "$head")\`, written $(date -u +%Y-%m-%d)."
  echo "Base: $(git log -1 --format='%h %s' "$base")  "
  echo "Head: $(git log -1 --format='%h %s' "$head")"
  echo
  echo "Ratio = head / base (below 1: faster at head); asv marks a change beyond its factor (1.1) and its statistics"
  echo "with \`+\` (slower) or \`-\` (faster), \`x\` where the benchmark's own code changed (not comparable). The rows that run no"
  echo "spineaug code (the elementwise floor pass, the training iteration of the \`none\` arm) show how much the machine"
  echo "itself drifted between the two runs: read the other ratios against them."
  echo
  echo '```'
  printf '%s\n' "$table"
  echo '```'
} > "$OUT"
echo "asv-compare: wrote $OUT"
