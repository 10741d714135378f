package kernel_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotcb/hotcb/rundir"
)

// Faults of the run directory under the kernel. The controller's own tests cover a truncated,
// replaced, removed and directory commands file for a bare controller
// (TestTruncatedReplacedRemovedAndDirectory) and a ledger that is a directory
// (TestYAMLThroughTheKernelAndReadOnlyLedger); these add the kernel's side of them.

// verifyNoLeaks: goroutines started by the test must be gone at its end. The bridge's
// background runtime.GC (bridge.notePressure.func1) ends by itself and is not a leak.
func verifyNoLeaks(t *testing.T) func() {
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/hotcb/hotcb/bridge.notePressure.func1")}
	return func() { goleak.VerifyNone(t, opts...) }
}

// logged captures the kernel's log lines through the env (the kernel logs with a "[hotcb] "
// prefix there).
type logged struct {
	mu    sync.Mutex
	lines []string
}

func (l *logged) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *logged) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestCommandsFileFaultsUnderTheKernel: the commands file truncated, removed, replaced by a
// rename, made a directory and then a file again. After each fault the commands written next
// are applied and recorded; the loop never stops and the callback keeps running.
func TestCommandsFileFaultsUnderTheKernel(t *testing.T) {
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	r := newRun(t, dir)
	log := &logged{}
	r.env.Log = log.add
	path := filepath.Join(dir, rundir.Commands)
	r.cmd(loadRec)
	r.step()
	set := func(lr string) string {
		return `{"module":"opt","op":"set_params","id":"main","params":{"lr":` + lr + `}}`
	}

	require.NoError(t, os.WriteFile(path, []byte(set("0.2")+"\n"), 0o600)) // truncated in place, shorter
	r.step()
	require.NoError(t, os.Remove(path))
	r.step()
	r.cmd(set("0.3")) // AppendLine creates it again
	r.step()
	tmp := filepath.Join(dir, "new.jsonl")
	require.NoError(t, os.WriteFile(tmp, []byte(set("0.4")+"\n"), 0o600))
	require.NoError(t, os.Rename(tmp, path)) // replaced (an editor's save)
	r.step()
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	r.step()
	r.step()
	require.NoError(t, os.Remove(path))
	r.cmd(set("0.5"))
	r.step()
	r.step()
	require.NoError(t, r.k.Close())

	require.Equal(t, []string{
		"0 cb.load(r) external applied",
		"1 opt.set_params(main) external applied",
		"3 opt.set_params(main) external applied",
		"4 opt.set_params(main) external applied",
		"7 opt.set_params(main) external applied",
	}, summary(r.ledger()), "each command written after a fault is applied once")
	require.InDelta(t, 0.5, r.opt.LR(0), 1e-12)
	require.Len(t, r.events, 9, "the callback ran at every step")
	all := log.String()
	for _, want := range []string{"was truncated", "was removed", "was replaced", "is a directory"} {
		require.Equal(t, 1, strings.Count(all, want), "%q reported once", want)
	}
}

// TestYAMLGarbageThenFixedUnderTheKernel: hotcb.yaml replaced by garbage (invalid YAML, binary
// bytes, an unknown key, an empty file written mid-save, a directory) keeps the callbacks it
// had loaded running and says why once per bad version; the fixed file is reconciled.
func TestYAMLGarbageThenFixedUnderTheKernel(t *testing.T) {
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	cfg := filepath.Join(dir, rundir.Config)
	write := func(s string) {
		require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600))
	}
	write("version: 1\ncallbacks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}}\n")
	r := newRun(t, dir)
	log := &logged{}
	r.env.Log = log.add
	r.step()
	for _, bad := range []string{
		"callbacks: [this is: not valid",
		"\x00\xff\xfe garbage \x80",
		"callbacks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}, enabeld: false}\n",
		"callbacks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}, enabeld: false}\n", // same again: said once
	} {
		write(bad)
		r.step()
	}
	write("") // an editor truncates before writing: no callbacks listed, nothing unloaded
	r.step()
	require.NoError(t, os.Remove(cfg))
	require.NoError(t, os.Mkdir(cfg, 0o700))
	r.step()
	require.NoError(t, os.Remove(cfg))
	write("version: 1\ncallbacks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}}\n  s: {target: {kind: module, path: test/rec, symbol: Rec}}\n")
	r.step()
	r.step()
	require.NoError(t, r.k.Close())

	require.Equal(t, []string{
		"0 cb.load(r) yaml applied",
		"7 cb.load(r) yaml skipped_noop",
		"7 cb.load(s) yaml applied",
	}, summary(r.ledger()))
	require.Len(t, r.events, 9+2, "r at every step, s at the last two")
	all := log.String()
	require.Equal(t, 3, strings.Count(all, "is invalid, keeping the previous configuration"), "one line per distinct bad version")
	require.Contains(t, all, `unknown key "enabeld"`)
}

// TestLedgerUnwritableUnderTheKernel: the ledger cannot be written. As root, chmod does not stop
// writes, so two methods that fail for root too: hotcb.applied.jsonl replaced by a directory
// (EISDIR) and by a symlink to /dev/full (every write fails with ENOSPC, a full disk). The
// failure is logged once and shown in the status (extra.ledger_error); the ops themselves still
// apply (the run loses ledger entries, not commands); once the ledger is writable again the
// error clears and recording resumes.
func TestLedgerUnwritableUnderTheKernel(t *testing.T) {
	// A directory, or a symbolic link to /dev/full (once a way to fake a full disk, now refused
	// before any write: run-directory files are never opened through a link).
	for _, method := range []string{"directory", "/dev/full"} {
		t.Run(strings.TrimPrefix(method, "/dev/"), func(t *testing.T) {
			defer verifyNoLeaks(t)()
			dir := t.TempDir()
			r := newRun(t, dir)
			log := &logged{}
			r.env.Log = log.add
			ledger := filepath.Join(dir, rundir.Applied)
			r.cmd(loadRec)
			r.step()
			require.NoError(t, os.Rename(ledger, ledger+".saved"))
			if method == "directory" {
				require.NoError(t, os.Mkdir(ledger, 0o700))
			} else {
				require.NoError(t, os.Symlink("/dev/full", ledger))
			}
			r.cmd(`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.7}}`, `{"op":"disable","id":"r"}`)
			r.step()
			r.step()
			require.InDelta(t, 0.7, r.opt.LR(0), 1e-12, "the op applied although its entry was lost")
			require.Len(t, r.events, 1, "disable applied too")
			r.k.Controller().RequestStatus()
			r.step()
			st := r.k.Controller().Status()
			want := map[string]string{"directory": "is a directory", "/dev/full": "too many levels of symbolic links"}[method]
			require.Contains(t, st.Extra["ledger_error"], want, "the status shows why")
			require.Equal(t, 1, strings.Count(log.String(), "ledger: cannot append"), "logged once, not at every op")
			if method == "/dev/full" {
				require.ErrorIs(t, rundir.AppendLine(ledger, []byte("{}")), syscall.ELOOP)
			}

			require.NoError(t, os.Remove(ledger))
			require.NoError(t, os.Rename(ledger+".saved", ledger))
			r.cmd(`{"op":"enable","id":"r"}`)
			r.step()
			r.k.Controller().RequestStatus()
			r.step()
			require.Nil(t, r.k.Controller().Status().Extra["ledger_error"], "cleared once writes work again")
			require.NoError(t, r.k.Close())
			es := r.ledger()
			require.Equal(t, []string{"0 cb.load(r) external applied", "4 cb.enable(r) external applied"}, summary(es))
			require.Equal(t, int64(4), es[1].Seq, "seq counts the lost entries: the gap shows where they were")
			require.Len(t, r.events, 3)
		})
	}
}

// TestFIFOInPlaceOfControlFiles: a named pipe where the commands file, hotcb.yaml or
// hotcb.freeze.json should be. Opening a FIFO for reading blocks until some process opens it for
// writing, so a kernel that simply opened it would hang the training loop at its next safe
// point. The loop must go on; the problem is reported, once, for each of them.
func TestFIFOInPlaceOfControlFiles(t *testing.T) {
	for _, name := range []string{rundir.Commands, rundir.Config, rundir.Freeze} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := newRun(t, dir)
			log := &logged{}
			r.env.Log = log.add
			r.cmd(loadRec)
			r.step()
			p := filepath.Join(dir, name)
			os.Remove(p)
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.step()
				r.step()
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				// Unblock the loop (as many times as it blocks) so the test can end, then fail.
				for stuck := true; stuck; {
					select {
					case <-done:
						stuck = false
					default:
						if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
							f.Close()
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				t.Fatalf("the training loop blocked on a FIFO at %s", name)
			}
			require.Len(t, r.events, 3, "the loop went on")
			require.NoError(t, os.Remove(p))
			r.cmd(`{"op":"disable","id":"r"}`)
			r.step()
			require.Len(t, r.events, 3, "commands apply again once the file is back")
			require.NoError(t, r.k.Close())
			require.Equal(t, 1, strings.Count(log.String(), name+" is not a regular file"), "reported, once:\n%s", log)
		})
	}
}
