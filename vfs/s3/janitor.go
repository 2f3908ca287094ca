package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"

	"wharf/vfs"
)

// The janitor aborts incomplete multipart uploads that nobody will finish:
// those of a wharf that died (kill -9, a crash, a node lost), and those
// whose abort failed while the store was unreachable. It runs when
// Options.AbandonedUploadAge is set: once at start, then every
// sweepEvery(age), and sooner (from firstRetry, doubling) while aborts or
// listings fail.
//
// Which uploads are abandoned: an upload below Options.Prefix that no
// session of this Store is running, and that is older than the age. Its
// age counts from its journal entry's last write when it has one, else
// from its start. The journal is a small object per multipart upload,
// "<prefix>.wharf-upload-journal/<hash of the upload ID>", holding its key
// and ID: written when the upload starts, before any part, rewritten by
// its Store at every pass while the upload runs (so uploads that outlast
// the age, in another instance too, are left alone) and deleted when it
// ends. Clients never see it (vfs.TempPrefix names are hidden and
// refused).
//
// The journal is what finds uploads on stores that list incomplete uploads
// only by exact key: MinIO answers ListMultipartUploads for a prefix only
// when the prefix is a whole key (or empty, from a cache of the uploads it
// started since it last started itself). So each pass lists the uploads
// below the prefix (AWS, Ceph RGW and Garage answer that), and, for every
// journal entry older than the age, the uploads of its key.
type janitor struct {
	s     *Store
	age   time.Duration
	every time.Duration
	log   *zap.Logger

	mu        sync.Mutex
	live      map[string]string // upload ID -> key: this Store's running uploads
	pending   map[string]string // upload ID -> key: aborts that failed, to try again
	deletes   []string          // journal entries of uploads that ended
	abandoned int64             // uploads aborted by a sweep
	retried   int64             // aborts that had failed, done later

	poke   chan struct{} // journal entries to delete
	soon   chan struct{} // an abort failed: try again in firstRetry
	cancel context.CancelFunc
	done   chan struct{}
}

// journalDir is the folder of the journal, below Options.Prefix.
const journalDir = vfs.TempPrefix + "journal/"

// firstRetry is the first delay before a failed pass is tried again.
const firstRetry = 5 * time.Second

// maxListPages bounds the uploads one pass lists (1000 per page).
const maxListPages = 100

// sweepEvery is the period of the passes for an age: a quarter of it, so
// that a running upload's journal entry is rewritten several times before
// it could look abandoned, between a second and an hour.
func sweepEvery(age time.Duration) time.Duration {
	return min(max(age/4, time.Second), time.Hour)
}

// journalEntry is the content of a journal object.
type journalEntry struct {
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
}

func newJanitor(s *Store, age time.Duration) *janitor {
	ctx, cancel := context.WithCancel(context.Background())
	j := &janitor{s: s, age: age, every: sweepEvery(age), log: s.log.Named("janitor"),
		live: map[string]string{}, pending: map[string]string{},
		poke: make(chan struct{}, 1), soon: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go j.run(ctx)

	return j
}

// stop ends the janitor and waits for it.
func (j *janitor) stop() {
	j.cancel()
	<-j.done
}

func (j *janitor) run(ctx context.Context) {
	defer close(j.done)
	timer := time.NewTimer(0) // a pass at start
	defer timer.Stop()
	backoff := firstRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.poke:
			j.deleteEnded(ctx)

			continue
		case <-j.soon:
			timer.Reset(firstRetry)

			continue
		case <-timer.C:
		}
		if j.pass(ctx) {
			backoff = firstRetry
			timer.Reset(j.every)
		} else {
			timer.Reset(backoff)
			backoff = min(2*backoff, j.every)
		}
	}
}

// pass rewrites the journal entries of running uploads, tries the failed
// aborts again and sweeps. It reports whether everything worked.
func (j *janitor) pass(ctx context.Context) bool {
	j.deleteEnded(ctx)
	ok := j.touch(ctx)
	ok = j.retry(ctx) && ok

	return j.sweep(ctx) && ok
}

// entryKey returns the key of the journal entry of an upload.
func (j *janitor) entryKey(id string) string {
	sum := sha256.Sum256([]byte(id))

	return j.s.prefix + journalDir + hex.EncodeToString(sum[:16])
}

// write writes the journal entry of an upload.
func (j *janitor) write(ctx context.Context, key, id string) error {
	body, err := json.Marshal(journalEntry{Key: key, UploadID: id})
	if err != nil {
		return err
	}
	_, err = j.s.core.PutObject(ctx, j.s.bucket, j.entryKey(id), bytes.NewReader(body), int64(len(body)), "", "",
		minio.PutObjectOptions{ContentType: "application/json"})

	return err
}

// started notes a multipart upload of this Store, before its first part.
func (j *janitor) started(ctx context.Context, key, id string) {
	j.mu.Lock()
	j.live[id] = key
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := j.write(ctx, key, id); err != nil {
		j.log.Warn("cannot journal upload: if wharf stops before it ends, only a listing of the store's "+
			"incomplete uploads finds it", zap.String("key", key), zap.String("upload_id", id), zap.Error(err))
	}
}

// ended notes that an upload completed or was aborted: its journal entry
// goes soon.
func (j *janitor) ended(id string) {
	j.mu.Lock()
	delete(j.live, id)
	delete(j.pending, id)
	j.deletes = append(j.deletes, j.entryKey(id))
	j.mu.Unlock()
	select {
	case j.poke <- struct{}{}:
	default:
	}
}

// abortFailed notes an upload whose abort failed: it is tried again soon.
func (j *janitor) abortFailed(key, id string) {
	j.mu.Lock()
	delete(j.live, id)
	j.pending[id] = key
	j.mu.Unlock()
	select {
	case j.soon <- struct{}{}:
	default:
	}
}

// deleteEnded deletes the journal entries of uploads that ended. One that
// cannot be deleted is left to the sweeps, which delete entries whose
// upload is gone.
func (j *janitor) deleteEnded(ctx context.Context) {
	j.mu.Lock()
	keys := j.deletes
	j.deletes = nil
	j.mu.Unlock()
	for _, k := range keys {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		_ = j.s.core.RemoveObject(octx, j.s.bucket, k, minio.RemoveObjectOptions{})
		cancel()
	}
}

// touch rewrites the journal entries of the running uploads, so that no
// janitor takes them for abandoned.
func (j *janitor) touch(ctx context.Context) bool {
	j.mu.Lock()
	live := maps.Clone(j.live)
	j.mu.Unlock()
	ok := true
	for id, key := range live {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		if err := j.write(octx, key, id); err != nil {
			ok = false
			j.log.Warn("cannot refresh upload journal", zap.String("key", key), zap.String("upload_id", id),
				zap.Error(err))
		}
		cancel()
	}

	return ok
}

// retry tries the failed aborts again.
func (j *janitor) retry(ctx context.Context) bool {
	j.mu.Lock()
	pending := maps.Clone(j.pending)
	j.mu.Unlock()
	ok := true
	for id, key := range pending {
		done, err := j.abort(ctx, key, id)
		if err != nil {
			ok = false
			j.log.Warn("cannot abort upload, will try again", zap.String("key", key), zap.String("upload_id", id),
				zap.Error(err))

			continue
		}
		j.mu.Lock()
		delete(j.pending, id)
		if done {
			j.retried++
		}
		j.mu.Unlock()
		if done {
			j.log.Info("upload aborted after a failed abort", zap.String("key", key), zap.String("upload_id", id))
		}
	}

	return ok
}

// abort aborts an upload and deletes its journal entry. It reports false,
// without error, for an upload that was gone already.
func (j *janitor) abort(ctx context.Context, key, id string) (bool, error) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := j.s.core.AbortMultipartUpload(octx, j.s.bucket, key, id)
	if err != nil && !notFound(err) {
		return false, err
	}
	_ = j.s.core.RemoveObject(octx, j.s.bucket, j.entryKey(id), minio.RemoveObjectOptions{})

	return err == nil, nil
}

// candidate is an incomplete upload a sweep found.
type candidate struct {
	key       string
	initiated time.Time
}

// sweep aborts the abandoned uploads (see janitor). It reports whether it
// could look everywhere and abort everything it found.
func (j *janitor) sweep(ctx context.Context) bool {
	cutoff := time.Now().Add(-j.age)
	j.mu.Lock()
	live := make(map[string]bool, len(j.live)+len(j.pending))
	for id := range j.live {
		live[id] = true
	}
	for id := range j.pending {
		live[id] = true // retry's business
	}
	j.mu.Unlock()

	entries, err := j.journal(ctx)
	if err != nil {
		// Without the journal, a running upload of another instance would
		// look abandoned.
		j.log.Warn("cannot list the upload journal", zap.Error(err))

		return false
	}
	ok := true
	found := map[string]candidate{}
	if err := j.list(ctx, j.s.prefix, found); err != nil {
		// Some stores refuse to list below a prefix; the journal still works.
		j.log.Debug("cannot list incomplete uploads", zap.String("prefix", j.s.prefix), zap.Error(err))
	}
	// Stale entries: their owner stopped writing them. Their upload is a
	// candidate even where the store lists nothing; the uploads of the same
	// key are listed too (MinIO lists by exact key only).
	for name, modified := range entries {
		if !modified.Before(cutoff) {
			continue
		}
		e, err := j.readEntry(ctx, name)
		switch {
		case err != nil:
			ok = false
			j.log.Warn("cannot read upload journal entry", zap.String("entry", name), zap.Error(err))

			continue
		case live[e.UploadID]:
			continue
		case !strings.HasPrefix(e.Key, j.s.prefix) || j.entryKey(e.UploadID) != name:
			j.log.Warn("upload journal entry names another upload: removed", zap.String("entry", name),
				zap.String("key", e.Key))
			_ = j.s.core.RemoveObject(ctx, j.s.bucket, name, minio.RemoveObjectOptions{})

			continue
		}
		if err := j.list(ctx, e.Key, found); err != nil {
			j.log.Debug("cannot list incomplete uploads", zap.String("key", e.Key), zap.Error(err))
		}
		if _, listed := found[e.UploadID]; !listed {
			found[e.UploadID] = candidate{key: e.Key}
		}
	}

	for id, c := range found {
		modified, journaled := entries[j.entryKey(id)]
		switch {
		case live[id]:
			continue
		case journaled && !modified.Before(cutoff):
			continue // its wharf keeps it alive
		case !journaled && !c.initiated.Before(cutoff):
			continue
		}
		done, err := j.abort(ctx, c.key, id)
		if err != nil {
			ok = false
			j.log.Warn("cannot abort abandoned upload, will try again", zap.String("key", c.key),
				zap.String("upload_id", id), zap.Error(err))

			continue
		}
		if done {
			j.mu.Lock()
			j.abandoned++
			j.mu.Unlock()
			j.log.Info("abandoned upload aborted", zap.String("key", c.key), zap.String("upload_id", id),
				zap.Time("initiated", c.initiated), zap.Bool("journaled", journaled))
		}
	}

	return ok
}

// journal lists the journal's entries and their last write.
func (j *janitor) journal(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for oi := range j.s.core.ListObjectsIter(ctx, j.s.bucket, listOptions(j.s.prefix+journalDir, true, 1000)) {
		if oi.Err != nil {
			return out, oi.Err
		}
		out[oi.Key] = oi.LastModified
	}

	return out, nil
}

// readEntry reads one journal entry.
func (j *janitor) readEntry(ctx context.Context, name string) (journalEntry, error) {
	var e journalEntry
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	body, _, _, err := j.s.core.GetObject(octx, j.s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return e, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 4<<10))
	if err != nil {
		return e, err
	}
	err = json.Unmarshal(b, &e)

	return e, err
}

// list adds the incomplete uploads whose key starts with prefix and lies
// below Options.Prefix, outside the journal, to found.
func (j *janitor) list(ctx context.Context, prefix string, found map[string]candidate) error {
	var keyMarker, idMarker string
	for range maxListPages {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		res, err := j.s.core.ListMultipartUploads(octx, j.s.bucket, prefix, keyMarker, idMarker, "", 1000)
		cancel()
		if err != nil {
			return err
		}
		for _, up := range res.Uploads {
			if strings.HasPrefix(up.Key, j.s.prefix) && !strings.HasPrefix(up.Key, j.s.prefix+journalDir) {
				found[up.UploadID] = candidate{key: up.Key, initiated: up.Initiated}
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}

	return errors.New("too many incomplete uploads to list in one pass")
}

// janitorStats is a snapshot for metrics and tests.
type janitorStats struct {
	abandoned, retried int64
	pending            int
}

func (j *janitor) stats() janitorStats {
	j.mu.Lock()
	defer j.mu.Unlock()

	return janitorStats{abandoned: j.abandoned, retried: j.retried, pending: len(j.pending)}
}
