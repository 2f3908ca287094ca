package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test: sessions,
// refusals, the watchdog and the passive listeners all have owners
// that stop them on Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
