// Package s3 serves wharf's tree from an S3-compatible object store (AWS S3,
// MinIO, Ceph RGW, Garage), so that several wharf instances can serve one
// set of files: each session gets an afero.Fs, like the disk backend in
// package vfs, and the same policies (vfs.ReadOnly, vfs.WriteOnly,
// vfs.Resolve) wrap it.
//
// # Key layout
//
// A Store is one bucket and an optional key prefix; Store.Open(home) returns
// the tree below "<prefix>/<home>/", so the virtual path "/a/b.txt" of a
// session whose home is "/alice" is the key "<prefix>/alice/a/b.txt". Every
// name is cleaned (path.Clean of "/"+name) before it becomes a key: "..",
// empty elements and leading slashes are gone, so no name reaches a key
// outside the home (keys are flat strings; S3 would not resolve "..", but a
// neighbour "/alice2" shares the prefix "alice" without its slash). Folders are prefixes. Mkdir writes a zero-byte marker
// object "<folder>/" so that empty folders exist; a folder exists while its
// marker or any key below it does. When the last entry of a folder is
// removed or moved away, the folder gets a marker, as a folder on disk
// outlives its files. Listings are delimited ListObjectsV2 pages, streamed:
// files come with the size and time of the listing, folders show the Unix
// epoch (S3 keeps no time for a prefix). Keys whose last element starts
// with vfs.TempPrefix are hidden and refused, as on disk.
//
// # Atomic uploads
//
// S3 makes an object visible only when its upload completes, and replaces
// an old one at once, so uploads are always atomic: the atomic flag of
// Store.Open changes nothing. An upload streams into a multipart upload,
// filling one part while up to two are sent (upload.go), and is completed
// by a clean Close; after TransferError (ABOR, a lost data connection)
// Close aborts it, and no object, partial or empty, appears. Uploads
// smaller than one part go in one PUT at Close. A failed request fails the
// Write or Close that made it (or the next one, for a part sent in the
// background), so the client gets an error reply. Over https part payloads
// go unsigned (TLS protects them); over http each is signed with its
// SHA-256, which the store checks.
//
// # Memory
//
// Part buffers come from one budget per Store (Options.UploadMemory,
// memory.go), in chunks mapped outside the Go heap: an upload holds one
// chunk (256 KiB) from its start, then a part at a time, from 16 MiB down
// to S3's minimum of 5 MiB as more uploads share the budget. An upload
// waits for memory up to Options.UploadMemoryWait, then fails with ErrBusy
// (a vfs.ErrUploadBusy: 450 before the transfer, 451 during it). Chunks
// idle for a trim period go back to the kernel.
//
// # Abandoned uploads
//
// With Options.AbandonedUploadAge set, a janitor (janitor.go) aborts the
// incomplete multipart uploads below the prefix that no session of the
// Store runs and that are older than the age, at start and periodically,
// and tries again aborts that failed. A small journal object per running
// multipart upload, below "<prefix>.wharf-upload-journal/", lets it find
// them on stores that list incomplete uploads by exact key only (MinIO),
// and lets several instances share a bucket without aborting each other's
// long uploads. Store.Collector exports what it and the budget count.
//
// APPE and REST then STOR work, atomically too: the new object starts with
// the kept part of the old one (all of it for APPE, its first n bytes for
// REST n), copied on the server when it is at least 5 MiB and read back
// otherwise, followed by the new data. Note that with atomic uploads an
// interrupted upload leaves nothing to resume: a client's REST + STOR only
// helps with objects that were complete.
//
// # Errors
//
// Errors are *fs.PathError (or *os.LinkError for Rename) with virtual paths
// and path-free causes: fs.ErrNotExist (NoSuchKey), fs.ErrPermission
// (AccessDenied), fs.ErrExist, syscall.ENOTEMPTY / ENOTDIR / EISDIR,
// ftpserver.ErrStorageExceeded (552) and ftpserver.ErrFileNameNotAllowed
// (553), ErrChanged, ErrUnavailable (vfs.ErrUnavailable: the server answers
// 450, or 451 for a cut transfer) when the store did not answer, timed out
// or answered 5xx, 429 or SlowDown, and ErrStorage (vfs.ErrStorageFault:
// 451) for every other failure of the store. Their details (endpoint,
// bucket, key) go to Options.Log only, never to clients.
//
// # Outages and health
//
// Idempotent requests (stat, listings, the GET of a download) are tried
// again while the store fails transiently, for up to 2.5 s (retry.go): a
// listing resumes after its last page, a download with a ranged GET from
// where the store cut it. Every request goes through an observer
// (metrics.go) that times it, counts its failures by operation and kind,
// and tells the Store's health whether the store answered; StartProbes
// asks for the bucket every 5 s (every second while the store does not
// answer), so its return shows without a client. Health says whether the
// store answers and, if not, why, in words that name neither the endpoint
// nor the bucket; Collectors has wharf_storage_up,
// wharf_storage_errors_total{op,kind} and wharf_storage_request_seconds{op}.
// Prepare makes a Store without a request, so that wharf can start while
// the store is down and WaitUp for it; New is Prepare, then Check.
//
// # Limits
//
//   - Chmod and Chown are refused (ErrNoModes, wrapping fs.ErrPermission),
//     and so is Chtimes (ErrNoTimes; MFMT replies 550): S3 sets an object's
//     time when its upload completes.
//   - Rename copies and deletes. A folder is renamed object by object, at
//     most 10,000 of them (ErrTooManyKeys): other sessions may briefly see
//     both names, and a failure leaves the original in place.
//   - Names are valid UTF-8, with keys of at most 1024 bytes and elements
//     of at most 255.
//   - When other tools made both an object "a" and keys below "a/", Stat
//     and Open see the file, and listings show both.
//   - The largest upload is bounded by S3's 10,000 parts: parts double
//     after every 2000 of them, so about 969 GiB when none had to shrink
//     (parts are at most half of Options.UploadMemory), about 300 GiB when
//     all were minimum parts.
//   - On MinIO, incomplete uploads that wharf did not journal (another
//     program's) are found only with an empty prefix, and only until MinIO
//     restarts; MinIO's own expiry (MINIO_API_STALE_UPLOADS_EXPIRY) covers
//     them.
package s3
