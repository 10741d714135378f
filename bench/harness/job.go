package harness

import (
	"bufio"
	"fmt"

	"os"
	"os/exec"
	"time"

	"github.com/hotcb/hotcb/launch"
)

// Job is a data-parallel reference: World processes of one program started on this machine as
// torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
// MASTER_PORT a free port, GLOO_SOCKET_IFNAME=lo: every rank on the loopback). Rank 0 speaks the
// Ref protocol on its stdin and stdout (the embedded Ref); the program hands each command on to
// the other ranks itself (bench/cmd/benchrun -ddp-rank and bench/python/ref.py ddp-rank
// broadcast it), whose output goes to stderr.
type Job struct {
	*Ref   // rank 0
	others []*exec.Cmd
	waited chan error // the others' exits, one per rank
}

// StartJob starts world ranks of path with args and extra environment.
func StartJob(path string, args []string, env []string, world int) (*Job, error) {
	if world < 1 {
		return nil, fmt.Errorf("harness: a job of %d ranks", world)
	}
	port, err := launch.FreePort()
	if err != nil {
		return nil, fmt.Errorf("harness: no free port for rank 0's store: %w", err)
	}
	j := &Job{waited: make(chan error, world)}
	for r := range world {
		cmd := exec.Command(path, args...)
		cmd.Env = append(append(os.Environ(), env...), RankEnv(r, world, port)...)
		cmd.Stderr = os.Stderr
		if r == 0 {
			if j.Ref, err = startRef(cmd); err != nil {
				return nil, err
			}
			continue
		}
		cmd.Stdout = os.Stderr
		if err := cmd.Start(); err != nil {
			j.kill()
			return nil, fmt.Errorf("start rank %d of %s: %w", r, path, err)
		}
		j.others = append(j.others, cmd)
		go func() { j.waited <- cmd.Wait() }()
	}
	return j, nil
}

// RankEnv is torchrun's environment for rank of world, all on this machine, rank 0's store on
// 127.0.0.1:port, Gloo on the loopback.
func RankEnv(rank, world, port int) []string {
	return append(launch.Env(rank, world, rank, world, 0, "127.0.0.1", port), "GLOO_SOCKET_IFNAME=lo")
}

// Pids are the ranks' process ids, rank 0's first.
func (j *Job) Pids() []int {
	var out []int
	if j.Ref != nil {
		out = append(out, j.Ref.Pid())
	}
	for _, c := range j.others {
		out = append(out, c.Process.Pid)
	}
	return out
}

// Close asks rank 0 to quit (it tells the others) and waits for every rank, killing those still
// running after grace. It returns rank 0's exit error, or the first other rank's.
func (j *Job) Close(grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- j.Ref.Close() }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var first error
	select {
	case first = <-done:
	case <-timer.C:
		j.kill()
		return fmt.Errorf("harness: rank 0 still running %v after quit: killed", grace)
	}
	for range j.others {
		select {
		case err := <-j.waited:
			if first == nil && err != nil {
				first = err
			}
		case <-timer.C:
			j.kill()
			return fmt.Errorf("harness: ranks still running %v after quit: killed", grace)
		}
	}
	return first
}

// kill kills every rank.
func (j *Job) kill() {
	if j.Ref != nil {
		_ = j.Ref.cmd.Process.Kill()
	}
	for _, c := range j.others {
		_ = c.Process.Kill()
	}
}

// startRef starts cmd (its environment and stderr set) as a Ref: stdin and stdout become the
// protocol's pipes.
func startRef(cmd *exec.Cmd) (*Ref, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reference %s: %w", cmd.Path, err)
	}
	return &Ref{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}
