package harness

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The machine is shared: other processes' CPU time during a run is recorded next to the results,
// so that a noisy run can be recognised as such.

// clockTick is the kernel's USER_HZ, the unit of /proc CPU times (100 on every Linux build that
// Go supports on amd64 and arm64).
const clockTick = 100

// CPUMeter measures the CPU time spent by other processes: the machine's busy time minus this
// process's and the given processes' (the references').
type CPUMeter struct {
	start     time.Time
	busy0     float64 // machine busy seconds
	self0     float64
	pids      []int
	children0 map[int]float64
}

// machineBusy returns the busy CPU seconds of the whole machine since boot from /proc/stat
// (everything but idle and iowait), or -1.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	return parseStatBusy(string(b))
}

func parseStatBusy(stat string) float64 {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return -1
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return -1
		}
		busy += n
	}
	return busy / clockTick
}

// procCPU returns the user+system CPU seconds of process pid from /proc/PID/stat, or -1.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	return parseProcStatCPU(string(b))
}

func parseProcStatCPU(stat string) float64 {
	// The command name (field 2) may contain spaces: count fields after its closing paren.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 { // utime and stime are fields 14 and 15, that is 12 and 13 after the paren
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (u + s) / clockTick
}

// selfCPU is the CPU time of this process and of its children that have exited and been
// waited for (the hotcb CLI and memory children of bench/plane).
func selfCPU() float64 {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return -1
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// StartCPUMeter starts measuring; pids are further processes of ours (the references).
func StartCPUMeter(pids ...int) *CPUMeter {
	m := &CPUMeter{start: time.Now(), busy0: machineBusy(), self0: selfCPU(), pids: pids,
		children0: map[int]float64{}}
	for _, p := range pids {
		m.children0[p] = procCPU(p)
	}
	return m
}

// Add counts a process started after the meter (a reference) as ours from now on.
func (m *CPUMeter) Add(pid int) {
	m.pids = append(m.pids, pid)
	m.children0[pid] = procCPU(pid)
}

// OtherLoad returns the average number of CPUs that other processes kept busy since the start
// (0 on a quiet machine; -1 when /proc cannot be read).
func (m *CPUMeter) OtherLoad() float64 {
	wall := time.Since(m.start).Seconds()
	busy := machineBusy()
	if wall <= 0 || busy < 0 || m.busy0 < 0 {
		return -1
	}
	ours := selfCPU() - m.self0
	for _, p := range m.pids {
		if c := procCPU(p); c >= 0 && m.children0[p] >= 0 {
			ours += c - m.children0[p]
		}
	}
	return max(0, (busy-m.busy0-ours)/wall)
}

// OtherLoadNow samples OtherLoad over d: how busy the machine is before a run starts.
func OtherLoadNow(d time.Duration, pids ...int) float64 {
	m := StartCPUMeter(pids...)
	time.Sleep(d)
	return m.OtherLoad()
}
