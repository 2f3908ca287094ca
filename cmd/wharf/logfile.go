package main

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// logOutput is where the process log goes: standard output, or a file that
// Reopen opens again after logrotate moved it (SIGHUP, SIGUSR1).
type logOutput struct {
	mu   sync.Mutex
	path string // "" = the writer given, never reopened
	w    io.Writer
	f    *os.File
}

func openLogOutput(path string, stdout io.Writer) (*logOutput, error) {
	if path == "" {
		return &logOutput{w: stdout}, nil
	}

	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}

	return &logOutput{path: path, w: f, f: f}, nil
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}

	return f, nil
}

func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()

	return o.w.Write(p)
}

// Sync flushes a log file to disk; standard output needs nothing.
func (o *logOutput) Sync() error {
	o.mu.Lock()
	defer o.mu.Unlock()

	if o.f == nil {
		return nil
	}

	return o.f.Sync()
}

// Reopen opens the log file's path again; the old file is closed.
func (o *logOutput) Reopen() error {
	if o.path == "" {
		return nil
	}

	f, err := openLogFile(o.path)
	if err != nil {
		return err
	}

	o.mu.Lock()
	old := o.f
	o.w, o.f = f, f
	o.mu.Unlock()

	return old.Close()
}

func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()

	if o.f == nil {
		return nil
	}

	return o.f.Close()
}
