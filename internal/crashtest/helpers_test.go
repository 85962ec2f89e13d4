package crashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// binary is the cairn binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests needs no binary
	}
	dir, err := os.MkdirTemp("", "cairn-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "cairn")
	cmd := exec.Command("go", "build", "-o", binary, "github.com/cairn-backup/cairn/cmd/cairn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		return 1
	}
	return m.Run()
}

const password = "crash-test-pw"

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

// manifest maps the absolute path of every regular file to the SHA-256 of
// its content.
type manifest map[string]string

func (m manifest) diff(o manifest) string {
	var out []string
	for p, h := range m {
		if g, ok := o[p]; !ok {
			out = append(out, "missing "+p)
		} else if g != h {
			out = append(out, "differs "+p)
		}
	}
	for p := range o {
		if _, ok := m[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

// env is one repository and source tree driven through the binary.
type env struct {
	t    *testing.T
	dir  string
	repo string
	src  string
	rng  *rand.Rand
	// want holds the expected content of every snapshot known to exist.
	want       map[string]manifest
	hasRestore bool
	nfile      int
}

func newEnv(t *testing.T, seed uint64) *env {
	t.Helper()
	return newEnvAt(t, seed, "")
}

// newEnvAt is newEnv with the repository in repoDir ("" for a temporary
// folder).
func newEnvAt(t *testing.T, seed uint64, repoDir string) *env {
	t.Helper()
	dir := t.TempDir()
	if repoDir == "" {
		repoDir = filepath.Join(dir, "repo")
	}
	e := &env{t: t, dir: dir, repo: repoDir, src: filepath.Join(dir, "src"),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), want: map[string]manifest{}}
	// The repository is made in-process with a cheap KDF, so that the
	// many processes below do not each spend a quarter second on Argon2.
	st, err := local.Create(e.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), st, []byte(password), repo.Options{KDF: &cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, stderr, _ := e.run("restore", "--help")
	out, _, _ := e.run("help", "restore")
	e.hasRestore = strings.Contains(out, "--target") && !strings.Contains(stderr, "not available")
	t.Logf("verifying snapshots through cairn restore too: %v", e.hasRestore)
	return e
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, append([]string{"--repo", e.repo}, args...)...)
	cmd.Env = append(os.Environ(), "CAIRN_PASSWORD="+password, "CAIRN_HOME="+filepath.Join(e.dir, "home"))
	return cmd
}

// run runs cairn to completion and returns its output and exit code.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	cmd := e.command(args...)
	var o, es bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &es
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		e.t.Fatalf("run cairn %v: %v", args, err)
	}
	return o.String(), es.String(), code
}

// mustRun runs cairn and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("cairn %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

func (e *env) writeFile(name string, data []byte) {
	e.t.Helper()
	p := filepath.Join(e.src, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := e.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(e.rng.Uint32())
	}
	return b
}

func (e *env) textBytes(n int) []byte {
	words := []string{"cairn", "backup", "stone", "peer", "pack", "index", "tree", "blob", "snapshot", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[e.rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func (e *env) newFileName() string {
	e.nfile++
	return fmt.Sprintf("d%d/s%d/f%04d", e.rng.IntN(4), e.rng.IntN(3), e.nfile)
}

// generate makes a tree of a few MB: many small files, some text, some
// medium, two large random files and a duplicate.
func (e *env) generate() {
	for i := 0; i < 80; i++ {
		n := e.rng.IntN(8 << 10)
		if i%3 == 0 {
			e.writeFile(e.newFileName(), e.textBytes(n))
		} else {
			e.writeFile(e.newFileName(), e.randomBytes(n))
		}
	}
	for i := 0; i < 8; i++ {
		e.writeFile(e.newFileName(), e.randomBytes(64<<10+e.rng.IntN(448<<10)))
	}
	big := e.randomBytes(1<<20 + e.rng.IntN(1<<20))
	e.writeFile("big/one", big)
	e.writeFile("big/copy", big)
	e.writeFile("big/two", e.randomBytes(1<<20+e.rng.IntN(1<<20)))
	e.writeFile("empty", nil)
}

// mutate changes part of the tree: edits, new files, deletions.
func (e *env) mutate() {
	files := e.files()
	for i := 0; i < 6 && len(files) > 0; i++ {
		p := files[e.rng.IntN(len(files))]
		if e.rng.IntN(3) == 0 {
			os.Remove(p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // removed above
		}
		if len(b) > 1<<20 {
			// Rewrite a region of a large file: most chunks stay.
			off := e.rng.IntN(len(b) - 4096)
			copy(b[off:], e.randomBytes(4096))
		} else {
			b = e.randomBytes(e.rng.IntN(16 << 10))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		e.writeFile(e.newFileName(), e.randomBytes(e.rng.IntN(64<<10)))
	}
	if e.rng.IntN(3) == 0 {
		e.writeFile(e.newFileName(), e.randomBytes(256<<10+e.rng.IntN(1<<20)))
	}
}

func (e *env) files() []string {
	var out []string
	filepath.WalkDir(e.src, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func manifestFS(t *testing.T, root, strip string) manifest {
	t.Helper()
	out := manifest{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, strip)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type backupJSON struct {
	SnapshotID string `json:"snapshot_id"`
}

// backup runs a backup that must succeed and records what it saved.
func (e *env) backup() string {
	e.t.Helper()
	out := e.mustRun("backup", e.src, "--json")
	var b backupJSON
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.SnapshotID == "" {
		e.t.Fatalf("backup output %q: %v", out, err)
	}
	e.want[b.SnapshotID] = manifestFS(e.t, e.src, "")
	return b.SnapshotID
}

type snapshotJSON struct {
	ID string `json:"id"`
}

func (e *env) snapshots() map[string]bool {
	e.t.Helper()
	out := e.mustRun("snapshots", "--json")
	var list []snapshotJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		e.t.Fatalf("snapshots output %q: %v", out, err)
	}
	ids := map[string]bool{}
	for _, s := range list {
		ids[s.ID] = true
	}
	return ids
}

type checkJSON struct {
	Errors   []json.RawMessage `json:"errors"`
	Warnings []json.RawMessage `json:"warnings"`
}

// check runs check --read-data and fails the test on any error; it
// returns the number of warnings.
func (e *env) check(what string) int {
	e.t.Helper()
	out, stderr, code := e.run("check", "--read-data", "--json")
	var res checkJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res.Errors) > 0 {
		e.t.Fatalf("%s: check --read-data: exit %d\n%s%s", what, code, out, stderr)
	}
	return len(res.Warnings)
}

// readSnapshot reads every file of a snapshot back through internal/repo.
func readSnapshot(ctx context.Context, r *repo.Repository, id string) (manifest, error) {
	sid, err := crypto.ParseID(id)
	if err != nil {
		return nil, err
	}
	s, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		return nil, err
	}
	out := manifest{}
	var walk func(dir string, tree crypto.ID) error
	walk = func(dir string, tree crypto.ID) error {
		t, err := r.LoadTree(ctx, tree)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			p := path.Join(dir, n.Name)
			if n.Subtree != nil {
				if err := walk(p, *n.Subtree); err != nil {
					return err
				}
				continue
			}
			if n.Type != repo.NodeFile {
				continue
			}
			h := sha256.New()
			var buf []byte
			for _, b := range n.Content {
				buf, err = r.LoadBlob(ctx, b, buf[:0])
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				h.Write(buf)
			}
			out[p] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	}
	if err := walk("/", s.Tree); err != nil {
		return nil, err
	}
	return out, nil
}

// verify asserts that every expected snapshot is listed and reads back
// byte-identical, in-process for all of them and through cairn restore
// for one picked at random.
func (e *env) verify(what string) {
	e.t.Helper()
	ids := e.snapshots()
	for id := range e.want {
		if !ids[id] {
			e.t.Fatalf("%s: snapshot %s is gone", what, id[:8])
		}
	}
	ctx := context.Background()
	st, err := local.Open(e.repo)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, []byte(password), repo.Options{})
	if err != nil {
		e.t.Fatalf("%s: open: %v", what, err)
	}
	defer r.Close()
	if err := r.LoadIndex(ctx); err != nil {
		e.t.Fatalf("%s: load index: %v", what, err)
	}
	var all []string
	for id, want := range e.want {
		all = append(all, id)
		got, err := readSnapshot(ctx, r, id)
		if err != nil {
			e.t.Fatalf("%s: snapshot %s: %v", what, id[:8], err)
		}
		if d := want.diff(got); d != "" {
			e.t.Fatalf("%s: snapshot %s reads back wrong: %s", what, id[:8], d)
		}
	}
	if !e.hasRestore || len(all) == 0 {
		return
	}
	sort.Strings(all)
	id := all[e.rng.IntN(len(all))]
	target := filepath.Join(e.dir, "restore")
	os.RemoveAll(target)
	e.mustRun("restore", id, "--target", target)
	got := manifestFS(e.t, target, target)
	if d := e.want[id].diff(got); d != "" {
		e.t.Fatalf("%s: restore of snapshot %s differs: %s", what, id[:8], d)
	}
	os.RemoveAll(target)
}

// state describes what a killed process left behind, for the log.
func (e *env) state() string {
	count := func(dir string, tmp bool) int {
		n := 0
		filepath.WalkDir(filepath.Join(e.repo, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasPrefix(d.Name(), ".tmp-") == tmp {
				n++
			}
			return nil
		})
		return n
	}
	return fmt.Sprintf("%d indexes, %d packs, %d locks, %d temp files",
		count("index", false), count("data", false), count("locks", false), count("", true))
}
