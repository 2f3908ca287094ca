package miniotest

import "syscall"

// procAttr makes MinIO die with the process that started it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
