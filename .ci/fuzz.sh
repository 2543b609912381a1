#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time: FUZZTIME each
# (default 15s), one target per `go test` invocation, as Go fuzzes one target
# at a time. Targets are found in the source (func FuzzX(f *testing.F) in a
# _test.go file), so a new one is fuzzed without editing this script. Each
# target's seed corpus (testdata/fuzz/FuzzX) already runs with plain
# `go test`; this adds generated inputs.
#
# A run fails only for a real finding: a failing input that `go test` wrote
# to the package's testdata/fuzz/FuzzX/ (it becomes a regression test once
# committed), a build error, or any failure other than the one below.
#
# Go before 1.27 can end a duration -fuzztime with "context deadline
# exceeded" although no input failed (golang/go#75804: the coordinator reads
# its parent context's deadline before the workers' context is cancelled;
# it happens on loaded machines). That exact ending, with no new input
# written, is reported and not counted as a failure.
#
#   .ci/fuzz.sh                  # all targets, 15s each
#   FUZZTIME=2m .ci/fuzz.sh FuzzSASLPlain FuzzPreauth
set -euo pipefail

cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-15s}"

# "dir name" per target, from `func FuzzX(` in the module's test files.
mapfile -t targets < <(
	grep -rEo --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor --exclude-dir=.git \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' | sort -u
)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

# corpus DIR NAME lists the inputs of a target's corpus, one per line.
corpus() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort || true; }

# deadline_only LOG NAME: the run ended with Go's spurious deadline error
# (the target's FAIL line followed by exactly that message) and nothing
# else failed.
deadline_only() {
	local log=$1 name=$2
	grep -Eq -- "^--- FAIL: ${name} \(" "$log" &&
		grep -A1 -E -- "^--- FAIL: ${name} \(" "$log" | tail -n 1 | grep -Eq '^[[:space:]]*context deadline exceeded$' &&
		! grep -Eq -- '^[[:space:]]*(panic:|Failing input written|fuzz: minimizing)' "$log"
}

want=("$@")
failed=()
flaked=()
ran=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	dir="${t% *}"
	name="${t#* }"
	if [ "${#want[@]}" -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then
		continue
	fi
	ran=$((ran + 1))
	echo "=== fuzz $name ($dir, $fuzztime)"
	before=$(corpus "$dir" "$name")
	rc=0
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir" 2>&1 | tee "$log" || rc=$?
	[ "$rc" -eq 0 ] && continue
	after=$(corpus "$dir" "$name")
	if [ "$before" = "$after" ] && deadline_only "$log" "$name"; then
		echo "fuzz.sh: $name ended with Go's spurious 'context deadline exceeded' (golang/go#75804); no input failed"
		flaked+=("$name")
		continue
	fi
	failed+=("$name ($dir)")
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz.sh: none of the targets ${want[*]} exists" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz.sh: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: $ran targets passed (${#flaked[@]} ended with Go's deadline race, no failing input)"
