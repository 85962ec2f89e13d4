#!/usr/bin/env bash
# fuzz.sh [FUZZTIME] — a short run of every Fuzz* target in the module.
#
# Targets are discovered with `go test -list '^Fuzz' ./...`; each one runs
# alone (go test accepts one -fuzz target per package per run) for FUZZTIME
# (default 10s). A failing input is written to the package's testdata/fuzz/,
# where it becomes a regression test; the script then exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-${FUZZTIME:-10s}}"

# `go test -list` prints the matching names of a package, then "ok  <pkg> ...".
if ! listing="$(go test -list '^Fuzz' ./... 2>&1)"; then
	echo "$listing" >&2
	echo "fuzz: listing the Fuzz targets failed" >&2
	exit 1
fi
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	"ok "*)
		pkg="$(awk '{print $2}' <<<"$line")"
		for n in "${names[@]}"; do targets+=("$pkg $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$listing"

if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no Fuzz targets found"
	exit 0
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# fuzz_once runs one target; it succeeds, or fails with a crasher written
# (status 1), or ends with only "context deadline exceeded" (status 2): the
# go toolchain sometimes reports that when -fuzztime runs out while a worker
# is busy, without any failing input.
fuzz_once() {
	if go test -run='^$' -fuzz="^${2}\$" -fuzztime="$fuzztime" -fuzzminimizetime=5s "$1" 2>&1 | tee "$out"; then
		return 0
	fi
	if ! grep -q 'Failing input written' "$out" && grep -q 'context deadline exceeded' "$out"; then
		return 2
	fi
	return 1
}

failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $name ($pkg)"
	rc=0
	fuzz_once "$pkg" "$name" || rc=$?
	if [ "$rc" = 2 ]; then
		echo "fuzz: $name stopped with a deadline and no failing input; running it again"
		rc=0
		fuzz_once "$pkg" "$name" || rc=$?
		if [ "$rc" = 2 ]; then
			echo "fuzz: warning: $name stopped with a deadline again, no failing input found" >&2
			rc=0
		fi
	fi
	if [ "$rc" != 0 ]; then
		echo "fuzz: $name in $pkg FAILED" >&2
		failed=1
	fi
done
if [ "$failed" != 0 ]; then
	exit 1
fi
echo "fuzz: ok"
