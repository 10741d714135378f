package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/rundir"
)

func init() { register(newStatusCommand) }

// statusKeys are the top-level status fields shown in their own place; any other field (what a
// kernel adds, under "extra" or beside it) is listed as it is.
var statusKeys = map[string]bool{"written_at": true, "pid": true, "step": true, "epoch": true, "phase": true,
	"callbacks": true, "commands_path": true, "commands_offset": true, "bad_lines": true, "config_path": true,
	"control_error": true, "stuck": true}

func newStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	var staleAfter time.Duration
	c := &cobra.Command{
		Use:   "status [ID]",
		Short: "Show the running process's callbacks: enabled, params, calls, time, errors",
		Long: `status reads hotcb.status.json, the snapshot the training process rewrites about once a second:
a row per callback (enabled, loaded, target, last params, calls, mean time per call, errors, last
error), the step it was written at and how long ago. A snapshot older than --stale-after means
the process has stopped or no longer reaches a safe point. With an ID, status shows that
callback in full. In a data-parallel run, a line per rank follows (each rank writes its own
snapshot under RUN_DIR/ranks/R).`,
		Example: `  hotcb --dir runs/exp1 status
  hotcb --dir runs/exp1 status timing
  hotcb --dir runs/exp1 status --json | jq '.status.callbacks[] | {id, calls}'`,
		ValidArgsFunction: a.completeIDs,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr(fmt.Sprintf("status takes at most one callback ID, got %q", strings.Join(args, " ")), "usage: "+cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.status(asJSON, staleAfter, args)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON, with its age and whether it is stale")
	c.Flags().DurationVar(&staleAfter, "stale-after", 30*time.Second, "a snapshot older than this is called stale")
	return c
}

// status is the status command: the run's snapshot as a table, or as JSON (what hotcb serve's
// GET /api/status answers too).
func (a *app) status(asJSON bool, staleAfter time.Duration, args []string) error {
	dir, err := a.runDir()
	if err != nil {
		return err
	}
	snap, err := readSnapshot(dir.Path(rundir.Status))
	if err != nil {
		return err
	}
	if snap != nil {
		snap.age = a.now().Sub(snap.st.WrittenAt)
	}
	if asJSON {
		return a.statusJSON(dir, snap, staleAfter, args)
	}
	if len(args) == 1 {
		if snap == nil {
			return noStatus(dir)
		}
		return a.showCallback(snap, args[0])
	}
	a.showStatus(dir, snap, staleAfter)
	return nil
}

// snapshot is a status file as read: typed, and raw for the fields this version does not know.
type snapshot struct {
	st  rundir.RunStatus
	raw map[string]json.RawMessage
	age time.Duration
}

// readSnapshot reads the status file once (it is replaced atomically, so a read sees one whole
// version); a missing file is nil.
func readSnapshot(path string) (*snapshot, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &snapshot{}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return nil, fmt.Errorf("%s is not a hotcb status file: %v", path, err)
	}
	if err := json.Unmarshal(b, &s.raw); err != nil {
		return nil, fmt.Errorf("%s is not a hotcb status file: %v", path, err)
	}
	return s, nil
}

func noStatus(dir rundir.Dir) error {
	return hinted(fmt.Errorf("no status yet: no training process has written %s", dir.Path(rundir.Status)),
		"start the training with this run directory (a controller with StatusPath set writes it)")
}

func (a *app) statusJSON(dir rundir.Dir, snap *snapshot, staleAfter time.Duration, args []string) error {
	out := map[string]any{"path": dir.Path(rundir.Status), "status": nil}
	if snap != nil {
		out["age_seconds"] = snap.age.Seconds()
		out["stale"] = snap.age > staleAfter
		out["status"] = snap.raw
		if len(args) == 1 {
			cs, err := findCallback(snap, args[0])
			if err != nil {
				return err
			}
			out["callback"] = cs
		}
	} else if len(args) == 1 {
		return noStatus(dir)
	}
	if ranks := dir.Ranks(); len(ranks) > 1 {
		var rs []map[string]any
		for _, r := range ranks[1:] {
			p := rundir.Dir(rundir.RankDir(string(dir), r)).Path(rundir.Status)
			e := map[string]any{"rank": r, "path": p, "status": nil}
			if s, err := readSnapshot(p); err != nil {
				e["error"] = err.Error()
			} else if s != nil {
				age := a.now().Sub(s.st.WrittenAt)
				e["age_seconds"], e["stale"], e["status"] = age.Seconds(), age > staleAfter, s.raw
			}
			rs = append(rs, e)
		}
		out["ranks"] = rs
	}
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// showRanks prints a line per rank > 0 of a data-parallel run: its step, how old its snapshot
// is, its callbacks and its ledger's last seq.
func (a *app) showRanks(dir rundir.Dir, staleAfter time.Duration) {
	ranks := dir.Ranks()
	if len(ranks) < 2 {
		return
	}
	fmt.Fprintf(a.out, "\nranks (rank 0 above; hotcb ledger --rank R shows one's ledger):\n")
	for _, r := range ranks[1:] {
		rd := rundir.Dir(rundir.RankDir(string(dir), r))
		s, err := readSnapshot(rd.Path(rundir.Status))
		switch {
		case err != nil:
			fmt.Fprintf(a.out, "  rank %d: %v\n", r, err)
		case s == nil:
			fmt.Fprintf(a.out, "  rank %d: no status yet\n", r)
		default:
			age := a.now().Sub(s.st.WrittenAt)
			stale := ""
			if age > staleAfter {
				stale = " (stale)"
			}
			seq := ""
			if v, ok := s.st.Extra["ledger_seq"]; ok {
				seq = fmt.Sprintf(", ledger seq %v", v)
			}
			fmt.Fprintf(a.out, "  rank %d: step %d, written %s%s, %d callbacks%s\n", r, s.st.Step, ago(age), stale, len(s.st.Callbacks), seq)
		}
	}
}

func (a *app) showStatus(dir rundir.Dir, snap *snapshot, staleAfter time.Duration) {
	w := a.out
	if fz, err := rundir.ReadFreeze(dir.Path(rundir.Freeze)); err != nil {
		fmt.Fprintf(w, "freeze file: unreadable: %v\n", err)
	} else if fz.Mode != rundir.FreezeOff {
		fmt.Fprintf(w, "freeze file: %s%s\n", fz.Mode, freezeDetail(fz))
	}
	defer a.showRanks(dir, staleAfter)
	if snap == nil {
		fmt.Fprintf(w, "no status yet: no training process has written %s\n", dir.Path(rundir.Status))
		fmt.Fprintln(w, "(it appears at the first safe point of a run using this directory)")
		return
	}
	st := snap.st
	fmt.Fprintf(w, "step %d", st.Step)
	if st.Epoch != 0 {
		fmt.Fprintf(w, ", epoch %g", st.Epoch)
	}
	if st.Phase != "" {
		fmt.Fprintf(w, ", phase %s", st.Phase)
	}
	fmt.Fprintf(w, " — written %s (%s) by pid %d\n", ago(snap.age), st.WrittenAt.In(a.loc).Format(time.DateTime), st.PID)
	switch {
	case st.Stuck != nil:
		fmt.Fprintln(w, stuckLine(st.Stuck, a.now()))
	case snap.age > staleAfter:
		fmt.Fprintf(w, "stale: the training process may have stopped (%s)\n", pidState(st.PID))
	}
	if st.CommandsPath != "" {
		fmt.Fprintf(w, "commands: %s read to byte %d", st.CommandsPath, st.CommandsRead)
		if st.BadLines > 0 {
			fmt.Fprintf(w, ", %d bad lines skipped (see hotcb.log)", st.BadLines)
		}
		fmt.Fprintln(w)
	}
	if st.ControlError != "" {
		fmt.Fprintf(w, "last control error: %s\n", st.ControlError)
	}
	for _, line := range extraLines(snap.raw) {
		fmt.Fprintln(w, line)
	}
	if len(st.Callbacks) == 0 {
		fmt.Fprintln(w, "no callbacks (load one with 'hotcb cb load' or in hotcb.yaml)")
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tLOADED\tTARGET\tPARAMS\tCALLS\tMEAN\tERRORS\tLAST ERROR")
	for _, cs := range st.Callbacks {
		target := "-"
		if cs.Target != nil {
			target = cs.Target.Kind + ":" + cs.Target.Path + "#" + cs.Target.Symbol
		}
		params := "-"
		if len(cs.Params) > 0 {
			params = formatKV(cs.Params)
		}
		if len(cs.PendingParams) > 0 {
			params = "pending " + formatKV(cs.PendingParams)
		}
		lastErr := "-"
		if cs.LastError != "" {
			lastErr = oneLine(cs.LastError)
			if cs.LastErrorStep != 0 {
				lastErr = fmt.Sprintf("step %d: %s", cs.LastErrorStep, lastErr)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", cs.ID, yesNo(cs.Enabled), yesNo(cs.Loaded),
			clipLeft(target, 72), clip(params, 48), cs.Calls, micros(cs.MeanMicros, cs.Calls), cs.Errors, clip(lastErr, 80))
	}
	tw.Flush()
}

func freezeDetail(f rundir.FreezeState) string {
	var parts []string
	if f.RecipePath != nil {
		parts = append(parts, "recipe "+*f.RecipePath)
	}
	if f.AdjustPath != nil {
		parts = append(parts, "adjust "+*f.AdjustPath)
	}
	if f.Mode == rundir.FreezeReplay || f.Mode == rundir.FreezeReplayAdjusted {
		parts = append(parts, "policy "+f.Policy)
		if f.StepOffset != 0 {
			parts = append(parts, fmt.Sprintf("step offset %d", f.StepOffset))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// extraLines renders the fields this CLI does not know by name: the members of "extra" and any
// other top-level field, sorted, values as compact JSON (strings bare).
func extraLines(raw map[string]json.RawMessage) []string {
	fields := map[string]json.RawMessage{}
	for k, v := range raw {
		if statusKeys[k] {
			continue
		}
		var inner map[string]json.RawMessage
		if k == "extra" && json.Unmarshal(v, &inner) == nil {
			for ik, iv := range inner {
				fields[ik] = iv
			}
			continue
		}
		fields[k] = v
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, k+": "+jsonText(fields[k]))
	}
	return lines
}

func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

func findCallback(snap *snapshot, id string) (rundir.CallbackStatus, error) {
	var ids []string
	for _, cs := range snap.st.Callbacks {
		if cs.ID == id {
			return cs, nil
		}
		ids = append(ids, cs.ID)
	}
	hint := "the process has no callbacks yet"
	if len(ids) > 0 {
		hint = "known: " + strings.Join(ids, ", ")
	}
	return rundir.CallbackStatus{}, usageErr(fmt.Sprintf("no callback %q in the status of pid %d", id, snap.st.PID), hint)
}

func (a *app) showCallback(snap *snapshot, id string) error {
	cs, err := findCallback(snap, id)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", cs.ID)
	row("enabled", yesNo(cs.Enabled))
	row("loaded", yesNo(cs.Loaded))
	if cs.Target != nil {
		row("target", fmt.Sprintf("kind %s, path %s, symbol %s", cs.Target.Kind, cs.Target.Path, cs.Target.Symbol))
	}
	if cs.Init != nil {
		row("init", formatKV(cs.Init))
	}
	if cs.Params != nil {
		row("params", formatKV(cs.Params))
	}
	if cs.PendingParams != nil {
		row("pending params", formatKV(cs.PendingParams)+" (applied when it loads)")
	}
	row("calls", cs.Calls)
	row("mean time", micros(cs.MeanMicros, cs.Calls))
	row("max time", micros(cs.MaxMicros, cs.Calls))
	row("errors", cs.Errors)
	if cs.LastError != "" {
		row("last error", fmt.Sprintf("at step %d: %s", cs.LastErrorStep, oneLine(cs.LastError)))
	}
	row("as of", fmt.Sprintf("step %d, %s", snap.st.Step, ago(snap.age)))
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func micros(us float64, calls int64) string {
	switch {
	case calls == 0 || us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clipLeft keeps the end of s (a target's file name and symbol matter more than its directory).
func clipLeft(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	k := strings.IndexByte(s, ':') + 1 // keep the kind
	head := []rune(s[:k])
	return string(head) + "…" + string(r[len(r)-(n-len(head)-1):])
}

// ago says how long ago, to the second.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now (the writer's clock is ahead)"
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	}
	return d.Truncate(time.Second).String() + " ago"
}

// pidState says whether the process that wrote the status still exists on this machine.
func pidState(pid int) string {
	if pid <= 0 {
		return "no pid recorded"
	}
	err := syscall.Kill(pid, 0)
	switch {
	case err == nil || errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("pid %d still exists: it may be stuck, or no longer reaching a safe point", pid)
	case errors.Is(err, syscall.ESRCH):
		return fmt.Sprintf("pid %d is not running", pid)
	}
	return fmt.Sprintf("pid %d: %v", pid, err)
}

// stuckLine says what the watchdog reported: where the safe point is stuck, since when, and what
// the user can do.
func stuckLine(s *rundir.Stuck, now time.Time) string {
	who := "outside any callback"
	if s.Callback != "" {
		who = "in callback " + s.Callback
	}
	line := fmt.Sprintf("STUCK: the safe point of step %d (%s) is stuck %s, in %s, for %v",
		s.Step, s.Event, who, s.Call, now.Sub(s.Since).Truncate(time.Second))
	switch {
	case s.Abandoned:
		return line + "; abandoned (its interpreter is stopped): the run goes on without it"
	case s.Abandonable:
		return line + "; it will be abandoned, or Ctrl-C the run"
	case s.Callback != "":
		return line + fmt.Sprintf("; a compiled callback cannot be abandoned: Ctrl-C or SIGTERM stops the run, then 'hotcb cb unload %s' or 'hotcb train --no-restore'", s.Callback)
	}
	return line + "; Ctrl-C or SIGTERM stops the run"
}
