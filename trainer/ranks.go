package trainer

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/dist"
	"github.com/hotcb/hotcb/torchenv"
)

// DefaultDistTimeout bounds how long a rank waits for the others (joining, a collective, the
// store) before the run fails: a rank that died fails the others at once, one that hangs after
// this.
const DefaultDistTimeout = 5 * time.Minute

// ranks is a data-parallel run's part of the trainer: the process group, DDP around the model,
// and the step at which every rank stops. A run is data-parallel when WORLD_SIZE > 1 in the
// environment, as torchrun and `hotcb train --nproc` set it.
type ranks struct {
	g      *dist.Group
	ddp    *dist.DDP
	stopAt int64 // steps done when every rank stops; -1 until a rank asks
	why    string
	asked  bool
}

// Keys of the stop agreement in the store: the first rank that asks writes the step.
const (
	stopKey   = "hotcb/stop"
	stopCount = "hotcb/stop/n"
)

// joinRanks joins the group of a data-parallel run, or returns nil for one process.
func joinRanks(o Options) (*ranks, error) {
	if ws := os.Getenv("WORLD_SIZE"); ws == "" || ws == "1" {
		return nil, nil
	}
	opts, err := dist.FromEnv()
	if err != nil {
		return nil, err
	}
	opts.Timeout = o.DistTimeout
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultDistTimeout
	}
	if o.Device.IsCUDA() && bridge.BuiltWithCUDA() {
		opts.Backend = "nccl"
	}
	g, err := dist.Init(opts)
	if err != nil {
		return nil, err
	}
	return &ranks{g: g, stopAt: -1}, nil
}

func (r *ranks) rank() int {
	if r == nil {
		return 0
	}
	return r.g.Rank()
}

// Rank, Size, AllReduceWait and Share make the run torchenv.Ranks (env.Ranks) for callbacks.
var _ torchenv.Ranks = (*ranks)(nil)

// Rank is this process's rank.
func (r *ranks) Rank() int { return r.g.Rank() }

// Size is the number of ranks.
func (r *ranks) Size() int { return r.g.Size() }

// AllReduceWait is what DDP's CommStats say of the latest measured iteration, and the totals.
func (r *ranks) AllReduceWait() (torchenv.AllReduceWait, bool) {
	if r.ddp == nil {
		return torchenv.AllReduceWait{}, false
	}
	s, ok := r.ddp.CommStats()
	if !ok {
		return torchenv.AllReduceWait{}, false
	}
	return torchenv.AllReduceWait{Iteration: s.Iteration, Last: s.Wait, LastComm: s.BackwardComm,
		Measured: s.Measured, Total: s.TotalWait, TotalComm: s.TotalComm}, true
}

// Share compares v across the ranks through the store (dist.Group.Share).
func (r *ranks) Share(key string, v float64, timeout time.Duration) ([]float64, []int, error) {
	return r.g.Share(key, v, timeout)
}

// wrap puts DDP around the model: every rank gets rank 0's weights, and the backward pass
// averages the gradients over the ranks.
func (r *ranks) wrap(model nn.Module) (nn.Module, error) {
	d, err := dist.NewDDP(r.g, model, dist.DDPOptions{})
	if err != nil {
		return nil, err
	}
	r.ddp = d
	return ddpModel{Module: model, ddp: d}, nil
}

// ddpModel is the model as the training step sees it: its forward goes through DDP. Everything
// else (parameters, names, hooks) is the model's own.
type ddpModel struct {
	nn.Module
	ddp *dist.DDP
}

func (m ddpModel) Forward(x *bridge.Tensor) *bridge.Tensor { return m.ddp.Forward(x) }

// unwrapModel is the model inside DDP (what checkpoints and TorchScript saves take).
func unwrapModel(m nn.Module) nn.Module {
	if d, ok := m.(ddpModel); ok {
		return d.Module
	}
	return m
}

// stop reports whether this rank stops now, after done steps. A rank that wants to stop (Ctrl-C,
// SIGTERM from the launcher, a callback's request) asks for the step after this one, and every
// rank stops there: with a collective in every step no rank can be more than one step ahead of
// another, so each sees the request before it gets past that step.
func (r *ranks) stop(ctx context.Context, env *torchenv.Env, done int64) (string, bool, error) {
	st := r.g.Store()
	if !r.asked {
		if why, ok := stopReason(ctx, env); ok {
			r.asked, r.why = true, why
			n, err := st.Add(stopCount, 1)
			if err != nil {
				return "", false, err
			}
			if n == 1 {
				if err := st.Set(stopKey, []byte(strconv.FormatInt(done+1, 10))); err != nil {
					return "", false, err
				}
			}
		}
	}
	if r.stopAt < 0 {
		n, err := st.Add(stopCount, 0)
		if err != nil {
			return "", false, err
		}
		if n > 0 {
			v, err := st.Get(stopKey, r.g.Timeout())
			if err != nil {
				return "", false, err
			}
			if r.stopAt, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return "", false, fmt.Errorf("the stop step in the store is %q: %v", v, err)
			}
			if r.why == "" {
				r.why = "another rank asked to stop"
			}
		}
	}
	if r.stopAt >= 0 && done >= r.stopAt {
		return r.why, true, nil
	}
	return "", false, nil
}

// close waits for every rank (rank 0 serves the store the others may still read), then leaves
// the group.
func (r *ranks) close(failed bool) error {
	if r == nil {
		return nil
	}
	var err error
	if !failed {
		err = r.g.Barrier()
	}
	if r.ddp != nil {
		r.ddp.Close()
	}
	if cerr := r.g.Close(); err == nil {
		err = cerr
	}
	return err
}
