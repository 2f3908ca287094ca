//go:build !linux

package miniotest

import "syscall"

// procAttr has nothing to add where the kernel offers no Pdeathsig.
func procAttr() *syscall.SysProcAttr { return nil }
