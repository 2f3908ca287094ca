// Package vfs is the file system an FTP session sees: an afero.Fs whose "/" is
// one directory on disk and which nothing the client sends can leave.
//
// # Confinement
//
// Fs is built on os.Root (os.OpenRoot), so nothing a name or a symbolic link
// says can reach outside the directory. On top of it, Fs walks every path
// itself, one element at a time (lookup.go), to decide what the session may
// see: it follows symbolic links by their text, a relative one from its
// folder, an absolute one only if it names a path inside the root's folder on
// disk ("/srv/ftp/pub/x" is "/pub/x"; os.Root alone would refuse it), and it
// checks each element it meets against the rules below. A link whose target
// stays inside works as the client expects ("latest -> 2.4.1" can be
// entered, and downloads through it work); a link that dangles, leaves the
// root or leads to something the session may not see is not listed, and
// using it fails with fs.ErrNotExist, as for a missing name (550).
//
// # What the session sees
//
// Listings show a link as what it leads to, under its own name, or with
// Options.ShowLinks as a Link ("name -> target", with the target as the
// client sees it), so that mirroring clients recreate links instead of
// copying a tree twice or looping through "self -> .". Options.Deny hides
// names (rsync's temporary ones: DefaultDeny) from listings, lookups and
// uploads; names of in-progress uploads (TempPrefix) are always hidden. Deny
// does the same for other backends. WorldReadable is a per-session view for
// anonymous users that hides what others may not read on disk, by mode bits,
// whatever user wharf runs as, and through every alias.
//
// # Errors are replies
//
// ftpserverlib sends the text of a driver error to the client verbatim, in the
// reply to the command (RFC 959, section 4.2). Every error from this package
// therefore names virtual paths only, "open /docs/a.txt: file does not exist",
// never the disk path. Errors keep their kind for errors.Is (fs.ErrNotExist,
// fs.ErrExist, fs.ErrPermission, syscall.ENOTEMPTY), a full disk or quota
// also wraps ftpserver.ErrStorageExceeded (reply 552, "exceeded storage
// allocation") and a refused name ftpserver.ErrFileNameNotAllowed (553).
// Resolve checks names before anything else sees them: a name with NUL, CR or
// LF could never be a path, and CR LF would end the reply line early.
//
// # Uploads
//
// RFC 959 says STOR replaces an existing file with the data transferred. With
// Options.Atomic, a fresh upload first goes to a hidden temporary file (named
// TempPrefix plus random hex) in the target's folder, and only a clean Close
// renames it over the target, so readers never see half a file and an aborted
// transfer leaves the old file untouched. Appends (APPE) and resumed uploads
// (REST then STOR, RFC 3659 section 5) extend the existing file and so write
// in place. Atomic mode replaces only a file that could be overwritten in
// place, so chmod a-w still protects it, and the new file keeps the old one's
// permission bits. New files get at most 0o644: an upload is never executable.
// An upload to a symbolic link writes its target, in place or atomically.
//
// Close returns only once the upload is durable: its data synced, then the
// folder that holds its new name (Options.NoSync turns that off). While
// the data arrives, its write-back to the disk is started every few MiB, so
// that the final sync is short (sync.go).
//
// # Resumable uploads and leftovers
//
// Resume gives an account a view in which an interrupted atomic upload is
// not discarded but kept, hidden, as that account's part of the target: a
// TempPrefix file in the target's folder whose name is a hash of the account
// and the target, so that the same account finds it again after a reconnect
// or a restart and nobody else can. Part reports its size (SIZE); OpenFile
// without O_TRUNC continues it (APPE, or REST then STOR) and a clean Close
// commits it atomically; a fresh upload replaces it; after its window it is
// removed. Uploads is the process's record of the temporary files being
// written, and every upload holds a flock(2) on its file, so that two
// uploads never write one part, and Reclaim, which removes what a killed
// wharf left behind and expired parts, never takes a file in use by this
// process or another.
//
// # Speed
//
// Downloads return a bare *os.File, so the library's io.Copy to the data
// connection uses sendfile(2); the upload files implement io.ReaderFrom by
// delegating to *os.File, so uploads can use splice(2).
//
// # Policies
//
// ReadOnly and WriteOnly are small decorators that refuse whole classes of
// operations with errors wrapping fs.ErrPermission; Resolve interprets names
// relative to a session's working directory. WriteOnly means create-only: an
// upload never replaces, appends to or resumes a file that exists (553,
// ErrCreateOnly), and Stat shows folders but no file the session did not
// create itself, so that SIZE, MDTM, MLST, STAT and LIST answer alike for a
// file and for a missing name. WriteOnlyOverwrite lets an account replace
// files.
//
// DropBox is ReadOnly except in one upload folder, where anonymous users may
// create new files and folders but not read, list or change anything there.
// Its uploads never replace a file: an atomic one is committed with a hard
// link (link(2) fails if the name is taken, where rename(2) would replace
// it), a direct one opened with O_EXCL. They land with modes 0600 and 0700
// (vsftpd's anon_umask = 077), unreadable to others until an operator moves
// them. The folder is found by where it is on disk, not by its name: a path
// that gets into it through a symbolic link elsewhere ("link-to-incoming ->
// incoming") is as if missing, and listings leave such links out.
//
// # Snapshots
//
// A mirror that syncs into a second copy flips a link to it ("debian ->
// debian.2"). WithPins gives a session a table (Pins) in which each snapshot
// link is read once, the first time a lookup passes through it, and then
// kept: the session's listings, downloads and resumes come from one copy
// however often the link flips, and a Pinner counts the sessions holding
// each copy until Release. A listing of the folder that holds the link only
// peeks at it. SnapshotCopy reads where a snapshot link leads now, for a
// front end that starts afresh.
package vfs
