#!/usr/bin/env bash
# lint.sh — gofmt, go vet and (unless --no-staticcheck) staticcheck.
#
# staticcheck is run through `go run` at a pinned version, so nothing needs
# installing; if the module proxy cannot serve it, it is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
run_staticcheck=1
for arg in "$@"; do
	case "$arg" in
	--no-staticcheck) run_staticcheck=0 ;;
	*) echo "lint.sh: unknown argument $arg" >&2; exit 2 ;;
	esac
done

echo "== gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"
if [ -n "$unformatted" ]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

if [ "$run_staticcheck" = 1 ]; then
	echo "== staticcheck $STATICCHECK_VERSION"
	if go list -m "honnef.co/go/tools@$STATICCHECK_VERSION" >/dev/null 2>&1; then
		go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
	else
		echo "staticcheck $STATICCHECK_VERSION is not available from the module proxy: skipped"
	fi
fi
echo "lint: ok"
