package plane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

// CLIOptions size MeasureCLI.
type CLIOptions struct {
	CLI       string // the hotcb binary (BuildCLI)
	TorchCLI  string // hotcb-torch (BuildTorchCLI), for a comparison row; "" leaves it out
	Runs      int    // per hotcb command (default 30)
	TorchRuns int    // of the hotcb-torch row (default 10)
	Dir       string // scratch directory for the run directory
	// Timeout bounds one run (default 30 s).
	Timeout time.Duration
}

// GoalCLIMs is the CLI's goal: a command that only writes or reads run-directory files runs in at
// most this many ms, exec to exit.
const GoalCLIMs = 20

// pythonCLI is hotcb's own figure for a command of its Python CLI, quoted, not measured here.
const pythonCLI = "Python hotcb ≈ 260 ms (quoted)"

// MeasureCLI times the hotcb CLI as a user runs it, one process per command, exec to exit: a
// write (`hotcb --dir RUN cb set_params probe seq=N`, one line appended to the commands file) and
// a read (`hotcb --dir RUN status` of a status file with 8 callbacks), interleaved, after one
// unmeasured run of each; and, for comparison and without a goal, `status` from hotcb-torch,
// which loads libtorch as every hotcb call once did.
func MeasureCLI(o CLIOptions) ([]harness.CLIResult, error) {
	if o.Runs <= 0 {
		o.Runs = 30
	}
	if o.TorchRuns <= 0 {
		o.TorchRuns = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	dir := filepath.Join(o.Dir, "cli")
	if err := seedRunDir(dir); err != nil {
		return nil, err
	}
	type row struct {
		res  harness.CLIResult
		bin  string
		args func(i int) []string
		runs int
	}
	goal := fmt.Sprintf("<= %d ms", GoalCLIMs)
	rows := []*row{
		{res: harness.CLIResult{Name: "hotcb cb set_params (write)", Binary: "hotcb", Command: "cb set_params probe seq=N",
			Reference: pythonCLI, Goal: goal, GoalMax: GoalCLIMs}, bin: o.CLI, runs: o.Runs,
			args: func(i int) []string { return []string{"cb", "set_params", "probe", fmt.Sprintf("seq=%d", i)} }},
		{res: harness.CLIResult{Name: "hotcb status (read)", Binary: "hotcb", Command: "status",
			Reference: pythonCLI, Goal: goal, GoalMax: GoalCLIMs}, bin: o.CLI, runs: o.Runs,
			args: func(int) []string { return []string{"status"} }},
	}
	if o.TorchCLI != "" {
		rows = append(rows, &row{res: harness.CLIResult{Name: "hotcb-torch status (loads libtorch)", Binary: "hotcb-torch",
			Command: "status", Note: "what every hotcb command cost when hotcb linked libtorch"}, bin: o.TorchCLI, runs: o.TorchRuns,
			args: func(int) []string { return []string{"status"} }})
	}
	for _, r := range rows {
		if _, err := os.Stat(r.bin); err != nil {
			return nil, fmt.Errorf("%s: %w", r.res.Binary, err)
		}
		r.res.Unit = "ms"
	}
	for i := -1; i < o.Runs || i < o.TorchRuns; i++ { // i = -1: the unmeasured first run
		for _, r := range rows {
			if i >= r.runs || len(r.res.Errors) >= 3 {
				continue
			}
			ms, err := runOnce(o.Timeout, r.bin, append([]string{"--dir", dir}, r.args(i)...))
			switch {
			case err != nil:
				r.res.Errors = append(r.res.Errors, fmt.Sprintf("run %d: %v", i+1, err))
			case i >= 0:
				r.res.Times = append(r.res.Times, ms)
			}
		}
	}
	out := make([]harness.CLIResult, 0, len(rows))
	for _, r := range rows {
		res := r.res
		s := harness.Summarize(res.Times)
		res.Runs, res.Median, res.Min, res.Max = s.N, s.Median, s.Min, s.Max
		if res.GoalMax > 0 {
			res.Met = harness.AtMost(res.Median, res.GoalMax)
			if len(res.Errors) > 0 || res.Runs == 0 {
				f := false
				res.Met = &f
			}
		}
		out = append(out, res)
	}
	return out, nil
}

// runOnce runs bin with args and returns its wall time in ms, exec to exit.
func runOnce(timeout time.Duration, bin string, args []string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &errOut // stdout: /dev/null
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return float64(d) / 1e6, nil
}

// seedRunDir makes the run directory that the commands address: an empty commands file and the
// status a kernel with 8 callbacks writes.
func seedRunDir(dir string) error {
	d := rundir.Dir(dir)
	if err := d.Ensure(); err != nil {
		return err
	}
	if err := os.WriteFile(d.Path(rundir.Commands), nil, 0o600); err != nil {
		return err
	}
	st := rundir.RunStatus{WrittenAt: time.Now().UTC(), PID: os.Getpid(), Step: 1200, Epoch: 2, Phase: "train",
		CommandsPath: d.Path(rundir.Commands), Extra: map[string]any{"freeze_mode": "off", "ledger_seq": 42}}
	for i := 0; i < 8; i++ {
		st.Callbacks = append(st.Callbacks, rundir.CallbackStatus{ID: fmt.Sprintf("cb%d", i), Enabled: i%2 == 0, Loaded: true,
			Target: &ops.CallbackTarget{Kind: ops.KindModule, Path: "bench/plane/probe", Symbol: "Probe"},
			Params: map[string]any{"every": 10 * (i + 1)}, Calls: int64(1200 * (i + 1)), MeanMicros: 1.5, MaxMicros: 20})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return rundir.ReplaceFile(d.Path(rundir.Status), append(b, '\n'))
}
