package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"

	"wharf/internal/ftptest"
	"wharf/vfs"
)

func putBytes(t *testing.T, client *minio.Client, bucket, key string, data []byte) {
	t.Helper()
	_, err := client.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// TestListingPages lists a folder of more keys than one listing request
// returns, in the engine's batches and all at once.
func TestListingPages(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "")
	const files = 2100
	var want []string
	work := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for key := range work {
				put(t, client, s.bucket, key, "x")
			}
		})
	}
	for i := range files {
		name := fmt.Sprintf("f%05d.txt", i)
		want = append(want, name)
		work <- "big/" + name
	}
	for _, d := range []string{"sub1", "sub2"} {
		want = append(want, d)
		work <- "big/" + d + "/x"
	}
	work <- "big/"                               // the marker
	work <- "big/" + vfs.TempPrefix + "0000abcd" // an upload in progress
	close(work)
	wg.Wait()
	slices.Sort(want)
	fsys, _ := s.Open("/", false)

	t.Run("Readdir in batches ends with io.EOF", func(t *testing.T) {
		d, err := fsys.Open("/big")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var got []string
		for {
			batch, err := d.Readdir(1024)
			for _, info := range batch {
				got = append(got, info.Name())
				if strings.HasPrefix(info.Name(), "sub") != info.IsDir() {
					t.Errorf("%s: IsDir %v", info.Name(), info.IsDir())
				}
				if !info.IsDir() && info.Size() != 1 {
					t.Errorf("%s: size %d", info.Name(), info.Size())
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				t.Fatal("empty batch without io.EOF")
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("got %d entries, want %d", len(got), len(want))
		}
	})

	t.Run("Readdirnames(-1) returns everything", func(t *testing.T) {
		if got := names(t, fsys, "/big"); !slices.Equal(got, want) {
			t.Fatalf("got %d names, want %d", len(got), len(want))
		}
	})

	t.Run("Seek(0) restarts a listing and Close stops it early", func(t *testing.T) {
		d, err := fsys.Open("/big")
		if err != nil {
			t.Fatal(err)
		}
		first, _ := d.Readdirnames(3)
		if _, err := d.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		again, _ := d.Readdirnames(3)
		if !slices.Equal(first, again) || len(first) != 3 {
			t.Fatalf("got %q then %q", first, again)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDownload reads with offsets, as REST and the engine's Seek do.
func TestDownload(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "")
	data := ftptest.RandomBytes(3<<20 + 17)
	putBytes(t, client, s.bucket, "h/blob.bin", data)
	put(t, client, s.bucket, "h/empty", "")
	fsys, _ := s.Open("/h", false)

	for _, off := range []int64{0, 1, 1 << 20, int64(len(data)) - 1, int64(len(data)), int64(len(data)) + 10} {
		t.Run(fmt.Sprintf("Seek to %d then read to the end", off), func(t *testing.T) {
			t.Parallel()
			f, err := fsys.Open("/blob.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got, err := f.Seek(off, io.SeekStart); err != nil || got != off {
				t.Fatalf("seek: %d, %v", got, err)
			}
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			want := data[min(off, int64(len(data))):]
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}

	t.Run("a later Seek starts a new range", func(t *testing.T) {
		f, _ := fsys.Open("/blob.bin")
		defer f.Close()
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[:1000]) {
			t.Fatalf("first read: %v", err)
		}
		if _, err := f.Seek(-500, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(f)
		if !bytes.Equal(rest, data[len(data)-500:]) {
			t.Fatalf("after SeekEnd: %d bytes", len(rest))
		}
		if pos, _ := f.Seek(10, io.SeekStart); pos != 10 {
			t.Fatalf("pos %d", pos)
		}
		if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[10:1010]) {
			t.Fatalf("read after seeking back: %v", err)
		}
	})

	t.Run("ReadAt reads a range", func(t *testing.T) {
		f, _ := fsys.Open("/blob.bin")
		defer f.Close()
		buf := make([]byte, 4096)
		if n, err := f.ReadAt(buf, 12345); err != nil || n != 4096 || !bytes.Equal(buf, data[12345:12345+4096]) {
			t.Fatalf("ReadAt: %d, %v", n, err)
		}
		if n, err := f.ReadAt(buf, int64(len(data))-10); !errors.Is(err, io.EOF) || n != 10 {
			t.Fatalf("ReadAt at the end: %d, %v", n, err)
		}
	})

	t.Run("the file's Stat has the size", func(t *testing.T) {
		f, _ := fsys.Open("/blob.bin")
		defer f.Close()
		info, err := f.Stat()
		if err != nil || info.Size() != int64(len(data)) || info.IsDir() || info.Name() != "blob.bin" {
			t.Fatalf("stat: %v %v", info, err)
		}
	})

	t.Run("an empty file reads as empty", func(t *testing.T) {
		if got := readFile(t, fsys, "/empty"); got != "" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("a file replaced after the open fails with ErrChanged", func(t *testing.T) {
		putBytes(t, client, s.bucket, "h/changing.bin", data[:1000])
		f, err := fsys.Open("/changing.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		putBytes(t, client, s.bucket, "h/changing.bin", data[1000:2000])
		if _, err := io.ReadAll(f); !errors.Is(err, ErrChanged) {
			t.Fatalf("got %v, want ErrChanged", err)
		}
	})

	t.Run("writing to a download fails", func(t *testing.T) {
		f, _ := fsys.Open("/blob.bin")
		defer f.Close()
		if _, err := f.Write([]byte("x")); err == nil {
			t.Fatal("write succeeded")
		}
	})
}

// send writes data to name in chunks, then calls TransferError(failure)
// unless it is nil, and closes.
func send(t *testing.T, fsys *Fs, name string, flag int, offset int64, data []byte, failure error) error {
	t.Helper()
	f, err := fsys.OpenFile(name, flag, 0o644)
	if err != nil {
		return err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()

			return err
		}
	}
	for chunk := range slices.Chunk(data, 256<<10) {
		if _, err := f.Write(chunk); err != nil {
			_ = f.Close()

			return err
		}
	}
	if failure != nil {
		f.(ftpserver.FileTransferError).TransferError(failure)
	}

	return f.Close()
}

const stor = os.O_WRONLY | os.O_CREATE | os.O_TRUNC

// TestUpload covers fresh uploads of each size class, aborted ones, appends
// and resumed ones, and concurrent ones to one name.
func TestUpload(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "p")
	bucket := s.bucket
	fsys, _ := s.Open("/u", true)
	big := ftptest.RandomBytes(2*partSize + 12345) // three parts

	for _, size := range []int{0, 1, 1 << 20, partSize, len(big)} {
		t.Run(fmt.Sprintf("%d bytes arrive whole", size), func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("/fresh-%d.bin", size)
			if err := send(t, fsys, name, stor, 0, big[:size], nil); err != nil {
				t.Fatal(err)
			}
			if got := object(t, client, bucket, "p/u"+name); got != string(big[:size]) {
				t.Fatalf("object has %d bytes, want %d", len(got), size)
			}
		})
	}

	for _, size := range []int{1000, partSize + 1000} {
		t.Run(fmt.Sprintf("an aborted upload of %d bytes leaves nothing", size), func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("/aborted-%d.bin", size)
			if err := send(t, fsys, name, stor, 0, big[:size], io.ErrUnexpectedEOF); err != nil {
				t.Fatalf("close after TransferError: %v", err)
			}
			if got := object(t, client, bucket, "p/u"+name); got != "<absent>" {
				t.Fatalf("object exists with %d bytes", len(got))
			}
			for _, k := range incomplete(t, client, bucket) {
				if k == "p/u"+name {
					t.Fatal("an incomplete multipart upload is left")
				}
			}
		})
	}

	t.Run("an aborted upload keeps the old file", func(t *testing.T) {
		t.Parallel()
		put(t, client, bucket, "p/u/old.txt", "old content")
		if err := send(t, fsys, "/old.txt", stor, 0, big[:partSize+1], errors.New("ABOR")); err != nil {
			t.Fatal(err)
		}
		if got := object(t, client, bucket, "p/u/old.txt"); got != "old content" {
			t.Fatalf("got %d bytes", len(got))
		}
	})

	for _, tc := range []struct {
		name  string
		old   int
		flag  int
		at    int64
		added int
	}{
		{"APPE to a small file", 1000, os.O_WRONLY | os.O_CREATE | os.O_APPEND, 0, 5000},
		{"APPE to a file of several MiB copies it on the server", 6 << 20, os.O_WRONLY | os.O_CREATE | os.O_APPEND, 0, 5000},
		{"APPE of a part and more", 6 << 20, os.O_WRONLY | os.O_CREATE | os.O_APPEND, 0, partSize + 10},
		{"APPE to a missing file creates it", 0, os.O_WRONLY | os.O_CREATE | os.O_APPEND, 0, 5000},
		{"REST in a small file", 1000, os.O_WRONLY | os.O_CREATE, 600, 5000},
		{"REST in a file of several MiB", 7 << 20, os.O_WRONLY | os.O_CREATE, 6 << 20, 5000},
		{"REST at the end", 1000, os.O_WRONLY | os.O_CREATE, 1000, 10},
		{"REST 0 without O_TRUNC replaces the file", 1000, os.O_WRONLY | os.O_CREATE, 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := "/" + strings.ReplaceAll(tc.name, " ", "-")
			oldData, added := big[:tc.old], big[len(big)-tc.added:]
			if tc.old > 0 {
				putBytes(t, client, bucket, "p/u"+name, oldData)
			}
			if err := send(t, fsys, name, tc.flag, tc.at, added, nil); err != nil {
				t.Fatal(err)
			}
			keep := oldData
			if tc.flag&os.O_APPEND == 0 {
				keep = oldData[:tc.at]
			}
			want := string(keep) + string(added)
			if got := object(t, client, bucket, "p/u"+name); got != want {
				t.Fatalf("object has %d bytes, want %d (or other content)", len(got), len(want))
			}
		})
	}

	for _, old := range []int{1000, 6 << 20} {
		t.Run(fmt.Sprintf("APPE to a file of %d bytes replaced meanwhile fails", old), func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("/replaced-%d", old)
			putBytes(t, client, bucket, "p/u"+name, big[:old])
			f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			put(t, client, bucket, "p/u"+name, "replaced")
			_, werr := f.Write([]byte("appended"))
			cerr := f.Close()
			if !errors.Is(werr, ErrChanged) || !errors.Is(cerr, ErrChanged) {
				t.Fatalf("write: %v; close: %v; want ErrChanged", werr, cerr)
			}
			if got := object(t, client, bucket, "p/u"+name); got != "replaced" {
				t.Fatalf("object has %d bytes", len(got))
			}
		})
	}

	t.Run("REST beyond the end is refused", func(t *testing.T) {
		t.Parallel()
		put(t, client, bucket, "p/u/short.txt", "short")
		err := send(t, fsys, "/short.txt", os.O_WRONLY|os.O_CREATE, 100, []byte("x"), nil)
		if err == nil {
			t.Fatal("upload at offset 100 of a 5-byte file succeeded")
		}
	})

	t.Run("concurrent uploads to one name leave one of them", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		contents := make([][]byte, 4)
		for i := range contents {
			contents[i] = ftptest.RandomBytes(1<<20 + i*(partSize/2))
			wg.Go(func() {
				if err := send(t, fsys, "/race.bin", stor, 0, contents[i], nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got := object(t, client, bucket, "p/u/race.bin")
		if !slices.ContainsFunc(contents, func(c []byte) bool { return string(c) == got }) {
			t.Fatalf("object of %d bytes is none of the uploads", len(got))
		}
	})

	t.Run("an upload's Stat and Seek report its position", func(t *testing.T) {
		t.Parallel()
		f, err := fsys.OpenFile("/pos.txt", stor, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte("12345"))
		if pos, err := f.Seek(0, io.SeekCurrent); pos != 5 || err != nil {
			t.Errorf("Seek: %d, %v", pos, err)
		}
		if _, err := f.Seek(2, io.SeekStart); !errors.Is(err, ErrSeek) {
			t.Errorf("Seek back: %v, want ErrSeek", err)
		}
		if info, _ := f.Stat(); info.Size() != 5 {
			t.Errorf("Stat size %d", info.Size())
		}
		if _, err := f.Read(make([]byte, 1)); err == nil {
			t.Error("Read of an upload succeeded")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUploadWhenTheStoreGoesAway cuts the connection to the store in the
// middle of an upload: the write fails, and neither the write's nor the
// close's error shows the endpoint.
func TestUploadWhenTheStoreGoesAway(t *testing.T) {
	t.Parallel()
	opts, client := testBucket(t)
	proxy := startProxy(t, strings.TrimPrefix(opts.Endpoint, "http://"))
	opts.Endpoint = "http://" + proxy.addr()
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fsys, _ := s.Open("/", false)
	f, err := fsys.Create("/cut.bin")
	if err != nil {
		t.Fatal(err)
	}
	data := ftptest.RandomBytes(partSize)
	if _, err := f.Write(data); err != nil {
		t.Fatalf("first part: %v", err)
	}
	proxy.close()
	_, werr := f.Write(data)
	cerr := f.Close()
	if !errors.Is(werr, ErrUnavailable) || !errors.Is(cerr, ErrUnavailable) {
		t.Fatalf("write: %v; close: %v; want ErrUnavailable", werr, cerr)
	}
	for _, err := range []error{werr, cerr} {
		if strings.Contains(err.Error(), proxy.addr()) || strings.Contains(err.Error(), opts.Bucket) {
			t.Errorf("error %q shows the store", err)
		}
	}
	if got := object(t, client, opts.Bucket, "cut.bin"); got != "<absent>" {
		t.Fatalf("an object of %d bytes appeared", len(got))
	}
}

// proxy forwards TCP connections to the store until it is closed, which
// also cuts the connections in progress.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()

				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
		}
	})
	t.Cleanup(p.close)

	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestPolicies wraps the S3 Fs in wharf's decorators, as the server does.
func TestPolicies(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "")
	put(t, client, s.bucket, "h/d/a.txt", "hello")
	fsys, _ := s.Open("/h", false)

	t.Run("ReadOnly reads and lists but changes nothing", func(t *testing.T) {
		ro := vfs.ReadOnly(fsys)
		if got := readFile(t, ro, "/d/a.txt"); got != "hello" {
			t.Errorf("got %q", got)
		}
		if got := names(t, ro, "/d"); !slices.Equal(got, []string{"a.txt"}) {
			t.Errorf("got %q", got)
		}
		for _, err := range []error{
			func() error { _, err := ro.Create("/n.txt"); return err }(),
			ro.Mkdir("/m", 0o755), ro.Remove("/d/a.txt"), ro.Rename("/d/a.txt", "/b.txt"),
		} {
			if !errors.Is(err, vfs.ErrReadOnly) {
				t.Errorf("got %v, want ErrReadOnly", err)
			}
		}
	})

	t.Run("WriteOnly uploads but neither reads nor lists", func(t *testing.T) {
		wo := vfs.WriteOnly(fsys)
		writeFile(t, wo, "/d/drop.txt", "dropped")
		if got := object(t, client, s.bucket, "h/d/drop.txt"); got != "dropped" {
			t.Errorf("got %q", got)
		}
		if _, err := wo.Stat("/d/drop.txt"); err != nil {
			t.Errorf("stat: %v", err)
		}
		for _, err := range []error{
			func() error { _, err := wo.Open("/d"); return err }(),
			func() error { _, err := wo.Open("/d/a.txt"); return err }(),
			wo.Remove("/d/a.txt"),
		} {
			if !errors.Is(err, vfs.ErrWriteOnly) {
				t.Errorf("got %v, want ErrWriteOnly", err)
			}
		}
	})

	t.Run("Resolve joins relative names to the working directory", func(t *testing.T) {
		r := vfs.Resolve(fsys, func() string { return "/d" })
		writeFile(t, r, "rel.txt", "relative")
		if got := object(t, client, s.bucket, "h/d/rel.txt"); got != "relative" {
			t.Errorf("got %q", got)
		}
		if _, err := r.Stat("../../../d/rel.txt"); err != nil {
			t.Errorf("stat: %v", err)
		}
		if _, err := r.Stat("bad\r\nname"); !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
			t.Errorf("got %v", err)
		}
		if _, err := r.Open("/nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v", err)
		}
	})
}
