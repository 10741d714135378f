package kernel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// Coordinator links the kernels of a data-parallel run, one per rank, so that every rank applies
// each op at the same safe point. Rank 0 reads the run directory's inputs and publishes what it
// read; every rank (rank 0 included) applies it at the first safe point whose step is at least
// the step it was scheduled for. Package dist implements it on the process group's store.
type Coordinator interface {
	// Rank is this process's rank (0 reads the inputs).
	Rank() int
	// Publish sends one message to the other ranks, in order (rank 0 only).
	Publish(msg []byte) error
	// Fetch returns the messages published since the last Fetch, in order (ranks > 0).
	Fetch() ([][]byte, error)
}

// DefaultRankLag is how many steps after rank 0 reads an op every rank applies it. Two steps
// suffice when each training step has a collective (DDP's gradient all-reduce): no rank can pass
// step s+1's all-reduce before rank 0 has finished the safe point of step s where it published.
const DefaultRankLag = 2

// scheduled is what rank 0 publishes: an op (or a restore, or a freeze switch) and the step at
// or after which every rank applies it.
type scheduled struct {
	Kind   string         `json:"kind"` // "op", "restore", "freeze", "failed" or "ignored"
	Step   int64          `json:"step"`
	Op     *ops.Op        `json:"op,omitempty"`
	Source string         `json:"source,omitempty"`
	Cursor *rundir.Cursor `json:"cursor,omitempty"` // rank 0's input position after reading it
	// GoSource is a go_file load's source as rank 0 read it, for ranks that may not share its
	// filesystem: they load it as a captured copy.
	GoSource []byte               `json:"go_source,omitempty"`
	Freeze   *rundir.FreezeState  `json:"freeze,omitempty"`
	Recipe   []rundir.RecipeEntry `json:"recipe,omitempty"` // the replay's entries, adjust applied
	Err      string               `json:"error,omitempty"`  // kind "failed": why rank 0 could not send it
	Bad      *badLine             `json:"bad,omitempty"`    // kind "ignored": a commands line that is not an op
}

func (k *Kernel) distributed() bool { return k.opts.Ranks != nil }
func (k *Kernel) leader() bool      { return k.opts.Ranks == nil || k.opts.Ranks.Rank() == 0 }

func (k *Kernel) lag() int64 {
	if k.opts.RankLag > 0 {
		return k.opts.RankLag
	}
	return DefaultRankLag
}

// intake takes an op rank 0 read (commands, YAML, API): processed at once in a single process,
// scheduled for every rank in a data-parallel run.
func (k *Kernel) intake(env *torchenv.Env, event string, op ops.Op, source string) {
	if !k.distributed() {
		k.process(env, event, op, source)
		return
	}
	s := scheduled{Kind: "op", Op: &op, Source: source}
	if op.Target != nil && op.Op == ops.OpLoad && op.Target.Normalized().Kind == ops.KindGoFile && op.SourceCapture == nil {
		t := op.Target.Normalized()
		b, _, err := gofile.ReadSource(t.Path, k.opts.Controller.AllowAnyOwner)
		if err != nil {
			// Recorded as failed on every rank, at the same step, as a load that fails would be.
			s.Kind = "failed"
			s.Err = fmt.Sprintf("load %s: cannot read %s to send it to the other ranks: %v", op.ID, t.Path, err)
		} else {
			s.GoSource = b
		}
	}
	if op.ModuleName() == "core" && op.Op == ops.OpFreeze {
		// A replay's recipe is read here, on rank 0, and sent: the other ranks may not have it.
		if f, err := freezeStateOf(op); err == nil {
			if rp, err := k.loadRecipe(f); err == nil && rp != nil {
				s.Recipe = rp.entries
				if s.Recipe == nil {
					s.Recipe = []rundir.RecipeEntry{}
				}
			}
		}
	}
	k.schedule(env, s)
}

// intakeRestore schedules one op of the restore at a restart (see restoreOne); a go_file's source
// goes with it, from its captured copy if there is one.
func (k *Kernel) intakeRestore(env *torchenv.Env, event string, op ops.Op) {
	if !k.distributed() {
		k.restoreOne(env, event, op)
		return
	}
	s := scheduled{Kind: "restore", Op: &op}
	if op.Target != nil && op.Target.Normalized().Kind == ops.KindGoFile {
		path := op.Target.Normalized().Path
		if op.SourceCapture != nil {
			path = k.dir.Path(filepath.Join(rundir.Sources, op.SourceCapture.SHA256+".go"))
		}
		if b, _, err := gofile.ReadSource(path, k.opts.Controller.AllowAnyOwner); err == nil {
			s.GoSource = b
		}
	}
	k.schedule(env, s)
}

// schedule publishes s for the step lag steps ahead and queues it here.
func (k *Kernel) schedule(env *torchenv.Env, s scheduled) {
	var step int64
	if env != nil {
		step = env.Step
	}
	s.Step = step + k.lag()
	c := k.cursor // inside poll: the read position
	s.Cursor = &c
	b, err := json.Marshal(s)
	if err != nil {
		k.ctl.Logf(env, "ranks: cannot encode %s for the other ranks: %v (not applied)", describe(s), err)
		return
	}
	if err := k.opts.Ranks.Publish(b); err != nil {
		k.ctl.Logf(env, "ranks: cannot send %s to the other ranks: %v (not applied on any rank)", describe(s), err)
		return
	}
	k.due = append(k.due, s)
}

func describe(s scheduled) string {
	if s.Op != nil {
		return s.Op.String()
	}
	return s.Kind
}

// applyDue fetches what rank 0 published (once per step, on ranks > 0) and applies what is due.
func (k *Kernel) applyDue(env *torchenv.Env, event string) {
	if !k.leader() && (env == nil || env.Step != k.fetchedStep || !k.fetchedOnce) {
		if env != nil {
			k.fetchedStep, k.fetchedOnce = env.Step, true
		}
		msgs, err := k.opts.Ranks.Fetch()
		if err != nil && err.Error() != k.fetchErr {
			k.fetchErr = err.Error()
			k.ctl.Logf(env, "ranks: cannot read rank 0's ops: %v", err)
		}
		for _, b := range msgs {
			var s scheduled
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // 50 stays an integer: processing normalizes the op as on rank 0
			if err := dec.Decode(&s); err != nil {
				k.ctl.Logf(env, "ranks: a message from rank 0 does not parse: %v", err)
				continue
			}
			k.due = append(k.due, s)
		}
	}
	if len(k.due) == 0 || env == nil {
		return
	}
	var keep []scheduled
	for _, s := range k.due {
		if s.Step > env.Step {
			keep = append(keep, s)
			continue
		}
		k.applyScheduled(env, event, s)
	}
	k.due = keep
}

func (k *Kernel) applyScheduled(env *torchenv.Env, event string, s scheduled) {
	if k.leader() && s.Cursor != nil {
		k.cursor = *s.Cursor // recorded with the entry: a restart reads on from here
	}
	note := ""
	if s.Step != env.Step {
		note = fmt.Sprintf("scheduled for step %d", s.Step)
	}
	switch s.Kind {
	case "freeze":
		if s.Freeze == nil {
			return
		}
		var rp *replayer
		if s.Recipe != nil || s.Freeze.Mode == rundir.FreezeReplay || s.Freeze.Mode == rundir.FreezeReplayAdjusted {
			rp = newReplayer(s.Recipe, s.Freeze.StepOffset)
		}
		k.switchFreeze(env, *s.Freeze, rp)
	case "restore":
		if s.Op == nil {
			return
		}
		if k.leader() || s.GoSource == nil {
			k.restoreOne(env, event, *s.Op)
			return
		}
		// The source rank 0 restored, as this rank's captured copy.
		k.processNote(env, event, k.shipped(env, *s.Op, s.GoSource), rundir.SourceRestore, restoreNote)
	case "ignored":
		if s.Bad != nil {
			k.recordIgnored(env, event, *s.Bad, note)
		}
	case "failed":
		if s.Op == nil {
			return
		}
		k.record(env, event, *s.Op, s.Source, rundir.DecisionFailed, note, errors.New(s.Err))
		k.ctl.Logf(env, "failed %s (%s): %s", s.Op, s.Source, s.Err)
	default:
		if s.Op == nil {
			return
		}
		op := *s.Op
		if !k.leader() && s.GoSource != nil {
			op = k.shipped(env, op, s.GoSource)
		}
		k.applying = &s
		k.processNote(env, event, op, s.Source, note)
		k.applying = nil
	}
}

// shipped stores a go_file source rank 0 sent in this rank's capture store and makes the load
// use that copy.
func (k *Kernel) shipped(env *torchenv.Env, op ops.Op, src []byte) ops.Op {
	if src == nil {
		return op
	}
	sum := sha256.Sum256(src)
	sha := hex.EncodeToString(sum[:])
	if _, err := gofile.Capture(k.dir.Path(rundir.Sources), sha, src); err != nil {
		k.ctl.Logf(env, "ranks: cannot store the source of %s: %v", op.ID, err)
	}
	op.SourceCapture = &ops.SourceCapture{SHA256: sha, CapturedPath: filepath.Join(rundir.Sources, sha+".go")}
	return op
}

// closeRanks records what was scheduled for a step the run never reached.
func (k *Kernel) closeRanks() {
	for _, s := range k.due {
		if s.Bad != nil { // consumed: recorded, not left for a restart to read again
			k.recordIgnored(&k.lastEnv, k.lastEvent, *s.Bad, fmt.Sprintf("the run ended before step %d", s.Step))
			continue
		}
		if s.Op == nil {
			continue
		}
		k.record(&k.lastEnv, k.lastEvent, *s.Op, s.Source, rundir.DecisionFailed,
			fmt.Sprintf("not applied: the run ended before step %d, where every rank applies it", s.Step), nil)
	}
	k.due = nil
}
