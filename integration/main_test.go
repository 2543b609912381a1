package integration

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopShared()
	removeBinary()
	os.Exit(code)
}
