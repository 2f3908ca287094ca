package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of the times in /proc/PID/stat (USER_HZ): 100 on every Linux architecture wharf
// runs on.
const ClockTick = 100

// read reads /proc/PID/name.
func read(pid int, name string) ([]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}

	return b, nil
}

// Stat holds the fields of /proc/PID/stat (or of one thread's /proc/PID/task/TID/stat) the tools read.
type Stat struct {
	State  byte // R, S, D, T (stopped), t (traced), Z...
	PPID   int
	UTime  int64 // clock ticks (ClockTick a second), this task or process
	STime  int64
	CUTime int64 // clock ticks of the children that exited and were waited for
	CSTime int64
}

// CPU is user + system time.
func (s Stat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * time.Second / ClockTick
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	return parseStat(pid, "stat")
}

// ReadTaskStat reads the stat of one thread, /proc/PID/task/TID/stat.
func ReadTaskStat(pid, tid int) (Stat, error) {
	return parseStat(pid, "task/"+strconv.Itoa(tid)+"/stat")
}

func parseStat(pid int, name string) (Stat, error) {
	b, err := read(pid, name)
	if err != nil {
		return Stat{}, err
	}

	// The command name, in parentheses, may hold spaces and parentheses: the fields go on after the last
	// closing parenthesis, from field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("parse /proc/%d/%s", pid, name)
	}

	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return Stat{}, fmt.Errorf("parse /proc/%d/%s: %d fields", pid, name, len(f))
	}

	num := func(k int) int64 { // k is the field number of proc(5)
		v, _ := strconv.ParseInt(f[k-3], 10, 64)

		return v
	}

	return Stat{State: f[0][0], PPID: int(num(4)), UTime: num(14), STime: num(15), CUTime: num(16),
		CSTime: num(17)}, nil
}

// Threads lists the task IDs of pid's threads.
func Threads(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}

	tids := make([]int, 0, len(entries))

	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}

	return tids, nil
}

// ThreadRuntime is the time one thread has run: the first field of /proc/PID/task/TID/schedstat
// (nanoseconds, the scheduler's own count), or utime + stime from its stat (clock ticks) on a kernel
// without schedstat.
func ThreadRuntime(pid, tid int) (time.Duration, error) {
	if b, err := read(pid, "task/"+strconv.Itoa(tid)+"/schedstat"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil && ns > 0 {
				return time.Duration(ns), nil
			}
		}
	}

	st, err := ReadTaskStat(pid, tid)
	if err != nil {
		return 0, err
	}

	return st.CPU(), nil
}

// Memory is a process's resident memory, in bytes, from /proc/PID/status.
type Memory struct {
	RSS  int64 // VmRSS
	Peak int64 // VmHWM: the highest RSS since the process started or since ResetPeak
}

// ReadMemory reads VmRSS and VmHWM.
func ReadMemory(pid int) (Memory, error) {
	b, err := read(pid, "status")
	if err != nil {
		return Memory{}, err
	}

	var m Memory

	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}

		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse /proc/%d/status: %s: %w", pid, key, err)
		}

		if key == "VmRSS" {
			m.RSS = kib << 10
		} else {
			m.Peak = kib << 10
		}
	}

	return m, nil
}

// ResetPeak sets pid's VmHWM back to its current RSS (writing 5 to /proc/PID/clear_refs, Linux 4.0 and
// later), so that the next ReadMemory shows the peak of what happened in between.
func ResetPeak(pid int) error {
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}

	return nil
}

// PSS is pid's proportional set size in bytes (/proc/PID/smaps_rollup): its private pages plus its share
// of the pages it shares, so that the PSS of a server's processes adds up to what they take together.
func PSS(pid int) (int64, error) {
	b, err := read(pid, "smaps_rollup")
	if err != nil {
		return 0, err
	}

	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/%d/smaps_rollup: %w", pid, err)
			}

			return kib << 10, nil
		}
	}

	return 0, fmt.Errorf("no Pss line in /proc/%d/smaps_rollup", pid)
}

// FDs counts pid's open file descriptors (/proc/PID/fd).
func FDs(pid int) (int, error) {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, fmt.Errorf("descriptors: %w", err)
	}

	return len(entries), nil
}

// Comm is pid's command name (/proc/PID/comm, at most 15 bytes).
func Comm(pid int) (string, error) {
	b, err := read(pid, "comm")
	if err != nil {
		return "", err
	}

	return strings.TrimSpace(string(b)), nil
}

// pids lists every process ID in /proc.
func pids() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}

	var out []int

	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}

	return out
}

// Named lists the processes whose command name is comm.
func Named(comm string) []int {
	var out []int

	for _, pid := range pids() {
		if c, err := Comm(pid); err == nil && c == comm {
			out = append(out, pid)
		}
	}

	return out
}

// Descendants lists every process below pid (children, their children...), by walking /proc.
func Descendants(pid int) []int {
	children := map[int][]int{}

	for _, p := range pids() {
		if st, err := ReadStat(p); err == nil {
			children[st.PPID] = append(children[st.PPID], p)
		}
	}

	var out []int

	queue := []int{pid}
	for len(queue) > 0 && len(out) < 1_000_000 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}

	return out
}

// Tree is pid followed by its Descendants.
func Tree(pid int) []int {
	return append([]int{pid}, Descendants(pid)...)
}
