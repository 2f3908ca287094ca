package s3_test

import (
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// When upload_memory is spent for longer than the wait, a STOR that cannot
// start gets 450 (try again later) before any data moves, and one whose
// part cannot grow is cut with 451; neither reply shows a key or the store.
// Memory: 16 MiB; the first upload's part takes 8, the second's 5, the
// third holds its first chunk.
func TestUploadRefusedWhenMemoryIsSpent(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	st.opts.UploadMemory, st.opts.UploadMemoryWait = 16<<20, 300*time.Millisecond
	w := st.start(t, auth.ReadWrite)

	// All three start (each holds a chunk), then the first two grow.
	open := func(name string) (*ftptest.Ctl, func([]byte)) {
		c := w.raw(t, "alice")
		c.Must(200, "TYPE I")
		conn := c.DialPasv()
		c.Must(150, "STOR %s", name)
		t.Cleanup(func() { _ = conn.Close() })

		return c, func(b []byte) { _, _ = conn.Write(b) }
	}
	_, writeA := open("a.bin")
	_, writeB := open("b.bin")
	third, writeC := open("c.bin")
	writeA(make([]byte, 1<<20))
	writeB(make([]byte, 1<<20))
	time.Sleep(500 * time.Millisecond) // until both hold their parts: nothing else fits

	c := w.raw(t, "alice")
	c.Must(200, "TYPE I")
	c.DialPasv()
	code, text := c.Cmd("STOR d.bin")
	if code != 450 || !strings.Contains(text, "try again later") {
		t.Errorf("STOR with memory spent: %d %s, want 450 and a try-again text", code, text)
	}

	writeC(make([]byte, 2<<20)) // the third grows past its chunk: no memory for that
	code, text = third.Read()
	if code != 451 || !strings.Contains(text, "try again later") {
		t.Errorf("an upload cut for memory: %d %s, want 451", code, text)
	}
	if strings.Contains(text, "ftp/") || strings.Contains(text, st.opts.Bucket) {
		t.Errorf("reply shows the store: %q", text)
	}
	if got := st.object(t, "alice/c.bin"); got != "<absent>" {
		t.Errorf("the cut upload left %d bytes", len(got))
	}
}
