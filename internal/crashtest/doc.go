// Package crashtest holds cairn's crash and fault-injection tests; it has
// no code of its own.
//
// The crash tests build the cairn binary once, then run backup, forget
// --prune and prune as real processes on a generated tree and SIGKILL them
// after a random delay (a backup is also killed while a second backup of
// another source runs alongside; that one must succeed). After each kill they assert what DESIGN.md §4
// promises: check --read-data passes (the killed process's lock is
// detected as stale without help), every snapshot that existed before is
// still listed and reads back byte-identical, and the next backup
// completes. The delays come from a seeded generator whose seed is logged,
// so a failure can be replayed:
//
//	CAIRN_CRASH_SEED=1234 go test ./internal/crashtest -run Crash -v
//
// CAIRN_CRASH_ITERATIONS sets the number of kills (default 24, a couple of
// minutes at most on a small machine); set it higher to hunt for rare
// interleavings locally.
package crashtest
