// Package rundir is the run directory's file layout and formats, shared by the kernel (which
// writes the ledger and status) and the CLI (which writes commands and freeze state and reads the
// rest). Names and JSON fields are those of the Python hotcb, so either tool can drive a run.
package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
)

// File names inside a run directory.
const (
	Config   = "hotcb.yaml"
	Commands = "hotcb.commands.jsonl"
	Applied  = "hotcb.applied.jsonl"
	Recipe   = "hotcb.recipe.jsonl"
	Freeze   = "hotcb.freeze.json"
	Adjust   = "hotcb.adjust.yaml"
	Sources  = "hotcb.sources"
	Log      = "hotcb.log"
	Status   = "hotcb.status.json"
	// Lock is held (flock) by the training process that owns the run directory, and names it.
	Lock = "hotcb.lock"
)

// Dir is a run directory.
type Dir string

// RanksDir holds, in a data-parallel run's directory, the run directories of ranks 1 and up
// (rank 0 uses the run directory itself).
const RanksDir = "ranks"

// RankDir is rank's run directory: runDir for rank 0, runDir/ranks/<rank> for the others. Each
// rank keeps its own ledger, status, log and outputs there.
func RankDir(runDir string, rank int) string {
	if rank <= 0 {
		return runDir
	}
	return filepath.Join(runDir, RanksDir, strconv.Itoa(rank))
}

// Ranks lists the ranks with a run directory under d: 0, then those under ranks/, in order.
func (d Dir) Ranks() []int {
	out := []int{0}
	ents, _ := os.ReadDir(d.Path(RanksDir))
	var rs []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 && e.IsDir() && strconv.Itoa(n) == e.Name() {
			rs = append(rs, n)
		}
	}
	sort.Ints(rs)
	return append(out, rs...)
}

// Path joins a file name to the directory.
func (d Dir) Path(name string) string { return filepath.Join(string(d), name) }

// Ensure creates the directory (0700) if needed.
func (d Dir) Ensure() error { return os.MkdirAll(string(d), 0o700) }

// WriteConfigIfAbsent creates hotcb.yaml (0600) with text unless something is there already: a
// user's edits are never overwritten (O_EXCL, which also refuses to follow a dangling symbolic
// link planted in its place).
func (d Dir) WriteConfigIfAbsent(text string) error {
	f, err := os.OpenFile(d.Path(Config), os.O_WRONLY|os.O_CREATE|os.O_EXCL|NoFollow, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Decisions of the applied ledger.
const (
	DecisionApplied       = "applied"
	DecisionFailed        = "failed"
	DecisionIgnoredFreeze = "ignored_freeze"
	DecisionIgnoredReplay = "ignored_replay"
	DecisionSkippedNoop   = "skipped_noop"
	// DecisionIgnored is hotcb's decision for input it does not act on: here, a line of the
	// commands file that is not an op (notes: why; payload: its line number and start).
	DecisionIgnored = "ignored"
)

// Sources of ops in the ledger.
const (
	SourceExternal = "external"
	SourceYAML     = "yaml"
	SourceReplay   = "replay"
	SourceAPI      = "api"
	SourceWatch    = "watch"
	// SourceRestore marks the loads with which a restarted kernel restores the callbacks' final
	// state from the ledger; recipes leave them out (the ops they summarise are in the ledger).
	SourceRestore = "restore"
	// SourceWatchdog marks the disable of a callback whose stuck call the watchdog abandoned;
	// recipes leave it out (a replay abandons on its own if the call sticks again).
	SourceWatchdog = "watchdog"
	// SourceAutoDisable marks the disable of a callback whose call failed (hotcb's
	// auto_disable_on_error); notes say which call and the error. Recipes leave it out (a replay
	// disables on its own if the call fails again).
	SourceAutoDisable = "auto_disable"
	// SourceRollback marks an optimizer's hyper-parameters put back after the first step with a
	// set_params failed in libtorch (params: the restored values); recipes keep it, so a replay
	// ends with the values the run had.
	SourceRollback = "rollback"
)

// LedgerEntry is one line of hotcb.applied.jsonl.
type LedgerEntry struct {
	// hotcb's fields, in the order hotcb writes them.
	Seq       int64          `json:"seq"`
	Step      int64          `json:"step"`
	Epoch     *float64       `json:"epoch"`
	Event     string         `json:"event"`
	Phase     *string        `json:"phase"`
	Module    string         `json:"module"`
	Op        string         `json:"op"`
	ID        *string        `json:"id"`
	Source    string         `json:"source"`
	Decision  string         `json:"decision"`
	Params    map[string]any `json:"params"` // the op's params (null when it has none)
	Payload   map[string]any `json:"payload"`
	Error     *string        `json:"error"`
	Traceback *string        `json:"traceback"` // where a failed op panicked (Go stack), else null
	Notes     *string        `json:"notes"`
	WallTime  float64        `json:"wall_time"`
	// Cursor is how far the kernel had read its inputs when it wrote this entry (hotcb-go's
	// field; hotcb ignores it). A restarted kernel resumes from the last entry's cursor.
	Cursor *Cursor `json:"cursor,omitempty"`
}

// Cursor is a kernel's position in its inputs: the last line of hotcb.commands.jsonl it
// processed (its number, the byte offset just after its newline, the SHA-256 of its text, so a
// replaced or rewritten file is noticed) and the SHA-256 of the hotcb.yaml it last reconciled.
type Cursor struct {
	CommandsLine   int    `json:"commands_line,omitempty"`
	CommandsOffset int64  `json:"commands_offset,omitempty"`
	CommandsSHA256 string `json:"commands_line_sha256,omitempty"`
	ConfigSHA256   string `json:"config_sha256,omitempty"`
}

// UnmarshalJSON reads a ledger line with the numbers of its params and payload in the form
// callbacks receive them (params.Normalize): 50 an int64, 0.5 and 2.0 float64s, never a
// json.Number.
func (e *LedgerEntry) UnmarshalJSON(b []byte) error {
	type plain LedgerEntry // without the method
	var p plain
	if err := unmarshalExact(b, &p); err != nil {
		return err
	}
	var err error
	if p.Params, err = params.NormalizeMap(p.Params); err != nil {
		return fmt.Errorf("params %v", err)
	}
	if p.Payload, err = params.NormalizeMap(p.Payload); err != nil {
		return fmt.Errorf("payload %v", err)
	}
	*e = LedgerEntry(p)
	return nil
}

// At says when a recipe entry applies.
type At struct {
	Step  int64  `json:"step" yaml:"step"`
	Event string `json:"event" yaml:"event"`
}

// RecipeEntry is one line of hotcb.recipe.jsonl: an op and when to apply it.
type RecipeEntry struct {
	At            At                  `json:"at" yaml:"at"`
	Module        string              `json:"module" yaml:"module"`
	Op            string              `json:"op" yaml:"op"`
	ID            string              `json:"id,omitempty" yaml:"id,omitempty"`
	Params        map[string]any      `json:"params,omitempty" yaml:"params,omitempty"`
	Target        *ops.CallbackTarget `json:"target,omitempty" yaml:"target,omitempty"`
	Init          map[string]any      `json:"init,omitempty" yaml:"init,omitempty"`
	Enabled       *bool               `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Mode          string              `json:"mode,omitempty" yaml:"mode,omitempty"`
	SourceCapture *ops.SourceCapture  `json:"source_capture,omitempty" yaml:"source_capture,omitempty"`
}

// UnmarshalJSON reads a recipe line with its params and init in the form callbacks receive them
// (params.Normalize): 50 an int64, 0.5 and 2.0 float64s, never a json.Number.
func (r *RecipeEntry) UnmarshalJSON(b []byte) error {
	type plain RecipeEntry // without the methods
	var p plain
	if err := unmarshalExact(b, &p); err != nil {
		return err
	}
	n, err := RecipeEntry(p).normalized()
	if err != nil {
		return err
	}
	*r = n
	return nil
}

// ToOp turns a recipe entry into the op it replays.
func (r RecipeEntry) ToOp() ops.Op {
	return ops.Op{Module: r.Module, Op: r.Op, ID: r.ID, Params: r.Params, Target: r.Target, Init: r.Init,
		Enabled: r.Enabled, Mode: r.Mode, SourceCapture: r.SourceCapture}
}

// Freeze modes and policies.
const (
	FreezeOff            = "off"
	FreezeProd           = "prod"
	FreezeReplay         = "replay"
	FreezeReplayAdjusted = "replay_adjusted"
	PolicyBestEffort     = "best_effort"
	PolicyStrict         = "strict"
)

// FreezeState is hotcb.freeze.json.
type FreezeState struct {
	Mode       string  `json:"mode"`
	RecipePath *string `json:"recipe_path"`
	AdjustPath *string `json:"adjust_path"`
	Policy     string  `json:"policy"`
	StepOffset int64   `json:"step_offset"`
}

// Validate checks mode and policy names and that replay modes name a recipe.
func (f FreezeState) Validate() error {
	switch f.Mode {
	case FreezeOff, FreezeProd, FreezeReplay, FreezeReplayAdjusted:
	default:
		return fmt.Errorf("unknown freeze mode %q (want off, prod, replay or replay_adjusted)", f.Mode)
	}
	switch f.Policy {
	case PolicyBestEffort, PolicyStrict, "":
	default:
		return fmt.Errorf("unknown policy %q (want best_effort or strict)", f.Policy)
	}
	if f.Mode == FreezeReplayAdjusted && (f.AdjustPath == nil || *f.AdjustPath == "") {
		return errors.New("replay_adjusted needs an adjust_path")
	}
	return nil
}

// ReadFreeze reads hotcb.freeze.json; a missing or empty file (what hotcb's `init` leaves) is
// mode off.
func ReadFreeze(path string) (FreezeState, error) {
	b, _, err := ReadControl(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FreezeState{Mode: FreezeOff, Policy: PolicyBestEffort}, nil
	}
	if err != nil {
		return FreezeState{}, err
	}
	return ParseFreeze(path, b)
}

// ParseFreeze parses and validates the content b of the freeze file at path, filling in the
// defaults (mode off, policy best_effort). Empty content (what hotcb's init leaves) is mode off.
func ParseFreeze(path string, b []byte) (FreezeState, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return FreezeState{Mode: FreezeOff, Policy: PolicyBestEffort}, nil
	}
	var f FreezeState
	if err := json.Unmarshal(b, &f); err != nil {
		return FreezeState{}, fmt.Errorf("%s: %v", path, err)
	}
	if f.Mode == "" {
		f.Mode = FreezeOff
	}
	if f.Policy == "" {
		f.Policy = PolicyBestEffort
	}
	if err := f.Validate(); err != nil {
		return FreezeState{}, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}

// AppendLine appends one line (a newline is added) with a single write on an O_APPEND file,
// under an advisory lock, so concurrent writers never interleave and a crash loses at most this
// line. The file is created 0600 and its directory 0700 if missing.
func AppendLine(path string, line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("a JSONL line may not contain a newline")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND|NoFollow, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	buf := make([]byte, 0, len(line)+2)
	// A writer that crashed mid-line left no newline: end that torn line first, so that it
	// costs only itself and this line stays parseable.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err == nil && last[0] != '\n' {
			buf = append(buf, '\n')
		}
	}
	buf = append(append(buf, line...), '\n')
	_, err = f.Write(buf)
	return err
}

// AppendJSON marshals v and appends it as one line.
func AppendJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return AppendLine(path, b)
}

// unmarshalExact is json.Unmarshal with numbers in untyped values (a ledger entry's payload, a
// recipe's params) kept as json.Number, so that 50 and 50.0 stay told apart until
// params.Normalize makes them an int64 and a float64.
func unmarshalExact(b []byte, v any) error {
	if !json.Valid(b) {
		return json.Unmarshal(b, v) // its error
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// ReadJSONL reads every complete, valid line of a JSONL file into T. A corrupt or partial line
// (a crash in the middle of a write) is skipped and reported in bad, never fatal.
func ReadJSONL[T any](path string) (items []T, bad []error, err error) {
	return readJSONL[T](path, 0)
}

// readJSONL is ReadJSONL with extra open flags (NoFollow for the run directory's own files).
func readJSONL[T any](path string, flags int) (items []T, bad []error, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|flags, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s is a symbolic link; run-directory files are read only as regular files", path)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	items, bad = scanJSONL[T](f, path)
	return items, bad, nil
}

// scanJSONL parses the JSONL text r holds, read from path, as readJSONL does.
func scanJSONL[T any](r io.Reader, path string) (items []T, bad []error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			bad = append(bad, fmt.Errorf("%s line %d: %v", path, n, err))
			continue
		}
		items = append(items, v)
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, fmt.Errorf("%s: %v", path, err))
	}
	return items, bad
}

// WriteFileAtomic writes data through a temporary file, an fsync and a rename (mode 0600),
// creating the directory if needed: a reader sees the old or the new content, also after a crash.
func WriteFileAtomic(path string, data []byte) error { return writeAtomic(path, data, true) }

// ReplaceFile is WriteFileAtomic without the fsync, for files rewritten often (a status
// snapshot, a gallery page, a picture): a reader never sees half a file, but after a crash the
// file may hold its previous content.
func ReplaceFile(path string, data []byte) error { return writeAtomic(path, data, false) }

// RemoveStaleTemps removes the temporary files WriteFileAtomic and ReplaceFile left for path when
// the writer was killed between creating and renaming them. Only the file's sole writer may call
// it (the kernel, holding the run directory's lock, for the status file).
func RemoveStaleTemps(path string) (removed int, err error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	if err != nil {
		return 0, err
	}
	for _, m := range matches {
		if err := os.Remove(m); err == nil {
			removed++
		}
	}
	return removed, nil
}

func writeAtomic(path string, data []byte, sync bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil && sync {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// Ledger is hotcb.applied.jsonl as a restarting kernel reads it.
type Ledger struct {
	Entries []LedgerEntry
	Bad     []error // lines that do not parse (a torn last line after a crash), reported and skipped
	// MaxSeq is the highest seq in the file, counting lines that do not parse but still show
	// one, so that a restarted writer never reuses a seq.
	MaxSeq int64
}

var seqField = regexp.MustCompile(`"seq"\s*:\s*([0-9]{1,18})\b`)

// ReadLedger reads a ledger; a missing file is an empty ledger.
func ReadLedger(path string) (Ledger, error) {
	var l Ledger
	entries, bad, err := readJSONL[LedgerEntry](path, NoFollow) // the ledger a restart trusts: never through a link
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	l.Entries, l.Bad = entries, bad
	for _, e := range entries {
		l.MaxSeq = max(l.MaxSeq, e.Seq)
	}
	if len(bad) > 0 {
		b, err := os.ReadFile(path)
		if err != nil {
			return l, err
		}
		for _, m := range seqField.FindAllSubmatch(b, -1) {
			if n, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil {
				l.MaxSeq = max(l.MaxSeq, n)
			}
		}
	}
	return l, nil
}

// LockDir takes the run directory's lock for this process (released by closing the file, or
// when the process dies) and writes its pid into it. A second process gets an error naming the
// holder: two writers would interleave the ledger's seq.
func LockDir(d Dir) (*os.File, error) {
	p := d.Path(Lock)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|NoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("run directory %s is in use by another training process (%s); one process at a time drives a run directory",
				d, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d\n", os.Getpid())
	}
	return f, nil
}
