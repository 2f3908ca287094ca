//go:build !unix

package s3

// mapChunk allocates a chunk on the Go heap where there is no mmap: the
// budget still holds, but idle memory goes back to the system only when the
// collector and its scavenger get to it.
func mapChunk() ([]byte, error) {
	return make([]byte, chunkSize), nil
}

// unmapChunk drops the chunk for the collector.
func unmapChunk([]byte) {}
