package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Exit accounting through the kernel's taskstats interface (generic netlink).
//
// vsftpd runs each session in a new PID namespace (isolate=YES). When the
// session's privileged process, the namespace's init, exits, the kernel kills
// and reaps the unprivileged process without adding its CPU time to anyone's
// cumulative children fields: /proc/PID/stat of the master never sees the
// work of its sessions. taskstats reports every task that exits, with its
// run time in nanoseconds, so a tool listens for those reports and adds the
// ones that belong to the server's process tree.

// Exit is one exited task.
type Exit struct {
	PID, PPID int
	Comm      string
	CPU       time.Duration // on CPU over the task's life
}

// Exits collects the exit reports of tasks with given command names.
type Exits struct {
	fd    int
	comms map[string]bool

	mu      sync.Mutex
	records []Exit
	lost    bool // the socket overflowed at least once
	stop    chan struct{}
	stopped chan struct{}
}

// Netlink and taskstats constants (linux/netlink.h, linux/genetlink.h,
// linux/taskstats.h).
const (
	netlinkGeneric       = 16
	genlIDCtrl           = 0x10
	ctrlCmdGetFamily     = 3
	ctrlAttrFamilyID     = 1
	ctrlAttrFamilyName   = 2
	taskstatsCmdGet      = 1
	taskstatsCmdNew      = 2
	tsCmdAttrRegisterCPU = 3
	tsTypePID            = 1
	tsTypeStats          = 3
	tsTypeAggrPID        = 4
	tsTypeAggrTGID       = 5
	nlmFRequest          = 0x1
	nlmFAck              = 0x4
	nlmsgError           = 0x2
	nlmsgHdrLen          = 16
	genlHdrLen           = 4

	// Offsets in struct taskstats (version 8 and later share this prefix).
	// cpu_run_real_total is utime + stime as the tick sampled them;
	// cpu_run_virtual_total is the scheduler's exact run time, which
	// /proc/PID/task/TID/schedstat shows for live tasks.
	tsOffRunReal    = 64 // cpu_run_real_total, ns
	tsOffRunVirtual = 72 // cpu_run_virtual_total, ns
	tsOffComm       = 80 // ac_comm[32]
	tsOffPID        = 128
	tsOffPPID       = 132
	tsMinLen        = 136
)

// WatchExits registers for exit reports on every CPU and keeps those whose
// command name is in comms. It fails where taskstats is missing or refused
// (no CONFIG_TASKSTATS, not root, not the initial network namespace).
func WatchExits(comms ...string) (*Exits, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, netlinkGeneric)
	if err != nil {
		return nil, fmt.Errorf("taskstats socket: %w", err)
	}

	w := &Exits{fd: fd, comms: map[string]bool{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	for _, c := range comms {
		w.comms[c] = true
	}

	if err := w.register(); err != nil {
		_ = syscall.Close(fd)

		return nil, err
	}

	go w.loop()

	return w, nil
}

func (w *Exits) register() error {
	if err := syscall.Bind(w.fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("taskstats bind: %w", err)
	}

	// Room for a burst of exits between two drains; root may exceed rmem_max.
	_ = syscall.SetsockoptInt(w.fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20)
	_ = syscall.SetsockoptTimeval(w.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Sec: 5})

	reply, err := w.request(genlIDCtrl, ctrlCmdGetFamily, ctrlAttrFamilyName, "TASKSTATS\x00")
	if err != nil {
		return fmt.Errorf("taskstats family: %w", err)
	}

	var family uint16

	for t, v := range attrs(reply) {
		if t == ctrlAttrFamilyID && len(v) >= 2 {
			family = binary.LittleEndian.Uint16(v)
		}
	}

	if family == 0 {
		return errors.New("taskstats family: no id in the reply")
	}

	mask := "0-" + strconv.Itoa(runtime.NumCPU()-1)
	if _, err := w.request(family, taskstatsCmdGet, tsCmdAttrRegisterCPU, mask+"\x00"); err != nil {
		return fmt.Errorf("taskstats register for CPUs %s: %w", mask, err)
	}

	return nil
}

// request sends one generic netlink request with one string attribute and
// returns the first reply's attributes (for an ACK: nil).
func (w *Exits) request(family uint16, cmd uint8, attr uint16, value string) ([]byte, error) {
	a := nlAttr(attr, []byte(value))
	msg := make([]byte, nlmsgHdrLen+genlHdrLen+len(a))
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(msg))) //nolint:gosec // a few dozen bytes
	binary.LittleEndian.PutUint16(msg[4:], family)
	binary.LittleEndian.PutUint16(msg[6:], nlmFRequest|nlmFAck)
	binary.LittleEndian.PutUint32(msg[8:], 1)
	msg[16] = cmd
	msg[17] = 1 // version
	copy(msg[20:], a)

	if err := syscall.Sendto(w.fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}

	buf := make([]byte, 1<<16)

	for range 16 {
		n, _, err := syscall.Recvfrom(w.fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}

		for off := 0; off+nlmsgHdrLen <= n; {
			l := int(binary.LittleEndian.Uint32(buf[off:]))
			typ := binary.LittleEndian.Uint16(buf[off+4:])

			if l < nlmsgHdrLen || off+l > n {
				break
			}

			body := buf[off+nlmsgHdrLen : off+l]

			switch {
			case typ == nlmsgError && len(body) >= 4:
				if code := int32(binary.LittleEndian.Uint32(body)); code != 0 { //nolint:gosec // errno is an int32
					return nil, syscall.Errno(-code) //nolint:gosec // a negated errno is small and positive
				}

				return nil, nil // the ACK
			case typ == family && len(body) >= genlHdrLen:
				return bytes.Clone(body[genlHdrLen:]), nil
			}

			off += align4(l)
		}
	}

	return nil, errors.New("no reply")
}

func nlAttr(typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b := make([]byte, align4(l))
	binary.LittleEndian.PutUint16(b, uint16(l)) //nolint:gosec // short attribute
	binary.LittleEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)

	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

// attrs iterates over the netlink attributes in b.
func attrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for off := 0; off+4 <= len(b); {
			l := int(binary.LittleEndian.Uint16(b[off:]))
			if l < 4 || off+l > len(b) {
				return
			}

			if !yield(binary.LittleEndian.Uint16(b[off+2:]), b[off+4:off+l]) {
				return
			}

			off += align4(l)
		}
	}
}

// loop drains the socket every 50 ms until close.
func (w *Exits) loop() {
	defer close(w.stopped)

	for {
		select {
		case <-w.stop:
			return
		case <-time.After(50 * time.Millisecond):
			w.drain()
		}
	}
}

// drain reads every pending report without blocking.
func (w *Exits) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()

	buf := make([]byte, 1<<16)

	for range 100000 {
		n, _, err := syscall.Recvfrom(w.fd, buf, syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.ENOBUFS) {
			w.lost = true

			continue
		}

		if err != nil || n <= 0 {
			return
		}

		w.parse(buf[:n])
	}
}

func (w *Exits) parse(b []byte) {
	for off := 0; off+nlmsgHdrLen+genlHdrLen <= len(b); {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		if l < nlmsgHdrLen || off+l > len(b) {
			return
		}

		if b[off+nlmsgHdrLen] == taskstatsCmdNew {
			for t, v := range attrs(b[off+nlmsgHdrLen+genlHdrLen : off+l]) {
				if t == tsTypeAggrPID { // one task; AGGR_TGID repeats a thread group's sum
					w.add(v)
				}
			}
		}

		off += align4(l)
	}
}

func (w *Exits) add(aggr []byte) {
	for t, v := range attrs(aggr) {
		if t != tsTypeStats || len(v) < tsMinLen {
			continue
		}

		comm, _, _ := bytes.Cut(v[tsOffComm:tsOffComm+32], []byte{0})
		if !w.comms[string(comm)] {
			return
		}

		ns := binary.LittleEndian.Uint64(v[tsOffRunVirtual:])
		if ns == 0 {
			ns = binary.LittleEndian.Uint64(v[tsOffRunReal:])
		}

		w.records = append(w.records, Exit{
			PID:  int(binary.LittleEndian.Uint32(v[tsOffPID:])),
			PPID: int(binary.LittleEndian.Uint32(v[tsOffPPID:])),
			Comm: string(comm),
			CPU:  time.Duration(ns), //nolint:gosec // nanoseconds of one task's life fit an int64
		})
	}
}

// Mark drains the socket and returns the position of the next record.
func (w *Exits) Mark() int {
	w.drain()

	w.mu.Lock()
	defer w.mu.Unlock()

	return len(w.records)
}

// Since returns the records from position from on, and whether any report
// was lost to an overflow since the watch began.
func (w *Exits) Since(from int) ([]Exit, bool) {
	w.drain()

	w.mu.Lock()
	defer w.mu.Unlock()

	return append([]Exit(nil), w.records[from:]...), w.lost
}

// Close stops the watch.
func (w *Exits) Close() {
	close(w.stop)
	<-w.stopped
	_ = syscall.Close(w.fd)
}
