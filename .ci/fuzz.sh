#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time: FUZZTIME each
# (default 15s), one target per `go test` invocation, as Go fuzzes one target
# at a time. Targets are found in the source (func FuzzX(f *testing.F) in a
# _test.go file), so a new one is fuzzed without editing this script. Each
# target's seed corpus (testdata/fuzz/FuzzX) already runs with plain
# `go test`; this adds generated inputs.
#
# Exits non-zero if any target fails (a panic, a failed property, or a
# build error); `go test` then writes the failing input to the package's
# testdata/fuzz/FuzzX/, where it becomes a regression test once committed.
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

want=("$@")
failed=()
ran=0
for t in "${targets[@]}"; do
	dir="${t% *}"
	name="${t#* }"
	if [ "${#want[@]}" -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then
		continue
	fi
	ran=$((ran + 1))
	echo "=== fuzz $name ($dir, $fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"; then
		failed+=("$name ($dir)")
	fi
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz.sh: none of the targets ${want[*]} exists" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz.sh: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: $ran targets passed"
