package s3

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/minio/minio-go/v7"
)

// SHA256 returns the SHA-256 digest the store keeps for the file name's
// object (x-amz-checksum-sha256, asked for with HeadObject's checksum mode),
// and false when it keeps none. Only an object stored whole with one has
// the file's digest: a multipart upload's checksum is composite ("...-3", a
// digest of the parts' digests) and is not returned. wharf stores one with
// every upload that fits in one part (putObject); a bigger one, sent in
// parts, gets none (S3 keeps whole-object checksums of parts for CRCs only).
func (f *Fs) SHA256(name string) ([]byte, bool, error) {
	v := clean(name)
	if err := f.check("stat", v, false); err != nil {
		return nil, false, err
	}

	ctx, cancel := opContext()
	defer cancel()

	var oi minio.ObjectInfo
	err := retry(ctx, func(ctx context.Context) (err error) {
		oi, err = f.s.core.StatObject(ctx, f.s.bucket, f.key(v), minio.StatObjectOptions{Checksum: true})

		return err
	})
	if err != nil {
		return nil, false, f.fail("stat", v, err)
	}

	sum, ok := wholeSHA256(oi.ChecksumSHA256)

	return sum, ok, nil
}

// wholeSHA256 decodes a stored x-amz-checksum-sha256, unless it is a
// multipart upload's composite one.
func wholeSHA256(stored string) ([]byte, bool) {
	if stored == "" || strings.Contains(stored, "-") {
		return nil, false
	}

	sum, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || len(sum) != 32 {
		return nil, false
	}

	return sum, true
}

// checksumHeader is the header that stores an upload's SHA-256 (hex) with
// its object, for SHA256.
func checksumHeader(sumHex string) map[string]string {
	raw, err := hex.DecodeString(sumHex)
	if err != nil || len(raw) != 32 {
		return nil
	}

	return map[string]string{"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(raw)}
}
