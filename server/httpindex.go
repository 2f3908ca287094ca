package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/vfs"
)

// indexBatch is how many entries one Readdir of an index page reads.
const indexBatch = 1024

// indexEntry is one line of a folder's index page.
type indexEntry struct {
	Name   string // as shown; html/template escapes it
	Href   string // relative and URL-escaped: "./a%20b", "./sub/"
	Dir    bool
	Size   string // bytes, "" for a folder
	Time   string // UTC
	Target string // a symbolic link's target, as FTP listings show it
}

type indexPage struct {
	Path      string
	Parent    bool
	Entries   []indexEntry
	Truncated int // the cap the listing stopped at (max_list_entries); 0 if whole
}

// indexTemplate is a folder's page. html/template escapes every name, in
// text and in attributes, so a file named "<script>" is shown as text.
var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Index of {{.Path}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; font-weight: 600; word-break: break-all; }
table { border-collapse: collapse; min-width: 60%; }
th, td { text-align: left; padding: 0.25em 1.2em 0.25em 0; white-space: nowrap; }
th { border-bottom: 1px solid #ccc; }
td.size { text-align: right; font-variant-numeric: tabular-nums; }
td.link { color: #777; }
a { text-decoration: none; color: #0645ad; }
a:hover { text-decoration: underline; }
p.note { color: #a33; }
</style>
</head>
<body>
<h1>Index of {{.Path}}</h1>
<table>
<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th><th></th></tr></thead>
<tbody>
{{- if .Parent}}
<tr><td><a href="../">../</a></td><td></td><td></td><td></td></tr>
{{- end}}
{{- range .Entries}}
<tr><td><a href="{{.Href}}">{{.Name}}{{if .Dir}}/{{end}}</a></td><td class="size">{{.Size}}</td><td>{{.Time}}</td><td class="link">{{if .Target}}&rarr; {{.Target}}{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .Truncated}}
<p class="note">Only the first {{.Truncated}} entries are shown.</p>
{{- end}}
</body>
</html>
`))

// index answers GET or HEAD for a folder with its index page: the names
// an FTP LIST shows (not those of [listing] hide, not dotfiles, not names
// with a line break), sorted by name, with size and date. index.html is
// not served in its place: this is a mirror's tree, not a web site.
func (q *httpRequest) index(f afero.File, name string) {
	entries, truncated, held, err := q.readIndex(f, name)
	defer q.h.srv.listMem.release(held)

	if err != nil {
		q.fail(name, err)

		return
	}

	page := indexPage{Path: name, Parent: name != "/", Entries: entries, Truncated: truncated}
	if name != "/" {
		page.Path += "/"
	}

	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, page); err != nil {
		q.h.log.Error("render index page", zap.String("path", name), zap.Error(err))
		http.Error(q.w, "500 the index page could not be made", http.StatusInternalServerError)

		return
	}

	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page runs no script and loads nothing: a name cannot make it.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	q.w.WriteHeader(http.StatusOK)

	if q.r.Method != http.MethodHead {
		_, _ = q.w.Write(buf.Bytes())
	}
}

// indexBytes estimates the memory one entry of an index page holds until
// the page is sent: the entry, its escaped link and its line of HTML.
func indexBytes(name string) int64 {
	return entryBytes + 4*int64(len(name))
}

// readIndex reads the entries of the folder f, at most max_list_entries, as
// an FTP listing reads a folder: in one of the listing slots, paying for
// their memory under max_listing_memory (held, which the caller releases
// once the page is sent), waiting for either at most as long as a listing
// does.
func (q *httpRequest) readIndex(f afero.File, dir string) (entries []indexEntry, truncated int, held int64, err error) {
	s := q.h.srv
	limit := s.opts.MaxListEntries

	ctx, cancel := context.WithTimeout(q.r.Context(), s.listingWait)
	defer cancel()

	select {
	case s.listings <- struct{}{}:
		defer func() { <-s.listings }()
	case <-ctx.Done():
		return nil, 0, 0, errListingsBusy
	}

	var out []indexEntry
	for {
		batch, rerr := f.Readdir(indexBatch)

		var n int64
		for _, fi := range batch {
			n += indexBytes(fi.Name())
		}

		var merr error
		if held == 0 {
			merr = s.listMem.acquire(ctx, n)
		} else {
			merr = s.listMem.grow(held, n)
		}

		if merr != nil {
			return nil, 0, held, merr
		}

		held += n

		for _, fi := range batch {
			if !q.listed(fi.Name()) {
				continue
			}

			if limit > 0 && len(out) >= limit {
				q.h.log.Warn("index page truncated", zap.String("path", dir), zap.Int("max_list_entries", limit))

				return sortIndex(out), limit, held, nil
			}

			out = append(out, entryOf(fi))
		}

		if errors.Is(rerr, io.EOF) || (rerr == nil && len(batch) == 0) {
			return sortIndex(out), 0, held, nil
		}

		if rerr != nil {
			return nil, 0, held, rerr
		}
	}
}

// listed reports whether a name goes on an index page: as in an FTP LIST
// without -a, neither dotfiles, [listing] hide patterns, nor names with a
// line break. All of them are still served by their exact name.
func (q *httpRequest) listed(name string) bool {
	if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "\r\n") {
		return false
	}

	for _, pattern := range q.h.srv.opts.Listing.Hide {
		if ok, _ := path.Match(pattern, name); ok {
			return false
		}
	}

	return true
}

// entryOf is an index line for fi; a symbolic link (vfs.Link) links to
// itself, which the server follows as FTP does, and shows its target.
func entryOf(fi fs.FileInfo) indexEntry {
	e := indexEntry{Name: fi.Name(), Dir: fi.IsDir(), Time: fi.ModTime().UTC().Format(time.DateTime)}

	if l, ok := fi.(vfs.Link); ok {
		e.Dir, e.Target = l.TargetIsDir(), l.LinkTarget()
	}

	e.Href = "./" + url.PathEscape(e.Name)
	if e.Dir {
		e.Href += "/"
	} else if e.Target == "" {
		e.Size = strconv.FormatInt(fi.Size(), 10)
	}

	return e
}

func sortIndex(entries []indexEntry) []indexEntry {
	slices.SortFunc(entries, func(a, b indexEntry) int { return cmp.Compare(a.Name, b.Name) })

	return entries
}
