#!/usr/bin/env bash
# compare.sh — cairn vs restic vs borg on one generated corpus, in one run.
#
#   bench/compare.sh [-size 1GiB] [-seed 1] [-files 10x] [-runs 1]
#                    [-tools "cairn restic borg"] [-work DIR] [-no-write]
#
# Installs what is missing (restic, borgbackup, GNU time; Debian packages),
# builds cairn, generates the corpus with bench/gencorpus (kept in the work
# folder for later runs), then for each tool measures: first backup, a
# no-change re-backup, a restore (checked against the corpus with diff -r),
# the repository's size, and the peak memory (max RSS from /usr/bin/time -v)
# of each step. It prints a table with the ratios cairn/restic and cairn/borg
# (below 1 means cairn is faster or smaller) and writes it to
# docs/benchmarks.md unless -no-write.
#
# -runs N repeats everything N times, the tools taking turns, and keeps the
# fastest time and the highest memory of each step: use it on a busy machine.
# -files 10x also runs the first backup of a corpus with ten times the small
# files and reports how each tool's peak memory grows with the file count.
#
# The corpus is read once before the first measurement so every tool meets a
# warm page cache. Every tool keeps its defaults (restic compression auto,
# borg lz4); caches live in the work folder and are emptied between tools.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

size="1GiB"
seed=1
files=""
tools="cairn restic borg"
work="${CAIRN_BENCH_DIR:-/tmp/cairn-bench}"
write=1
runs=1
while [ $# -gt 0 ]; do
	case "$1" in
	-size) size="$2"; shift 2 ;;
	-seed) seed="$2"; shift 2 ;;
	-files) files="${2%x}"; shift 2 ;;
	-runs) runs="$2"; shift 2 ;;
	-tools) tools="$2"; shift 2 ;;
	-work) work="$2"; shift 2 ;;
	-no-write) write=0; shift ;;
	-h | -help | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown argument $1 (see -help)" >&2; exit 2 ;;
	esac
done
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
	echo "compare.sh: -runs wants a count" >&2
	exit 2
fi
if [ -n "$files" ] && ! [[ "$files" =~ ^[0-9]+$ && "$files" -ge 2 ]]; then
	echo "compare.sh: -files wants a factor like 10x" >&2
	exit 2
fi

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- tools ----------------------------------------------------------------
need=()
for t in $tools; do
	case "$t" in
	restic) command -v restic >/dev/null || need+=(restic) ;;
	borg) command -v borg >/dev/null || need+=(borgbackup) ;;
	cairn) ;;
	*) echo "compare.sh: unknown tool $t" >&2; exit 2 ;;
	esac
done
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$work"
work="$(cd "$work" && pwd)"
mkdir -p "$work/bin" "$work/logs"

if [[ " $tools " == *" cairn "* ]]; then
	log "building cairn"
	(cd "$root" && go build -o "$work/bin/cairn" ./cmd/cairn)
fi
(cd "$root" && go build -o "$work/bin/gencorpus" ./bench/gencorpus)

# --- corpus ---------------------------------------------------------------
# corpus SCALE: generates (once) and prints the corpus folder.
corpus() {
	local dir="$work/corpus-$size-seed$seed-x$1"
	if [ ! -f "$dir.done" ]; then
		log "generating the corpus ($size, seed $seed, small files x$1) in $dir"
		rm -rf "$dir"
		"$work/bin/gencorpus" -out "$dir" -size "$size" -seed "$seed" -scale "$1" >"$dir.summary"
		touch "$dir.done"
	fi
	echo "$dir"
}

# --- measuring --------------------------------------------------------------
declare -A R # R[label/tool/metric] = value
failures=0   # failed steps

# measure LABEL TOOL STEP CMD...: runs CMD under /usr/bin/time -v, records the
# wall time in seconds and the max RSS in MiB. A failure is recorded as such.
measure() {
	local label="$1" tool="$2" step="$3"
	shift 3
	local tf="$work/logs/$label-$tool-$step.time" out="$work/logs/$label-$tool-$step.log"
	sync
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$tf" "$@" >"$out" 2>&1 </dev/null || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" != 0 ]; then
		log "$tool $step failed (exit $rc): see $out"
		tail -5 "$out" >&2 || true
		R[$label/$tool/$step]="failed"
		R[$label/$tool/$step-rss]="failed"
		failures=$((failures + 1))
		return 1
	fi
	R[$label/$tool/$step]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
	R[$label/$tool/$step-rss]=$(awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$tf")
	log "$tool $step: ${R[$label/$tool/$step]} s, ${R[$label/$tool/$step-rss]} MiB max RSS"
}

# run_tool LABEL TOOL CORPUS FULL: first backup (and, if FULL, re-backup,
# restore, size) of CORPUS with TOOL.
run_tool() {
	local label="$1" tool="$2" src="$3" full="$4"
	local repo="$work/repo-$tool" target="$work/restore-$tool" state="$work/state-$tool"
	rm -rf "$repo" "$target" "$state"
	mkdir -p "$state" "$target"
	export CAIRN_PASSWORD="bench-password" RESTIC_PASSWORD="bench-password" BORG_PASSPHRASE="bench-password"
	export CAIRN_HOME="$state/cairn-home" RESTIC_CACHE_DIR="$state/restic-cache" BORG_BASE_DIR="$state/borg"
	export BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	local cairn="$work/bin/cairn"
	case "$tool" in
	cairn) "$cairn" --repo "$repo" init >"$work/logs/$label-cairn-init.log" 2>&1 </dev/null ;;
	restic) restic -r "$repo" init >"$work/logs/$label-restic-init.log" 2>&1 </dev/null ;;
	borg) borg init -e repokey "$repo" >"$work/logs/$label-borg-init.log" 2>&1 </dev/null ;;
	esac || {
		log "$tool init failed: see $work/logs/$label-$tool-init.log"
		tail -5 "$work/logs/$label-$tool-init.log" >&2 || true
		R[$label/$tool/backup]="failed"
		failures=$((failures + 1))
		return 1
	}
	local b1 b2 r
	case "$tool" in
	cairn)
		b1=("$cairn" --repo "$repo" backup "$src" --json)
		b2=("$cairn" --repo "$repo" backup "$src" --json)
		r=("$cairn" --repo "$repo" restore latest --target "$target")
		;;
	restic)
		b1=(restic -r "$repo" backup "$src" --json --quiet)
		b2=(restic -r "$repo" backup "$src" --json --quiet)
		r=(restic -r "$repo" restore latest --target "$target")
		;;
	borg)
		b1=(borg create --stats "$repo::first" "$src")
		b2=(borg create --stats "$repo::second" "$src")
		r=(sh -c 'cd "$1" && shift && exec "$@"' sh "$target" borg extract "$repo::second")
		;;
	esac
	measure "$label" "$tool" backup "${b1[@]}" || return 1
	[ "$full" = 1 ] || { rm -rf "$repo" "$state" "$target"; return 0; }
	measure "$label" "$tool" rebackup "${b2[@]}" || true
	if measure "$label" "$tool" restore "${r[@]}"; then
		# Every tool restores the absolute path below the target.
		if diff -r --no-dereference "$src" "$target$src" >"$work/logs/$label-$tool-diff.log" 2>&1; then
			R[$label/$tool/verify]="ok"
		else
			R[$label/$tool/verify]="DIFFERS"
			failures=$((failures + 1))
			log "$tool restore differs from the corpus: see $work/logs/$label-$tool-diff.log"
		fi
	fi
	R[$label/$tool/size]=$(du -sb "$repo" | awk '{printf "%.1f", $1/1048576}')
	log "$tool repository: ${R[$label/$tool/size]} MiB"
	rm -rf "$repo" "$target" "$state"
}

warm() {
	log "reading the corpus once (warm page cache)"
	tar -cf - -C "$1" . | cat >/dev/null
}

ratio() {
	local a="$1" b="$2"
	if [[ "$a" =~ ^[0-9.]+$ && "$b" =~ ^[0-9.]+$ ]] && awk -v b="$b" 'BEGIN{exit !(b>0)}'; then
		awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}'
	else
		echo "–"
	fi
}

v() { echo "${R[$1]:-–}"; }

src="$(corpus 1)"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
warm "$src"
for ((k = 1; k <= runs; k++)); do
	for t in $tools; do
		log "== $t (run $k of $runs)"
		run_tool "run$k" "$t" "$src" 1 || true
	done
done
# Keep the fastest time, the highest memory and any failure of each step.
for t in $tools; do
	for m in backup rebackup restore size backup-rss rebackup-rss restore-rss verify; do
		agg=""
		for ((k = 1; k <= runs; k++)); do
			x="${R[run$k/$t/$m]:-}"
			if [ -z "$x" ]; then
				continue
			elif [[ ! "$x" =~ ^[0-9.]+$ ]]; then
				# "ok", or a failure ("failed", "DIFFERS") that wins.
				[ "$x" = ok ] && [ -z "$agg" ] && agg=ok
				[ "$x" = ok ] || { agg="$x"; break; }
			elif [ -z "$agg" ]; then
				agg="$x"
			else
				case "$m" in
				*-rss) agg=$(awk -v a="$agg" -v b="$x" 'BEGIN{print (b>a)?b:a}') ;;
				*) agg=$(awk -v a="$agg" -v b="$x" 'BEGIN{print (b<a)?b:a}') ;;
				esac
			fi
		done
		[ -z "$agg" ] || R[base/$t/$m]="$agg"
	done
done

src10=""
if [ -n "$files" ]; then
	src10="$(corpus "$files")"
	warm "$src10"
	for t in $tools; do
		log "== $t, ${files}x files"
		run_tool many "$t" "$src10" 0 || true
	done
fi

# --- report ---------------------------------------------------------------
corpus_bytes=$(du -sb "$src" | awk '{print $1}')
mbps() { [[ "$1" =~ ^[0-9.]+$ ]] && awk -v s="$1" -v n="$corpus_bytes" 'BEGIN{printf "%.0f", n/1048576/s}' || echo "–"; }
has() { [[ " $tools " == *" $1 "* ]]; }

table() {
	local cols="" sep=""
	for t in $tools; do cols+=" $t |"; sep+="---:|"; done
	has cairn && has restic && { cols+=" cairn/restic |"; sep+="---:|"; }
	has cairn && has borg && { cols+=" cairn/borg |"; sep+="---:|"; }
	echo "| measure |$cols"
	echo "|---|$sep"
	local rows=(
		"backup|first backup (s)"
		"rebackup|no-change re-backup (s)"
		"restore|restore (s)"
		"size|repository size (MiB)"
		"backup-rss|peak memory, first backup (MiB)"
		"rebackup-rss|peak memory, re-backup (MiB)"
		"restore-rss|peak memory, restore (MiB)"
	)
	local row key name line
	for row in "${rows[@]}"; do
		key="${row%%|*}" name="${row#*|}"
		line="| $name |"
		for t in $tools; do line+=" $(v base/$t/$key) |"; done
		has cairn && has restic && line+=" $(ratio "$(v base/cairn/$key)" "$(v base/restic/$key)") |"
		has cairn && has borg && line+=" $(ratio "$(v base/cairn/$key)" "$(v base/borg/$key)") |"
		echo "$line"
	done
	line="| first backup throughput (MiB/s) |"
	for t in $tools; do line+=" $(mbps "$(v base/$t/backup)") |"; done
	has cairn && has restic && line+=" |"
	has cairn && has borg && line+=" |"
	echo "$line"
	line="| restore matches the corpus (diff -r) |"
	for t in $tools; do line+=" $(v base/$t/verify) |"; done
	has cairn && has restic && line+=" |"
	has cairn && has borg && line+=" |"
	echo "$line"
}

table_many() {
	echo "| first backup | $(for t in $tools; do printf '%s | ' "$t"; done)"
	echo "|---|$(for t in $tools; do printf -- '---:|'; done)"
	echo "| time, 1x files (s) | $(for t in $tools; do printf '%s | ' "$(v base/$t/backup)"; done)"
	echo "| time, ${files}x files (s) | $(for t in $tools; do printf '%s | ' "$(v many/$t/backup)"; done)"
	echo "| peak memory, 1x files (MiB) | $(for t in $tools; do printf '%s | ' "$(v base/$t/backup-rss)"; done)"
	echo "| peak memory, ${files}x files (MiB) | $(for t in $tools; do printf '%s | ' "$(v many/$t/backup-rss)"; done)"
	echo "| memory growth ${files}x / 1x | $(for t in $tools; do printf '%s | ' "$(ratio "$(v many/$t/backup-rss)" "$(v base/$t/backup-rss)")"; done)"
}

cpu="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
mem="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
os="$(. /etc/os-release && echo "$PRETTY_NAME")"
versions="cairn $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$root" && git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
has restic && versions+=", $(restic version | awk '{print $1, $2}')"
has borg && versions+=", $(borg --version)"
versions+=", $(go version | awk '{print $3}')"

report="$(
	echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu), $mem RAM, $os, kernel $(uname -r);"
	echo "  load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- versions: $versions"
	echo "- corpus: \`go run ./bench/gencorpus -size $size -seed $seed\`, $(head -1 "$src.summary" | sed 's/^corpus: //'):"
	echo
	echo '```'
	tail -n +2 "$src.summary"
	echo '```'
	echo
	echo "Times are wall-clock seconds with a warm page cache, the fastest of $runs run(s);"
	echo "memory is the highest peak RSS (GNU time) of those runs. Ratios below 1 mean"
	echo "cairn is faster, smaller or leaner."
	echo
	table
	if [ -n "$files" ]; then
		echo
		echo "### Memory with ${files}x the files"
		echo
		echo "Corpus: $(head -1 "$src10.summary" | sed 's/^corpus: //')."
		echo
		table_many
	fi
)"

echo
echo "$report"

if [ "$write" = 1 ]; then
	doc="$root/docs/benchmarks.md"
	mkdir -p "$root/docs"
	{
		echo "# Benchmarks: cairn, restic, borg"
		echo
		echo "Written by \`bench/compare.sh\` (\`make compare\`); the latest run is on top."
		echo "Reproduce with \`bench/compare.sh -size $size -seed $seed -runs $runs${files:+ -files ${files}x}\`."
		echo
		echo "$report"
	} >"$doc"
	log "wrote $doc"
fi

if [ "$failures" != 0 ]; then
	log "$failures step(s) failed: see $work/logs"
	exit 1
fi
