package integration

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	leaks.secret(masterSecret)
	if leaks.report(os.Stdout) > 0 {
		code = 1
	}
	stopShared()
	removeBinary()
	os.Exit(code)
}
