// Package launch starts the local ranks of a data-parallel run, as torchrun does on one machine:
// N copies of a program, each with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), their output lines prefixed with the rank, and
// one rank's failure stopping the others. `hotcb train --nproc N` uses it; it is pure Go.
package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a launch.
type Options struct {
	Program string   // the executable
	Args    []string // its arguments (without the program name)
	N       int      // ranks to start on this machine
	// MasterAddr and MasterPort are where rank 0's store listens; defaults: 127.0.0.1 and a
	// free port.
	MasterAddr string
	MasterPort int
	// NodeRank and Nodes place this machine's ranks in a multi-machine run (ranks NodeRank*N ...
	// of Nodes*N); default one node.
	NodeRank, Nodes int
	Env             []string // added to every rank's environment
	Out, Err        io.Writer
	// Grace is how long the other ranks get to stop (SIGTERM: finish the step, checkpoint) after
	// one fails, before they are killed; default 15s.
	Grace time.Duration
}

// RankError is a rank that failed: its global rank, how it ended and its last output line on
// stderr.
type RankError struct {
	Rank     int
	Err      error
	LastLine string
}

func (e *RankError) Error() string {
	s := fmt.Sprintf("rank %d failed: %v", e.Rank, e.Err)
	if e.LastLine != "" {
		s += ": " + e.LastLine
	}
	return s
}

func (e *RankError) Unwrap() error { return e.Err }

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Run starts the ranks and waits for them. When one fails, the others are sent SIGTERM, then
// killed after Grace, and the error is the first failure (a *RankError). Cancelling ctx sends
// SIGINT to every rank (Ctrl-C: they finish the step and save) and kills them after Grace.
func Run(ctx context.Context, o Options) error {
	if o.N < 1 {
		return fmt.Errorf("launch: %d ranks (want at least 1)", o.N)
	}
	if o.Nodes < 1 {
		o.Nodes = 1
	}
	if o.NodeRank < 0 || o.NodeRank >= o.Nodes {
		return fmt.Errorf("launch: node rank %d of %d nodes", o.NodeRank, o.Nodes)
	}
	if o.MasterAddr == "" {
		o.MasterAddr = "127.0.0.1"
	}
	if o.MasterPort == 0 {
		p, err := FreePort()
		if err != nil {
			return fmt.Errorf("launch: no free port for rank 0's store: %w", err)
		}
		o.MasterPort = p
	}
	if o.Grace <= 0 {
		o.Grace = 15 * time.Second
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	world := o.N * o.Nodes
	var outMu sync.Mutex // whole lines, never interleaved
	type proc struct {
		rank int
		cmd  *exec.Cmd
		last *lastLine
		done chan struct{}
		err  error
	}
	procs := make([]*proc, o.N)
	var copies sync.WaitGroup
	stopAll := func(sig syscall.Signal) {
		for _, p := range procs {
			if p != nil && p.cmd.Process != nil {
				p.cmd.Process.Signal(sig)
			}
		}
	}
	for i := 0; i < o.N; i++ {
		rank := o.NodeRank*o.N + i
		cmd := exec.Command(o.Program, o.Args...)
		cmd.Env = append(os.Environ(), o.Env...)
		cmd.Env = append(cmd.Env, "RANK="+strconv.Itoa(rank), "WORLD_SIZE="+strconv.Itoa(world),
			"LOCAL_RANK="+strconv.Itoa(i), "LOCAL_WORLD_SIZE="+strconv.Itoa(o.N),
			"GROUP_RANK="+strconv.Itoa(o.NodeRank), "MASTER_ADDR="+o.MasterAddr, "MASTER_PORT="+strconv.Itoa(o.MasterPort))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			stopAll(syscall.SIGKILL)
			return err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			stopAll(syscall.SIGKILL)
			return err
		}
		p := &proc{rank: rank, cmd: cmd, last: &lastLine{}, done: make(chan struct{})}
		if err := cmd.Start(); err != nil {
			stopAll(syscall.SIGKILL)
			return fmt.Errorf("launch: start rank %d (%s): %w", rank, o.Program, err)
		}
		procs[i] = p
		prefix := fmt.Sprintf("[rank %d] ", rank)
		copies.Add(2)
		go func() { defer copies.Done(); prefixLines(stdout, o.Out, prefix, &outMu, nil) }()
		go func() { defer copies.Done(); prefixLines(stderr, o.Err, prefix, &outMu, p.last) }()
	}
	failed := make(chan *proc, o.N)
	for _, p := range procs {
		go func(p *proc) {
			p.err = p.cmd.Wait()
			close(p.done)
			if p.err != nil {
				failed <- p
			}
		}(p)
	}
	allDone := make(chan struct{})
	go func() {
		for _, p := range procs {
			<-p.done
		}
		close(allDone)
	}()
	var first *proc
	select {
	case <-allDone:
	case first = <-failed:
		stopAll(syscall.SIGTERM)
	case <-ctx.Done():
		stopAll(syscall.SIGINT)
	}
	select {
	case <-allDone:
	case <-time.After(o.Grace):
		stopAll(syscall.SIGKILL)
		<-allDone
	}
	copies.Wait()
	if first == nil {
		for _, p := range procs { // a failure while stopping, or after ctx ended
			if p.err != nil {
				first = p
				break
			}
		}
	}
	if first != nil {
		return &RankError{Rank: first.rank, Err: first.err, LastLine: first.last.get()}
	}
	return ctx.Err()
}

// lastLine keeps the last non-empty line a rank wrote to stderr, for the error.
type lastLine struct {
	mu sync.Mutex
	s  string
}

func (l *lastLine) set(s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	l.mu.Lock()
	l.s = s
	l.mu.Unlock()
}

func (l *lastLine) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

// prefixLines copies r to w a line at a time, each prefixed; a progress bar's carriage returns
// end lines too.
func prefixLines(r io.Reader, w io.Writer, prefix string, mu *sync.Mutex, last *lastLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanLinesCR)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue // a "\r\n" split across reads, or a blank line
		}
		if last != nil {
			last.set(line)
		}
		mu.Lock()
		io.WriteString(w, prefix+line+"\n")
		mu.Unlock()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		mu.Lock()
		fmt.Fprintf(w, "%s(output: %v)\n", prefix, err)
		mu.Unlock()
	}
}

func scanLinesCR(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			j := i + 1
			if b == '\r' && j < len(data) && data[j] == '\n' {
				j++
			}
			return j, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// StripFlag removes a flag and its value ("--nproc 2", "--nproc=2") from args, so that the
// ranks do not launch again.
func StripFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--"+name || a == "-"+name {
			i++ // its value
			continue
		}
		if strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"=") {
			continue
		}
		out = append(out, a)
	}
	return out
}
