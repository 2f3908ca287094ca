package server

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"wharf/vfs"
)

// reclaimMaxEntries bounds the walk of one home folder for upload leftovers:
// about a tenth of a second of directory reading on a local disk. A tree
// larger than that is reclaimed in part, and the log line says so
// (complete=false); leftovers are hidden from clients either way.
const reclaimMaxEntries = 100_000

// reclaimer removes what uploads left on disk that no upload can be using
// (vfs.Fs.Reclaim): the temporary files of a wharf killed during an upload,
// and resumable parts past their window. It walks each home folder once per
// process, when Listen starts the server (every account's home) and when a
// session first opens it (a home added by a reload, or a home whose link now
// leads elsewhere), one folder at a time on one goroutine; a walk visits at
// most reclaimMaxEntries entries. On the same goroutine it removes the parts
// this process kept or found when their window passes (vfs.Uploads.Expire).
// The Server owns it: finish stops it and waits.
type reclaimer struct {
	log     *zap.Logger
	uploads *vfs.Uploads
	window  time.Duration // resumable parts are kept this long; 0 removes every part
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{} // a folder was queued
	done    chan struct{} // closed when the goroutine ends

	mu      sync.Mutex
	seen    map[string]bool // folders queued or walked, by their path with links resolved
	queue   []string
	pending int        // folders queued or being walked
	settled *sync.Cond // signalled when pending drops to 0 (wait)
	running bool
	closed  bool
}

func newReclaimer(log *zap.Logger, uploads *vfs.Uploads, window time.Duration) *reclaimer {
	ctx, cancel := context.WithCancel(context.Background())

	r := &reclaimer{
		log: log, uploads: uploads, window: window, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{}), seen: make(map[string]bool),
	}
	r.settled = sync.NewCond(&r.mu)

	return r
}

// add queues the home folder home for its walk, unless this process has
// walked or queued it already, and starts the goroutine if need be.
func (r *reclaimer) add(home string) {
	dir, err := filepath.Abs(home)
	if err != nil {
		return
	}

	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	if r.closed || r.seen[dir] {
		return
	}

	r.seen[dir] = true
	r.queue = append(r.queue, dir)
	r.pending++

	if !r.running {
		r.running = true
		go r.run()
	}

	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// next takes the next folder to walk.
func (r *reclaimer) next() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if len(r.queue) == 0 {
		return "", false
	}

	dir := r.queue[0]
	r.queue = r.queue[1:]

	return dir, true
}

func (r *reclaimer) run() {
	defer close(r.done)

	var sweep <-chan time.Time
	if r.window > 0 {
		// Parts are removed within a tenth of their window, and at least every minute.
		t := time.NewTicker(min(max(r.window/10, 10*time.Millisecond), time.Minute))
		defer t.Stop()
		sweep = t.C
	}

	for r.ctx.Err() == nil {
		if dir, ok := r.next(); ok {
			r.walk(dir)
			r.walked()

			continue
		}

		select {
		case <-r.ctx.Done():
		case <-r.wake:
		case <-sweep:
			r.expire()
		}
	}
}

// walk reclaims the leftovers in one home folder and logs what it removed:
// one line when it removed something, none when not.
func (r *reclaimer) walk(dir string) {
	fsys, err := vfs.Open(dir, vfs.Options{Uploads: r.uploads})
	if err != nil {
		// The login that needs this home will report it.
		r.log.Debug("upload leftovers: cannot open home", zap.String("home", dir), zap.Error(err))

		return
	}
	defer fsys.Close()

	start := time.Now()
	res := fsys.Reclaim(r.ctx, r.window, reclaimMaxEntries)
	fields := []zap.Field{
		zap.String("home", dir), zap.Int("files", res.Files), zap.Int64("bytes", res.Bytes),
		zap.Int("entries", res.Entries), zap.Bool("complete", res.Complete),
		zap.Duration("duration", time.Since(start).Round(time.Millisecond)),
	}

	switch {
	case res.Files > 0:
		r.log.Info("upload leftovers removed", fields...)
	case !res.Complete && r.ctx.Err() == nil:
		r.log.Debug("upload leftovers: walk stopped at its bound", fields...)
	}
}

// walked counts a folder done.
func (r *reclaimer) walked() {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.pending--; r.pending == 0 {
		r.settled.Broadcast()
	}
}

// wait returns once every folder queued so far has been walked, or the
// reclaimer is closed: tests use it so that no walk of a home runs behind
// their back (it holds a descriptor of the folder while it runs).
func (r *reclaimer) wait() {
	r.mu.Lock()
	defer r.mu.Unlock()

	for r.pending > 0 && !r.closed {
		r.settled.Wait()
	}
}

// expire removes the parts whose window has passed.
func (r *reclaimer) expire() {
	if res := r.uploads.Expire(time.Now()); res.Files > 0 {
		r.log.Info("expired upload parts removed", zap.Int("files", res.Files), zap.Int64("bytes", res.Bytes))
	}
}

// close stops the goroutine (a walk ends at its next folder) and waits for it.
func (r *reclaimer) close() {
	r.mu.Lock()
	r.closed = true
	running := r.running
	r.settled.Broadcast()
	r.mu.Unlock()

	r.cancel()

	if running {
		<-r.done
	}
}

// partWindow is how long a kept part is worth keeping: the resume window,
// or 0 when no upload can resume it (direct mode writes in place).
func (s *Server) partWindow() time.Duration {
	if !s.opts.AtomicUploads {
		return 0
	}

	return s.opts.UploadResumeWindow
}

// reclaimHomes queues every account's home folder for the reclaim of upload
// leftovers, when the server starts. Object stores have no leftovers to
// walk for (see the s3 package on incomplete multipart uploads).
func (s *Server) reclaimHomes() {
	if s.opts.Storage != nil {
		return
	}

	for _, home := range s.accounts.Load().Homes() {
		s.reclaim.add(home)
	}
}
