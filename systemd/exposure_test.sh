#!/usr/bin/env bash
# Scores the unit's confinement with systemd's own analyser and fails above the bar.
#   exposure_test.sh UNIT_FILE [MAX_EXPOSURE]    (default 1.5, on systemd's 0..10 scale)
# systemd-analyze is part of Debian's `systemd` package, which scripts/setup installs; its
# absence is a failure, not a skip, because the exposure bar is a release criterion.
set -euo pipefail
unit=${1:?usage: exposure_test.sh UNIT_FILE [MAX_EXPOSURE]}
max=${2:-1.5}
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "FAIL: systemd-analyze not found: install Debian's systemd package (scripts/setup does)" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# --threshold=100 keeps systemd-analyze's own exit status out of it: the bar is checked here.
if ! systemd-analyze security --offline=true --threshold=100 --no-pager "$unit" >"$out" 2>&1; then
  cat "$out" >&2
  echo "FAIL: systemd-analyze security could not analyse $unit" >&2
  exit 1
fi
# "→ Overall exposure level for safegated.service: 1.2 OK 🙂"
line=$(grep -a 'Overall exposure level' "$out" || true)
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' <<<"$line")
if [[ -z $score ]]; then
  cat "$out" >&2
  echo "FAIL: no 'Overall exposure level' line with a score in systemd-analyze's output" >&2
  exit 1
fi
# Findings that cost points, for whoever has to bring the score down.
grep -a '^✗' "$out" | sed 's/  */ /g' || true
if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
  echo "FAIL: $unit: exposure $score is above $max" >&2
  exit 1
fi
echo "exposure_test: $unit: exposure $score (bar $max)"
