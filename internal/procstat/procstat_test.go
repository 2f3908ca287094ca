package procstat_test

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"wharf/internal/procstat"
)

func TestReadersOnThisProcess(t *testing.T) {
	t.Parallel()

	pid := os.Getpid()

	st, err := procstat.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}

	// The main thread of a live process runs (R), sleeps (S) or waits on
	// the disk (D, as when a page of the binary is read in); never zombie.
	if st.PPID != os.Getppid() || !strings.ContainsRune("RSD", rune(st.State)) {
		t.Errorf("stat: ppid %d state %c, want ppid %d and R, S or D", st.PPID, st.State, os.Getppid())
	}

	tids, err := procstat.Threads(pid)
	if err != nil || !slices.Contains(tids, pid) {
		t.Fatalf("threads %v (%v): want the main thread %d among them", tids, err, pid)
	}

	if run, err := procstat.ThreadRuntime(pid, pid); err != nil || run <= 0 {
		t.Errorf("runtime of the main thread: %v, %v", run, err)
	}

	m, err := procstat.ReadMemory(pid)
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("memory %+v, %v: want 0 < RSS <= peak", m, err)
	}

	if pss, err := procstat.PSS(pid); err != nil || pss <= 0 {
		t.Errorf("PSS %d, %v", pss, err)
	}

	if n, err := procstat.FDs(pid); err != nil || n < 3 {
		t.Errorf("%d descriptors, %v: want at least stdin, stdout and stderr", n, err)
	}

	if _, err := procstat.ReadCore(0); err != nil {
		t.Error(err)
	}
}

func TestResetPeakBringsThePeakDown(t *testing.T) {
	// Not parallel: it grows and measures this process's memory.
	pid := os.Getpid()

	// 64 MiB mapped, touched and unmapped: the kernel takes the pages back at
	// once, whatever Go's collector does, so the peak stands above RSS.
	big, err := syscall.Mmap(-1, 0, 64<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < len(big); i += os.Getpagesize() {
		big[i] = 1
	}

	if err := syscall.Munmap(big); err != nil {
		t.Fatal(err)
	}

	before, err := procstat.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}

	if before.Peak < before.RSS+32<<20 {
		t.Fatalf("64 MiB touched and unmapped, yet RSS %d and peak %d are within 32 MiB", before.RSS, before.Peak)
	}

	if err := procstat.ResetPeak(pid); err != nil {
		t.Skipf("this kernel cannot reset the peak (writing 5 to clear_refs needs Linux 4.0): %v", err)
	}

	after, err := procstat.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}

	if after.Peak > before.Peak-32<<20 {
		t.Errorf("peak %d after the reset, %d before", after.Peak, before.Peak)
	}

	if after.Peak < after.RSS {
		t.Errorf("peak %d below RSS %d after the reset", after.Peak, after.RSS)
	}
}

func TestDescendantsAndNamedFindAChild(t *testing.T) {
	t.Parallel()

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("sleep(1) is not installed: the test needs a child process that waits")
	}

	cmd := exec.CommandContext(t.Context(), sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	child := cmd.Process.Pid

	if !slices.Contains(procstat.Descendants(os.Getpid()), child) {
		t.Errorf("descendants of this process lack the child %d", child)
	}

	if !slices.Contains(procstat.Tree(os.Getpid()), child) {
		t.Errorf("tree of this process lacks the child %d", child)
	}

	if !slices.Contains(procstat.Named("sleep"), child) {
		t.Errorf("processes named sleep lack the child %d", child)
	}
}

func TestPIDsLeftIsBelowTheKernelsLimit(t *testing.T) {
	t.Parallel()

	left, ok := procstat.PIDsLeft()
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("neither pids.max nor /proc/sys/kernel/threads-max and pid_max could be read")
		}

		t.Skip("no task limits to read outside Linux (/proc, cgroups)")
	}

	if left <= 0 || left > 1<<22 {
		t.Errorf("%d tasks left, want a positive number below pid_max's ceiling", left)
	}
}
