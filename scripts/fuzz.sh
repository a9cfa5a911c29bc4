#!/usr/bin/env bash
# make fuzz: every fuzz target of every package, one after the other, for
# FUZZTIME each (default 15s).
#
# Go 1.26's fuzz coordinator can end a clean run with a bare "context
# deadline exceeded" when -fuzztime runs out while a worker is busy
# (golang/go#75804, fixed in Go 1.27). Such a run found nothing: a real
# finding writes "Failing input written to ...". It is run again, up to
# twice; any other failure fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
fuzztime=${FUZZTIME:-15s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

pkgs=$(grep -l '^func Fuzz' $(git ls-files '*_test.go') | xargs -n1 dirname | sort -u)
for pkg in $pkgs; do
  for t in $($go test -list '^Fuzz' "./$pkg" | grep '^Fuzz'); do
    for attempt in 1 2 3; do
      echo "fuzz $pkg $t"
      if $go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "./$pkg" 2>&1 | tee "$log"; then
        break
      fi
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log" && ((attempt < 3)); then
        echo "fuzz $pkg $t: the run ended on the fuzz coordinator's deadline race (golang/go#75804) and found nothing; running it again"
        continue
      fi
      exit 1
    done
  done
done
