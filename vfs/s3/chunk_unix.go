//go:build unix

package s3

import "syscall"

// mapChunk maps a chunk of anonymous memory from the kernel, outside the Go
// heap: pages are zero and take no memory until first written.
func mapChunk() ([]byte, error) {
	return syscall.Mmap(-1, 0, chunkSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}

// unmapChunk gives a chunk back to the kernel. Nothing may refer to it
// afterwards: a read would crash the process.
func unmapChunk(c []byte) {
	_ = syscall.Munmap(c)
}
