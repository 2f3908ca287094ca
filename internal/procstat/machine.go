package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CoreTime is how one core has spent its time since boot, from /proc/stat.
type CoreTime struct {
	Tasks time.Duration // user, nice and system: running processes
	IRQ   time.Duration // irq and softirq (loopback TCP is mostly softirq work)
	Steal time.Duration // taken by the hypervisor
}

// ReadCore reads core n's line of /proc/stat.
func ReadCore(n int) (CoreTime, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CoreTime{}, fmt.Errorf("read /proc/stat: %w", err)
	}

	prefix := "cpu" + strconv.Itoa(n) + " "

	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}

		f := strings.Fields(rest)
		if len(f) < 8 {
			break
		}

		var v [8]time.Duration
		for i := range v {
			x, _ := strconv.ParseInt(f[i], 10, 64)
			v[i] = time.Duration(x) * time.Second / ClockTick
		}

		// user nice system idle iowait irq softirq steal
		return CoreTime{Tasks: v[0] + v[1] + v[2], IRQ: v[5] + v[6], Steal: v[7]}, nil
	}

	return CoreTime{}, fmt.Errorf("no %q line in /proc/stat", strings.TrimSpace(prefix))
}

// Sub is the time spent between o and t.
func (t CoreTime) Sub(o CoreTime) CoreTime {
	return CoreTime{Tasks: t.Tasks - o.Tasks, IRQ: t.IRQ - o.IRQ, Steal: t.Steal - o.Steal}
}

// Field returns the value of the first "key: value" line of a file such as /proc/cpuinfo or
// /proc/meminfo, or "unknown".
func Field(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}

	return "unknown"
}

// MemAvailable is the kernel's estimate of the memory available for new work without swapping
// (/proc/meminfo), in bytes; 0 when unknown.
func MemAvailable() int64 {
	kib, _ := strconv.ParseInt(strings.TrimSuffix(Field("/proc/meminfo", "MemAvailable"), " kB"), 10, 64)

	return kib << 10
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	return Field("/proc/cpuinfo", "model name")
}

// LoadAverage is the 1, 5 and 15 minute load averages, as /proc/loadavg writes them.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}

	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}

	return strings.Join(f[:3], " ")
}

// PIDsLeft is how many more tasks (processes and threads) may start before a limit refuses them: the
// least of the pids cgroup's pids.max less pids.current (cgroup v2, or v1's pids hierarchy) and the
// kernel's threads-max and pid_max less the tasks that exist now. ok is false when none can be read.
func PIDsLeft() (left int, ok bool) {
	left = -1

	lower := func(v int) {
		if v >= 0 && (left < 0 || v < left) {
			left = v
		}
	}

	for line := range strings.Lines(readString("/proc/self/cgroup")) {
		// "0::/path" on cgroup v2, "N:pids:/path" on v1.
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}

		var dir string

		switch {
		case f[0] == "0" && f[1] == "":
			dir = "/sys/fs/cgroup" + f[2]
		case f[1] == "pids":
			dir = "/sys/fs/cgroup/pids" + f[2]
		default:
			continue
		}

		if limit, cur := readInt(dir+"/pids.max"), readInt(dir+"/pids.current"); limit > 0 && cur >= 0 {
			lower(limit - cur)
		}
	}

	tasks := -1
	if f := strings.Fields(readString("/proc/loadavg")); len(f) >= 4 {
		// "10/310": runnable / existing tasks.
		if _, total, found := strings.Cut(f[3], "/"); found {
			tasks, _ = strconv.Atoi(total)
		}
	}

	if tasks >= 0 {
		for _, path := range []string{"/proc/sys/kernel/threads-max", "/proc/sys/kernel/pid_max"} {
			if most := readInt(path); most > 0 {
				lower(most - tasks)
			}
		}
	}

	return left, left >= 0
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}

	return strings.TrimSpace(string(b))
}

// readInt reads a file holding one integer; -1 when it is missing, "max" or not a number.
func readInt(path string) int {
	v, err := strconv.Atoi(readString(path))
	if err != nil {
		return -1
	}

	return v
}

// KernelRelease is the running kernel's release (/proc/sys/kernel/osrelease), or "unknown".
func KernelRelease() string {
	if s := readString("/proc/sys/kernel/osrelease"); s != "" {
		return s
	}

	return "unknown"
}
