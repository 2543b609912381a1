package imap

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// A pre-auth reader goes back to the pool without the commands it read:
// a LOGIN line's secret does not stay in the buffer the next connection
// gets.
func TestWipeClearsTheSecret(t *testing.T) {
	br := getReader(strings.NewReader("a LOGIN alice s3cret-app-pass\r\n"), 4096)
	if line, err := br.ReadSlice('\n'); err != nil || !bytes.Contains(line, []byte("s3cret")) {
		t.Fatalf("ReadSlice = %q, %v", line, err)
	}
	buf := reflect.ValueOf(br).Elem().FieldByName("buf").Bytes()
	if !bytes.Contains(buf, []byte("s3cret")) {
		t.Fatal("the test cannot see the reader's buffer")
	}
	wipe(br)
	if i := bytes.IndexFunc(buf, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Errorf("after wipe the buffer still holds %q at %d", buf[i:min(i+16, len(buf))], i)
	}
	if br.Buffered() != 0 {
		t.Errorf("after wipe %d bytes are buffered, want 0", br.Buffered())
	}
}
