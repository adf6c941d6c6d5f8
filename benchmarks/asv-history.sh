#!/usr/bin/env bash
# Fill asv's history for past commits with the existing .venv (no environment built per commit).
#
#   benchmarks/asv-history.sh REVS [asv run options...]
#   benchmarks/asv-history.sh main~10..main
#   benchmarks/asv-history.sh 'abc1234^!' --bench TrainingIteration
#
# Each commit of `git rev-list REVS` (oldest first) is checked out in a temporary detached `git worktree`; this
# checkout's benchmark suite runs against that commit's spineaug (ASV_PYTHONPATH: asv drops PYTHONPATH) and asv
# records the results under the commit's hash for machine ASV_MACHINE (default: the host name) in
# benchmarks/results/. Benchmarks whose code a commit lacks are skipped by their setup. Then `asv publish`
# draws the history and `asv compare A B` compares two commits.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/asv-history.sh REVS [asv run options...]" >&2
  exit 2
fi
revs=$1
shift
ASV=${ASV:-.venv/bin/asv}
MACHINE=${ASV_MACHINE:-$(hostname -s)}
"$ASV" machine --machine "$MACHINE" --yes >/dev/null
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
for sha in $(git rev-list --reverse "$revs"); do
  echo "== asv: $(git log -1 --format='%h %s' "$sha")"
  git worktree add --detach "$tmp/src" "$sha" >/dev/null 2>&1
  ASV_PYTHONPATH="$tmp/src" "$ASV" run --python=same --machine "$MACHINE" --set-commit-hash "$sha" "$@"
  git worktree remove --force "$tmp/src"
done
