// Package launch starts the local ranks of a data-parallel run, as torchrun does on one machine:
// N copies of a program, each with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), their output lines prefixed with the rank, and
// one rank's failure stopping the others. `hotcb train --nproc N` uses it; it is pure Go.
package launch

import (
	"bytes"
	"context"
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

// Env is torchrun's environment for one rank: its global and local rank, the world and local
// sizes, its node (GROUP_RANK), and where rank 0's store listens.
func Env(rank, world, localRank, localWorld, node int, masterAddr string, masterPort int) []string {
	return []string{"RANK=" + strconv.Itoa(rank), "WORLD_SIZE=" + strconv.Itoa(world),
		"LOCAL_RANK=" + strconv.Itoa(localRank), "LOCAL_WORLD_SIZE=" + strconv.Itoa(localWorld),
		"GROUP_RANK=" + strconv.Itoa(node), "MASTER_ADDR=" + masterAddr, "MASTER_PORT=" + strconv.Itoa(masterPort)}
}

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
		rank     int
		cmd      *exec.Cmd
		out, err *lineWriter
		done     chan struct{}
		werr     error
	}
	procs := make([]*proc, o.N)
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
		cmd.Env = append(cmd.Env, Env(rank, world, i, o.N, o.NodeRank, o.MasterAddr, o.MasterPort)...)
		prefix := fmt.Sprintf("[rank %d] ", rank)
		p := &proc{rank: rank, cmd: cmd, done: make(chan struct{}),
			out: &lineWriter{w: o.Out, prefix: prefix, mu: &outMu},
			err: &lineWriter{w: o.Err, prefix: prefix, mu: &outMu}}
		// exec copies the output through these, and Wait returns once it has all been copied.
		cmd.Stdout, cmd.Stderr = p.out, p.err
		if err := cmd.Start(); err != nil {
			stopAll(syscall.SIGKILL)
			return fmt.Errorf("launch: start rank %d (%s): %w", rank, o.Program, err)
		}
		procs[i] = p
	}
	failed := make(chan *proc, o.N)
	for _, p := range procs {
		go func(p *proc) {
			p.werr = p.cmd.Wait()
			p.out.flush()
			p.err.flush()
			close(p.done)
			if p.werr != nil {
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
	if first == nil {
		for _, p := range procs { // a failure while stopping, or after ctx ended
			if p.werr != nil {
				first = p
				break
			}
		}
	}
	if first != nil {
		return &RankError{Rank: first.rank, Err: first.werr, LastLine: first.err.lastLine()}
	}
	return ctx.Err()
}

// lineWriter writes what a rank prints a line at a time, each line prefixed with the rank (a
// progress bar's carriage returns end lines too), and keeps the last non-empty one for the error.
type lineWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex // shared by all ranks: whole lines, never interleaved
	buf    []byte
	last   string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexAny(l.buf, "\r\n")
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 1<<20 { // a very long line without an end: write what there is
		l.emit(string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// emit writes one line (mu held); blank lines (a "\r\n", say) are dropped.
func (l *lineWriter) emit(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	l.last = line
	io.WriteString(l.w, l.prefix+line+"\n")
}

// flush writes a last line that did not end.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
}

func (l *lineWriter) lastLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
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
