#!/usr/bin/env bash
# scripts/pjdfstest.sh MOUNTPOINT [KNOWN-FAILURES]: run the pjdfstest POSIX
# suite as root in a fresh directory under MOUNTPOINT and compare what fails
# with a known-failures file (default scripts/pjdfstest-known-local.txt).
#
# The suite is built from the pinned source tarball, copied out of the shared
# tools directory first (that directory is read-only in CI), and the build is
# reused by later runs. The run fails when a test fails that the file does not
# list, or when a listed test passes (take it off the list). An unlisted
# failure is first run again, its whole file in a fresh directory: only a test
# that fails both times fails the run (the suite checks times to the second,
# and a loaded machine makes some of those checks race); one that passes the
# second time is printed with its first message.
#
# A known-failures file has one line per test file:
#
#   link/00.t  1-5,9,12  why these cannot pass on this kind of mount
#
# the file under pjdfstest's tests/, the failing test numbers (a number,
# a range a-b, or "plan" for a script that stops early), and the reason.
# A number or range ending in "?" (110?, 7-9?) is a test that fails in some
# runs and passes in others (a race the reason names): either outcome is
# accepted for it.
# Blank lines and lines starting with # are ignored.
#
# Environment:
#   PJDFSTEST_TARBALL  the source (default ../shared/tools/pjdfstest-85a8aea.tar.gz
#                      from the repository root, else /work/shared/tools/...)
#   PJDFSTEST_BUILD    where it is built (default ~/.cache/skyfs/pjdfstest-85a8aea)
#   PJDFSTEST_TESTS    test directories or files to run instead of all of them,
#                      relative to tests/, e.g. "chown chmod/00.t"; only their
#                      lines of the known-failures file are checked
#   PJDFSTEST_JOBS     test files run at once (default 8: the suite mostly
#                      sleeps, waiting for the clock to move on)
#   PJDFSTEST_LISTED_PASSES  "fail" (default): a listed test that passes fails
#                      the run; "report": it is printed and the run goes on
#   PJDFSTEST_RERUN    0: an unlisted failure fails the run at once, without
#                      being run again (default 1)
#   PJDFSTEST_LOG      where prove's verbose output goes (default
#                      run-KNOWN-PID.log in the build directory, so that runs at
#                      the same time keep apart; printed; the second run of
#                      failed files goes to the same name with ".again")
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  echo "usage: $0 MOUNTPOINT [KNOWN-FAILURES-FILE]" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
mnt=$1
known=${2:-$repo/scripts/pjdfstest-known-local.txt}
[ -d "$mnt" ] || { echo "pjdfstest: $mnt is not a directory" >&2; exit 2; }
[ -f "$known" ] || { echo "pjdfstest: no known-failures file $known" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
  echo "pjdfstest: the suite changes owners and must run as root" >&2
  exit 2
fi

version=85a8aea
tarball=${PJDFSTEST_TARBALL:-}
if [ -z "$tarball" ]; then
  for t in "$repo/../shared/tools/pjdfstest-$version.tar.gz" "/work/shared/tools/pjdfstest-$version.tar.gz"; do
    if [ -f "$t" ]; then tarball=$t; break; fi
  done
fi
[ -n "$tarball" ] && [ -f "$tarball" ] || { echo "pjdfstest: source tarball pjdfstest-$version.tar.gz not found; set PJDFSTEST_TARBALL" >&2; exit 2; }
build=${PJDFSTEST_BUILD:-${HOME:-/root}/.cache/skyfs/pjdfstest-$version}
jobs=${PJDFSTEST_JOBS:-8}

# Build once; a build is reused while the tarball it came from is the same.
# Runs on several mounts at once share the build: the first builds, the
# others wait for it.
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
mkdir -p "$(dirname "$build")"
exec 9>"$build.lock"
flock 9
if [ ! -x "$build/pjdfstest/pjdfstest" ] || [ "$(cat "$build/source.sha256" 2>/dev/null)" != "$sum" ]; then
  echo "pjdfstest: building $version in $build"
  rm -rf "$build"
  mkdir -p "$build"
  cp "$tarball" "$build/src.tar.gz"
  tar -xzf "$build/src.tar.gz" -C "$build"
  if ! (cd "$build/pjdfstest" && autoreconf -ifs && ./configure && make pjdfstest) >"$build/build.log" 2>&1; then
    echo "pjdfstest: build failed; see $build/build.log:" >&2
    tail -n 20 "$build/build.log" >&2
    exit 1
  fi
  echo "$sum" >"$build/source.sha256"
fi
flock -u 9
exec 9>&-
suite=$build/pjdfstest/tests

# The tests to run: all of them, or those PJDFSTEST_TESTS names.
targets=()
if [ -n "${PJDFSTEST_TESTS:-}" ]; then
  for t in $PJDFSTEST_TESTS; do
    [ -e "$suite/$t" ] || { echo "pjdfstest: no test $t in $suite" >&2; exit 2; }
    targets+=("$suite/$t")
  done
else
  targets=("$suite")
fi

# run_suite LOG TARGET...: run the given tests as root in a fresh directory
# on the mount (the suite creates its names in the current directory), prove's
# verbose output to LOG. The directory is removed afterwards when it can be.
run_suite() {
  local out=$1 dir
  shift
  dir=$(mktemp -d "$mnt/pjdfstest.XXXXXX")
  chmod 0755 "$dir"
  echo "pjdfstest: running in $dir (verbose output in $out)"
  set +e
  (cd "$dir" && prove -r -v -j "$jobs" "$@") >"$out" 2>&1
  set -e
  rm -rf "$dir" 2>/dev/null || echo "pjdfstest: could not remove all of $dir"
}

# failures LOG: what failed, as "FILE NUMBER" lines, from the "not ok" lines
# of each file's verbose output and, for a file that stopped early or exited
# non-zero, the summary's complaints as "FILE plan".
failures() {
  awk -v suite="$suite/" '
    function rel(p) { sub("^" suite, "", p); return p }
    # With -j, prove prints a file'"'"'s output in one block headed by its name.
    /^\/.*\.t \.+/ { file = rel($1); next }
    # "not ok N # TODO ..." is an expected failure in TAP, not a failure.
    /^not ok [0-9]+/ && !/# TODO/ && file != "" { print file, $3 }
    /^Test Summary Report/ { summary = 1; next }
    summary && /^\/.*\.t \(Wstat/ {
      f = rel($1)
      if ($0 !~ /Wstat: 0 /) print f, "plan"
      next
    }
    summary && /Parse errors:/ { if (f != "") print f, "plan" }
  ' "$1" | sort -u
}

# messages LOG: the "not ok" line of each "FILE NUMBER" on standard input.
messages() {
  while read -r f n; do
    [ "$n" = plan ] && continue
    awk -v file="$f" -v n="$n" -v suite="$suite/" '
      /^\/.*\.t \.+/ { cur = $1; sub("^" suite, "", cur); next }
      cur == file && $1 == "not" && $3 == n { print "  " file ": " $0; exit }' "$1"
  done | cut -c1-300 | head -n 60
}

log=${PJDFSTEST_LOG:-$build/run-$(basename "$known" .txt)-$$.log}
start=$SECONDS
run_suite "$log" "${targets[@]}"
elapsed=$((SECONDS - start))

failed=$(mktemp)
expected=$(mktemp)
trap 'rm -f "$failed" "$expected" "$expected.all" "$expected.either" "$failed.first" "$failed.again"' EXIT
failures "$log" >"$failed"

# Expand the known-failures lines of the files that ran into "FILE NUMBER".
awk -v sel="${PJDFSTEST_TESTS:-}" '
  BEGIN { n = split(sel, s, " ") }
  /^[[:space:]]*(#|$)/ { next }
  {
    file = $1
    if (n > 0) {
      ok = 0
      for (i = 1; i <= n; i++) {
        p = s[i]; sub(/\/$/, "", p)
        if (file == p || index(file, p "/") == 1) ok = 1
      }
      if (!ok) next
    }
    m = split($2, parts, ",")
    for (i = 1; i <= m; i++) {
      p = parts[i]; mark = ""
      if (p ~ /\?$/) { mark = " ?"; sub(/\?$/, "", p) }
      if (p ~ /^[0-9]+-[0-9]+$/) {
        split(p, r, "-")
        for (k = r[1] + 0; k <= r[2] + 0; k++) print file, k mark
      } else {
        print file, p mark
      }
    }
  }
' "$known" | sort -u >"$expected.all"
# Tests that may go either way count as failing when they fail and are not
# reported when they pass.
grep -v ' ?$' "$expected.all" >"$expected" || true
sed -n 's/ ?$//p' "$expected.all" | sort -u >"$expected.either"

# Turn "FILE NUMBER" lines back into "FILE 1-3,7" lines.
ranges() {
  sort -k1,1 -k2,2n | awk '
    function flush() { if (file != "") print file, out }
    {
      if ($1 != file) { flush(); file = $1; out = ""; lo = hi = "" }
      if ($2 == "plan") { out = out (out == "" ? "" : ",") "plan"; next }
      n = $2 + 0
      if (hi != "" && n == hi + 1) { hi = n; sub(/[0-9]+(-[0-9]+)?$/, "", out); out = out (lo == hi ? lo : lo "-" hi); next }
      lo = hi = n; out = out (out == "" ? "" : ",") n
    }
    END { flush() }'
}

total=$(grep -cE '^(ok|not ok) [0-9]+' "$log" || true)
nfailed=$(grep -E '^not ok [0-9]+' "$log" | grep -cv '# TODO' || true)
echo "pjdfstest: $((total - nfailed)) of $total tests passed in ${elapsed}s; $nfailed failed, $(comm -12 "$failed" "$expected" | wc -l) of them listed in $(basename "$known")"
comm -23 "$failed" "$expected" | comm -23 - "$expected.either" >"$failed.first"

# An unlisted failure is run once more, its whole test file in a fresh
# directory, and counts only when it fails again: the suite checks times to
# the second and its runs race with each other on a loaded machine. A test
# that passes the second time is printed as such, with its first message.
: >"$failed.again"
if [ -s "$failed.first" ] && [ "${PJDFSTEST_RERUN:-1}" != 0 ]; then
  files=$(cut -d' ' -f1 "$failed.first" | sort -u)
  echo "pjdfstest: running again the files of unlisted failures:" $files
  rerun=()
  for f in $files; do rerun+=("$suite/$f"); done
  run_suite "$log.again" "${rerun[@]}"
  failures "$log.again" | comm -12 - "$failed.first" >"$failed.again"
  passed=$(comm -23 "$failed.first" "$failed.again")
  if [ -n "$passed" ]; then
    echo "pjdfstest: failed once, passed when run again (a race; see their first messages):"
    echo "$passed" | ranges | sed 's/^/  /'
    echo "$passed" | messages "$log"
  fi
else
  cp "$failed.first" "$failed.again"
fi

unexpected=$(ranges <"$failed.again")
fixed=$(comm -13 "$failed" "$expected" | ranges)
status=0
if [ -n "$unexpected" ]; then
  echo "pjdfstest: FAIL: tests failed that $(basename "$known") does not list:"
  echo "$unexpected" | sed 's/^/  /'
  echo "pjdfstest: their messages:"
  messages "$log" <"$failed.again"
  status=1
fi
if [ -n "$fixed" ]; then
  if [ "${PJDFSTEST_LISTED_PASSES:-fail}" = report ]; then
    echo "pjdfstest: listed tests passed this time (PJDFSTEST_LISTED_PASSES=report); if they keep passing, take them off $(basename "$known"):"
    echo "$fixed" | sed 's/^/  /'
  else
    echo "pjdfstest: FAIL: listed tests now pass; take them off $(basename "$known"):"
    echo "$fixed" | sed 's/^/  /'
    status=1
  fi
fi
if [ "$status" = 0 ]; then
  echo "pjdfstest: OK"
fi
exit "$status"
