// Command gencorpus writes a deterministic test corpus for backup benchmarks.
//
//	go run ./bench/gencorpus -out DIR -size 1GiB [-seed N] [-scale 10]
//
// The corpus mixes what a real home folder holds, in these top-level folders:
//
//	src/     tens of thousands of small files (0–64 KiB, most a few KiB; code-
//	         like text and binary) in nested folders, some empty files and
//	         folders, a few symlinks
//	medium/  files of 64 KiB–4 MiB, half text, half random
//	media/   large random (incompressible) files, 16–128 MiB
//	docs/    compressible text-like files (words and log lines), 1–32 MiB
//	copies/  partly duplicated files: exact copies, copies shifted by a few
//	         inserted bytes at the start, copies with bytes inserted in the
//	         middle, copies with a new tail appended
//
// -size is the corpus size; the number of small files is 30,000 per GiB (about
// 15% of the bytes).
// -scale multiplies the number (and so the bytes) of small files only, to
// check that a tool's memory stays flat as the file count grows. The same seed,
// size and scale always give the same bytes, names and modification times.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

func main() {
	out := flag.String("out", "", "folder to create the corpus in (must not exist or be empty)")
	sizeFlag := flag.String("size", "1GiB", "corpus size (e.g. 1GiB, 200MiB, 5000000)")
	seed := flag.Uint64("seed", 1, "seed: the same seed gives the same corpus")
	scale := flag.Int("scale", 1, "multiply the number of small files by this")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gencorpus -out DIR [-size 1GiB] [-seed N] [-scale N]")
		os.Exit(2)
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || size < mib {
		fmt.Fprintf(os.Stderr, "gencorpus: -size %q: want a size of at least 1MiB, like 1GiB or 200MiB\n", *sizeFlag)
		os.Exit(2)
	}
	if *scale < 1 {
		fmt.Fprintln(os.Stderr, "gencorpus: -scale must be at least 1")
		os.Exit(2)
	}
	g := newGenerator(*out, *seed)
	if err := g.run(size, *scale); err != nil {
		fmt.Fprintf(os.Stderr, "gencorpus: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(g.summary(size, *seed, *scale))
}

// parseSize parses "1GiB", "512MiB", "64KiB", "1G", "100M", "5000".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"GiB", gib}, {"MiB", mib}, {"KiB", kib},
		{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
		{"G", gib}, {"M", mib}, {"K", kib}, {"B", 1},
	} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, errors.New("bad size")
	}
	return int64(f * float64(mult)), nil
}

// category tallies what was written for one kind of file.
type category struct {
	name  string
	files int
	bytes int64
}

type generator struct {
	root  string
	seed  uint64
	rng   *rand.Rand
	words []string
	mtime time.Time
	dirs  int
	cats  []*category
	// sources are content specs that copies/ may duplicate.
	sources []spec
	buf     *bufio.Writer
}

// spec describes a file's content so it can be produced again for copies.
type spec struct {
	text bool
	seed uint64
	size int64
}

func newGenerator(root string, seed uint64) *generator {
	g := &generator{
		root:  root,
		seed:  seed,
		rng:   rand.New(rand.NewPCG(seed, 0x636f72707573)),
		mtime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		buf:   bufio.NewWriterSize(nil, 256*kib),
	}
	g.words = makeWords(g.rng, 4000)
	return g
}

// makeWords returns n pseudo-words with a Zipf-like reuse of syllables.
func makeWords(rng *rand.Rand, n int) []string {
	syll := []string{"ka", "ro", "mi", "te", "sa", "lo", "ne", "di", "pa", "gu", "be", "fi",
		"zo", "ha", "ri", "on", "en", "an", "is", "ut", "st", "tr", "ch", "qu", "er", "el"}
	words := make([]string, n)
	for i := range words {
		var b strings.Builder
		for k := 1 + rng.IntN(4); k > 0; k-- {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		words[i] = b.String()
	}
	return words
}

func (g *generator) category(name string) *category {
	c := &category{name: name}
	g.cats = append(g.cats, c)
	return c
}

func (g *generator) run(size int64, scale int) error {
	if err := os.MkdirAll(g.root, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(g.root); err != nil {
		return err
	} else if len(ents) > 0 {
		return fmt.Errorf("%s is not empty: give a new folder", g.root)
	}
	nsmall := int(30000 * float64(size) / gib)
	nsmall = max(nsmall, 50) * scale
	if err := g.smallTree(nsmall); err != nil {
		return err
	}
	// The rest of the size goes to the bulk files; -scale adds small files
	// on top of -size without taking bytes from the others.
	rest := max(size-g.cats[0].bytes/int64(scale), size/2)
	if err := g.bulk("medium", rest*15/90, 64*kib, 4*mib, 0.5); err != nil {
		return err
	}
	if err := g.bulk("media", rest*35/90, 16*mib, 128*mib, 0); err != nil {
		return err
	}
	if err := g.bulk("docs", rest*25/90, 1*mib, 32*mib, 1); err != nil {
		return err
	}
	return g.copies(rest * 15 / 90)
}

// smallTree writes n small files into a random tree of nested folders.
func (g *generator) smallTree(n int) error {
	c := g.category("small files (src/)")
	type dir struct {
		path  string
		depth int
	}
	ndirs := max(n/40, 1)
	dirs := []dir{{filepath.Join(g.root, "src"), 0}}
	for len(dirs) < ndirs {
		parent := dirs[g.rng.IntN(len(dirs))]
		if parent.depth >= 7 {
			continue
		}
		name := fmt.Sprintf("%s-%d", g.word(), len(dirs))
		dirs = append(dirs, dir{filepath.Join(parent.path, name), parent.depth + 1})
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, 0o755); err != nil {
			return err
		}
	}
	g.dirs += len(dirs)
	exts := []string{".go", ".c", ".h", ".md", ".txt", ".json", ".py", ".html", ".css", ".js"}
	binExts := []string{".png", ".o", ".bin", ".gz", ".jpg"}
	for i := range n {
		d := dirs[g.rng.IntN(len(dirs))]
		var size int64
		switch r := g.rng.Float64(); {
		case r < 0.02:
			size = 0
		case r < 0.9:
			size = int64(g.logUniform(16, 16*kib))
		default:
			size = int64(g.logUniform(16*kib, 64*kib))
		}
		text := g.rng.Float64() < 0.7
		ext := exts[g.rng.IntN(len(exts))]
		if !text {
			ext = binExts[g.rng.IntN(len(binExts))]
		}
		name := filepath.Join(d.path, fmt.Sprintf("%s_%d%s", g.word(), i, ext))
		if err := g.writeFile(name, spec{text: text, seed: g.rng.Uint64(), size: size}); err != nil {
			return err
		}
		c.files++
		c.bytes += size
	}
	// A few empty folders and symlinks (relative, some dangling).
	for i := range max(n/1000, 3) {
		d := dirs[g.rng.IntN(len(dirs))]
		if err := os.Mkdir(filepath.Join(d.path, fmt.Sprintf("empty-%d", i)), 0o755); err != nil {
			return err
		}
		g.dirs++
		target := "../" + g.word()
		if i%2 == 0 {
			target = "."
		}
		if err := os.Symlink(target, filepath.Join(d.path, fmt.Sprintf("link-%d", i))); err != nil {
			return err
		}
	}
	return nil
}

// bulk writes files of lo..hi bytes (log-uniform, capped to keep at least two
// files) into folder name until budget bytes are written. textShare is the
// probability that a file is text rather than random bytes.
func (g *generator) bulk(name string, budget, lo, hi int64, textShare float64) error {
	kind := map[string]string{"medium": "medium files (medium/)", "media": "large random files (media/)",
		"docs": "text files (docs/)"}[name]
	c := g.category(kind)
	dir := filepath.Join(g.root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g.dirs++
	hi = max(min(hi, budget/2), 1)
	lo = min(lo, hi)
	for i := 0; c.bytes < budget; i++ {
		size := min(int64(g.logUniform(float64(lo), float64(hi))), budget-c.bytes)
		s := spec{text: g.rng.Float64() < textShare, seed: g.rng.Uint64(), size: size}
		ext := ".bin"
		if s.text {
			ext = ".txt"
		}
		if err := g.writeFile(filepath.Join(dir, fmt.Sprintf("%s-%03d%s", g.word(), i, ext)), s); err != nil {
			return err
		}
		g.sources = append(g.sources, s)
		c.files++
		c.bytes += size
	}
	return nil
}

// copies writes partly duplicated files of earlier medium, large and text
// files until budget bytes are written.
func (g *generator) copies(budget int64) error {
	c := g.category("partial duplicates (copies/)")
	dir := filepath.Join(g.root, "copies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g.dirs++
	if len(g.sources) == 0 {
		return nil
	}
	for i := 0; c.bytes < budget; i++ {
		src := g.sources[g.rng.IntN(len(g.sources))]
		if src.size > budget-c.bytes+src.size/2 {
			// Too big for what is left: take the smallest source instead.
			for _, s := range g.sources {
				if s.size < src.size {
					src = s
				}
			}
		}
		mode := i % 4
		extra := int64(1 + g.rng.IntN(4096))
		xseed := g.rng.Uint64()
		name := filepath.Join(dir, fmt.Sprintf("%s-%03d-%s", g.word(), i, []string{"copy", "shifted", "inserted", "appended"}[mode]))
		var r io.Reader
		size := src.size
		switch mode {
		case 0:
			r = g.content(src)
		case 1:
			r = io.MultiReader(g.content(spec{seed: xseed, size: extra}), g.content(src))
			size += extra
		case 2:
			half := src.size / 2
			tail := g.content(src)
			if _, err := io.CopyN(io.Discard, tail, half); err != nil {
				return err
			}
			r = io.MultiReader(io.LimitReader(g.content(src), half), g.content(spec{seed: xseed, size: extra}), tail)
			size += extra
		case 3:
			extra *= 64
			r = io.MultiReader(g.content(src), g.content(spec{seed: xseed, size: extra}))
			size += extra
		}
		if err := g.writeReader(name, r); err != nil {
			return err
		}
		c.files++
		c.bytes += size
	}
	return nil
}

func (g *generator) word() string { return g.words[g.rng.IntN(len(g.words))] }

func (g *generator) logUniform(lo, hi float64) float64 {
	if lo < 1 {
		lo = 1
	}
	if hi <= lo {
		return lo
	}
	return lo * math.Pow(hi/lo, g.rng.Float64())
}

func (g *generator) writeFile(name string, s spec) error {
	return g.writeReader(name, g.content(s))
}

func (g *generator) writeReader(name string, r io.Reader) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	g.buf.Reset(f)
	if _, err := io.Copy(g.buf, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := g.buf.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	mt := g.mtime.Add(time.Duration(g.rng.Int64N(int64(300 * 24 * time.Hour))))
	return os.Chtimes(name, mt, mt)
}

// content returns a reader of s.size bytes: random, or text-like.
func (g *generator) content(s spec) io.Reader {
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(s.seed >> (8 * i))
		seed[8+i] = byte(g.seed >> (8 * i))
	}
	if !s.text {
		return io.LimitReader(rand.NewChaCha8(seed), s.size)
	}
	return io.LimitReader(&textReader{rng: rand.New(rand.NewPCG(s.seed, g.seed)), words: g.words}, s.size)
}

// textReader produces an endless stream of prose-like and log-like lines.
type textReader struct {
	rng   *rand.Rand
	words []string
	line  []byte
	n     int // lines so far
}

func (t *textReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(t.line) == 0 {
			t.next()
		}
		k := copy(p[n:], t.line)
		t.line = t.line[k:]
		n += k
	}
	return n, nil
}

func (t *textReader) next() {
	b := t.line[:0]
	t.n++
	if t.rng.IntN(3) == 0 {
		// A log line: timestamp, level, component, message with numbers.
		b = fmt.Appendf(b, "2024-%02d-%02dT%02d:%02d:%02d.%03dZ %s [%s] ",
			1+t.rng.IntN(12), 1+t.rng.IntN(28), t.rng.IntN(24), t.rng.IntN(60), t.rng.IntN(60), t.rng.IntN(1000),
			[]string{"INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"}[t.rng.IntN(6)],
			t.words[t.zipf(50)])
	}
	for k := 3 + t.rng.IntN(12); k > 0; k-- {
		b = append(b, t.words[t.zipf(len(t.words))]...)
		switch t.rng.IntN(12) {
		case 0:
			b = strconv.AppendInt(append(b, ' '), int64(t.rng.IntN(100000)), 10)
		case 1:
			b = append(b, ',')
		}
		b = append(b, ' ')
	}
	b[len(b)-1] = '.'
	b = append(b, '\n')
	t.line = b
}

// zipf returns a skewed index in [0, n): small indexes are far more likely.
func (t *textReader) zipf(n int) int {
	u := t.rng.Float64()
	return int(u * u * u * float64(n))
}

func (g *generator) summary(size int64, seed uint64, scale int) string {
	var b strings.Builder
	files, bytes := 0, int64(0)
	for _, c := range g.cats {
		files += c.files
		bytes += c.bytes
	}
	fmt.Fprintf(&b, "corpus: %d files in %d folders, %s (asked %s), seed %d, scale %d\n",
		files, g.dirs, human(bytes), human(size), seed, scale)
	for _, c := range g.cats {
		fmt.Fprintf(&b, "  %-28s %7d files %10s\n", c.name, c.files, human(c.bytes))
	}
	return strings.TrimRight(b.String(), "\n")
}

func human(n int64) string {
	switch {
	case n >= gib:
		return fmt.Sprintf("%.2f GiB", float64(n)/gib)
	case n >= mib:
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	case n >= kib:
		return fmt.Sprintf("%.1f KiB", float64(n)/kib)
	}
	return fmt.Sprintf("%d B", n)
}
