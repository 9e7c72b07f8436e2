package memory_test

import (
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/memory"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

// TestConformance: the in-memory cloud keeps the contract every provider
// keeps, so tests that run on it (the engine's) run on a faithful cloud.
func TestConformance(t *testing.T) {
	p := memory.New()
	cloudtest.Run(t, func(*testing.T) cloud.Provider { return p }, cloudtest.Options{
		Waiter:  wait.Waiter{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Missing: cloudtest.MissingIDs{Image: "ami-0badf00d"},
		Timeout: time.Minute,
	})
}
