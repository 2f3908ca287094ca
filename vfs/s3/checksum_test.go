package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/minio/minio-go/v7"

	"wharf/internal/ftptest"
)

func TestStoredSHA256(t *testing.T) {
	t.Parallel()

	store, client := testStore(t, "")
	fsys, err := store.Open("/", true)
	if err != nil {
		t.Fatal(err)
	}
	small := ftptest.RandomBytes(100 << 10)

	// An upload through wharf that fits in one part keeps its SHA-256.
	f, err := fsys.Create("/small.bin")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.Write(small); err != nil {
		t.Fatal(err)
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	want := sha256.Sum256(small)
	if got, ok, err := fsys.SHA256("/small.bin"); err != nil || !ok || !bytes.Equal(got, want[:]) {
		t.Errorf("SHA256 of an upload in one part = %x, %t, %v; want %x", got, ok, err, want)
	}

	// An object put by another tool without a checksum has none.
	bucket := store.bucket
	if _, err := client.PutObject(context.Background(), bucket, "plain.bin", bytes.NewReader(small), int64(len(small)),
		minio.PutObjectOptions{DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}

	if got, ok, err := fsys.SHA256("/plain.bin"); err != nil || ok {
		t.Errorf("SHA256 of an object stored without one = %x, %t, %v; want none", got, ok, err)
	}

	if _, _, err := fsys.SHA256("/missing.bin"); err == nil {
		t.Errorf("SHA256 of a missing object: no error")
	}
}

func TestWholeSHA256(t *testing.T) {
	t.Parallel()

	sum := sha256.Sum256([]byte("a"))
	for _, tc := range []struct {
		stored string
		ok     bool
	}{
		{"ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=", true},
		{"ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=-3", false},
		{"", false},
		{"not base64!", false},
		{"YQ==", false},
	} {
		got, ok := wholeSHA256(tc.stored)
		if ok != tc.ok || (ok && !bytes.Equal(got, sum[:])) {
			t.Errorf("wholeSHA256(%q) = %x, %t; want %t", tc.stored, got, ok, tc.ok)
		}
	}
}
