package s3

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"wharf/vfs"
)

// Part buffers live outside the Go heap, in chunks of chunkSize mapped from
// the kernel (chunk_unix.go): the collector neither scans them nor counts
// them towards its next goal, so an upload costs its buffers and nothing
// more, and a chunk nobody used for a trim period goes back to the kernel
// at once (munmap) instead of waiting for a collection and the scavenger.
// A chunk of 256 KiB is what an upload holds before its first part grows:
// a small file costs that much.
const chunkSize = 256 << 10

// trimEvery is how often idle chunks are given back: those that stayed in
// the pool for a whole period.
const trimEvery = 5 * time.Second

// memoryWait is how long an upload waits for part memory by default
// (Options.UploadMemoryWait) before it is refused.
const memoryWait = 30 * time.Second

// ErrBusy refuses or cuts an upload that waited too long for part memory
// (Options.UploadMemory): the server is receiving as many uploads as its
// budget allows. It wraps vfs.ErrUploadBusy, which clients get as a 450
// reply (try again later) when it comes before the transfer started.
var ErrBusy error = &busyError{}

type busyError struct{}

func (*busyError) Error() string {
	return "too many uploads at once, try again later"
}

func (*busyError) Unwrap() error { return vfs.ErrUploadBusy }

// memory is the budget shared by the part buffers of every upload of a
// Store, and the pool of chunks they are made of. An upload reserves the
// memory of a part before it fills it, waiting in turn (first come, first
// served) when the budget is spent, and takes chunks as data arrives; a
// part being sent keeps its reservation until the store has it. No upload
// ever waits while holding a part it is filling, except for its very
// first chunk, which is only granted while a minimum part would still fit
// beside it: so every reservation made is for a part that fills, then
// sends, then is released, and waiting uploads always get their turn.
type memory struct {
	limit     int64 // bytes; 0: no bound
	wait      time.Duration
	trimEvery time.Duration

	mu      sync.Mutex
	used    int64     // reserved, in use or not
	large   int       // uploads past their first chunk, for the fair share
	queue   []*waiter // first come, first served
	free    [][]byte  // idle chunks, the most recently used last
	low     int       // fewest idle chunks since the last trim
	mapped  int64     // bytes of chunks held from the kernel, idle or not
	peak    int64     // most bytes ever reserved at once
	waits   int64     // reservations that had to wait
	refused int64     // reservations that waited in vain
	trim    *time.Timer
	closed  bool
}

// waiter is a reservation waiting in the queue.
type waiter struct {
	lo, hi, keep int64
	got          chan int64 // receives the grant
}

func newMemory(limit int64, wait time.Duration) *memory {
	if wait <= 0 {
		wait = memoryWait
	}

	return &memory{limit: limit, wait: wait, trimEvery: trimEvery}
}

// reserve takes between lo and hi bytes of the budget (multiples of
// chunkSize), as much as it can, leaving at least keep bytes free beside
// it. It waits up to m.wait for them, or until ctx ends.
func (m *memory) reserve(ctx context.Context, lo, hi, keep int64) (int64, error) {
	m.mu.Lock()
	if len(m.queue) == 0 {
		if n := m.grantable(lo, hi, keep); n > 0 {
			m.take(n)
			m.mu.Unlock()

			return n, nil
		}
	}
	w := &waiter{lo: lo, hi: hi, keep: keep, got: make(chan int64, 1)}
	m.queue = append(m.queue, w)
	m.waits++
	m.mu.Unlock()

	timer := time.NewTimer(m.wait)
	defer timer.Stop()
	var err error
	select {
	case n := <-w.got:
		return n, nil
	case <-timer.C:
		err = ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.queue {
		if q == w {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			if errors.Is(err, ErrBusy) {
				m.refused++
			}
			m.serve() // those behind may fit now

			return 0, err
		}
	}
	// Granted while giving up: give it back.
	m.give(<-w.got)

	return 0, err
}

// grantable returns how much of [lo, hi] can be taken now, leaving keep
// free, or 0. Called with m.mu held.
func (m *memory) grantable(lo, hi, keep int64) int64 {
	if m.limit == 0 {
		return hi
	}
	free := m.limit - m.used - keep
	if free < lo {
		return 0
	}

	return min(hi, free/chunkSize*chunkSize)
}

func (m *memory) take(n int64) {
	m.used += n
	m.peak = max(m.peak, m.used)
}

// release gives n reserved bytes back and serves those waiting.
func (m *memory) release(n int64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.give(n)
}

func (m *memory) give(n int64) {
	m.used -= n
	m.serve()
}

// serve grants the waiting reservations that fit, in order. Called with
// m.mu held.
func (m *memory) serve() {
	for len(m.queue) > 0 {
		w := m.queue[0]
		n := m.grantable(w.lo, w.hi, w.keep)
		if n == 0 {
			return
		}
		m.take(n)
		w.got <- n
		m.queue = m.queue[1:]
	}
}

// partSize returns the size of the next part of an upload that has sent
// sent parts: hi shrunk to a fair share of the budget (each large upload
// may fill one part while another is sent), but not below lo. The first
// partsPerStep parts go from minPart to partSize; each further
// partsPerStep doubles both, up to maxPartShift times, so that S3's
// maxParts still hold a large file. No part is larger than half the
// budget.
func (m *memory) partSize(sent int) (lo, hi int64) {
	shift := min(sent/partsPerStep, maxPartShift)
	lo, hi = minPart<<shift, partSize<<shift
	if m.limit == 0 {
		return hi, hi
	}
	half := m.limit / 2 / chunkSize * chunkSize
	lo, hi = min(lo, half), min(hi, half)
	m.mu.Lock()
	large := max(m.large, 1)
	m.mu.Unlock()
	fair := m.limit / int64(2*large) / chunkSize * chunkSize

	return lo, max(lo, min(hi, fair))
}

// grow counts an upload that goes past its first chunk (d = 1) or ends
// having done so (d = -1), for the fair share.
func (m *memory) grow(d int) {
	m.mu.Lock()
	m.large += d
	m.mu.Unlock()
}

// chunk returns an idle chunk, or maps a new one. The caller holds a
// reservation that covers it.
func (m *memory) chunk() ([]byte, error) {
	m.mu.Lock()
	if n := len(m.free); n > 0 {
		c := m.free[n-1]
		m.free = m.free[:n-1]
		m.low = min(m.low, len(m.free))
		m.mu.Unlock()

		return c, nil
	}
	m.mapped += chunkSize
	m.mu.Unlock()
	c, err := mapChunk()
	if err != nil {
		m.mu.Lock()
		m.mapped -= chunkSize
		m.mu.Unlock()

		return nil, fmt.Errorf("map a part buffer: %w", err)
	}

	return c, nil
}

// recycle puts chunks back into the pool; trimming gives those that stay
// idle back to the kernel.
func (m *memory) recycle(chunks [][]byte) {
	if len(chunks) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		for _, c := range chunks {
			unmapChunk(c)
		}
		m.mapped -= int64(len(chunks)) * chunkSize

		return
	}
	if len(m.free) == 0 {
		m.low = 0
	}
	m.free = append(m.free, chunks...)
	if m.trim == nil {
		m.trim = time.AfterFunc(m.trimEvery, m.trimIdle)
	}
}

// trimIdle unmaps the chunks that stayed idle since the last trim: the
// pool never went below that many. It runs every trimEvery while the pool
// holds chunks.
func (m *memory) trimIdle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trim = nil
	if m.closed {
		return
	}
	n := min(m.low, len(m.free))
	for _, c := range m.free[:n] { // the least recently used
		unmapChunk(c)
	}
	m.free = append(m.free[:0], m.free[n:]...)
	m.mapped -= int64(n) * chunkSize
	m.low = len(m.free)
	if len(m.free) > 0 {
		m.trim = time.AfterFunc(m.trimEvery, m.trimIdle)
	}
}

// close gives every idle chunk back and stops trimming; chunks still in
// use are unmapped when they come back.
func (m *memory) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.trim != nil {
		m.trim.Stop()
		m.trim = nil
	}
	for _, c := range m.free {
		unmapChunk(c)
	}
	m.mapped -= int64(len(m.free)) * chunkSize
	m.free = nil
}

// memoryStats is a snapshot of the budget, for metrics and tests.
type memoryStats struct {
	limit, used, peak, mapped int64
	waits, refused            int64
}

func (m *memory) stats() memoryStats {
	m.mu.Lock()
	defer m.mu.Unlock()

	return memoryStats{limit: m.limit, used: m.used, peak: m.peak, mapped: m.mapped, waits: m.waits,
		refused: m.refused}
}

// part is the buffer of one part: chunks filled in order, up to size
// bytes, which the upload reserved. sum, when set, hashes what is written.
type part struct {
	number   int
	chunks   [][]byte
	n        int64 // bytes written
	size     int64 // bytes it may hold: its reservation
	sum      hash.Hash
	reserved int64
}

// write copies as much of p as fits, taking chunks from mem as needed.
func (p *part) write(mem *memory, b []byte) (int, error) {
	written := 0
	for len(b) > 0 && p.n < p.size {
		i, off := int(p.n/chunkSize), int(p.n%chunkSize)
		if i == len(p.chunks) {
			c, err := mem.chunk()
			if err != nil {
				return written, err
			}
			p.chunks = append(p.chunks, c)
		}
		k := copy(p.chunks[i][off:min(chunkSize, int(p.size-int64(i)*chunkSize))], b)
		if p.sum != nil {
			p.sum.Write(b[:k])
		}
		b = b[k:]
		p.n += int64(k)
		written += k
	}

	return written, nil
}

// sha256 returns the hex SHA-256 of what was written, or "" when the part
// is not hashed (over https).
func (p *part) sha256() string {
	if p.sum == nil {
		return ""
	}

	return hex.EncodeToString(p.sum.Sum(nil))
}

// full reports whether the part holds as much as it may.
func (p *part) full() bool { return p.n == p.size }

// free gives the part's chunks and reservation back.
func (p *part) free(mem *memory) {
	mem.recycle(p.chunks)
	mem.release(p.reserved)
	p.chunks, p.reserved, p.size, p.n = nil, 0, 0, 0
}

// reader returns the part as a request body: it can be read again from the
// start (the client's retries seek back), and detach cuts it off from the
// chunks, so that a transport still reading after the request returned
// (net/http may, on errors) gets an error instead of a chunk that has gone
// back to the pool or to the kernel.
func (p *part) reader() *partReader {
	return &partReader{chunks: p.chunks, n: p.n}
}

type partReader struct {
	mu     sync.Mutex
	chunks [][]byte // nil once detached
	n, off int64
}

func (r *partReader) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chunks == nil {
		return 0, io.ErrClosedPipe
	}
	read := 0
	for len(b) > 0 && r.off < r.n {
		i, off := r.off/chunkSize, r.off%chunkSize
		end := min(int64(chunkSize), r.n-i*chunkSize)
		k := copy(b, r.chunks[i][off:end])
		b = b[k:]
		r.off += int64(k)
		read += k
	}
	if read == 0 && r.off == r.n {
		return 0, io.EOF
	}

	return read, nil
}

func (r *partReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.n
	default:
		return 0, errors.New("part reader: bad whence")
	}
	if offset < 0 || offset > r.n {
		return 0, errors.New("part reader: seek out of range")
	}
	r.off = offset

	return offset, nil
}

// detach ends every later Read.
func (r *partReader) detach() {
	r.mu.Lock()
	r.chunks = nil
	r.mu.Unlock()
}
