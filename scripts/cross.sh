#!/usr/bin/env bash
# cross.sh — build cmd/cairn and run go vet for linux, darwin and windows (amd64).
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for os in linux darwin windows; do
	echo "== GOOS=$os GOARCH=amd64: build ./cmd/cairn, go vet ./..."
	GOOS=$os GOARCH=amd64 CGO_ENABLED=0 go build -o "$out/cairn-$os" ./cmd/cairn
	GOOS=$os GOARCH=amd64 CGO_ENABLED=0 go vet ./...
done
echo "cross: ok"
