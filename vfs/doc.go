// Package vfs is the file system an FTP session sees: an afero.Fs whose "/" is
// one directory on disk and which nothing the client sends can leave.
//
// # Confinement
//
// Fs is built on os.Root (os.OpenRoot). Every lookup walks the path one
// element at a time with openat(2), so "..", absolute names and symbolic links
// that lead outside the directory fail instead of being followed. A link whose
// target stays inside works as the client expects ("latest -> 2.4.1" lists as
// a directory and can be entered). os.Root treats every absolute link target
// as an escape, even one that names a path inside the root; such links are
// listed but cannot be followed.
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
// relative to a session's working directory. DropBox is ReadOnly except in one
// upload folder, where anonymous users may create new files and folders but
// not read, list or change anything there. Its uploads never replace a file:
// an atomic one is committed with a hard link (link(2) fails if the name is
// taken, where rename(2) would replace it), a direct one opened with O_EXCL.
package vfs
