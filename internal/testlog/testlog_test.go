package testlog

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestNew(t *testing.T) {
	log, buf := New(slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			log.Info("hello", "n", i)
			log.Debug("hidden", "n", i)
			_ = buf.String()
		})
	}
	wg.Wait()
	got := buf.String()
	for i := range 8 {
		if !strings.Contains(got, fmt.Sprintf("level=INFO msg=hello n=%d\n", i)) {
			t.Errorf("record %d missing from:\n%s", i, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("debug record below the level was written:\n%s", got)
	}
}
