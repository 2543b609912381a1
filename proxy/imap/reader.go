package imap

import (
	"bufio"
	"io"
	"sync"
)

// readers keeps the pre-auth command readers (MaxLine bytes each, the
// largest allocation of a login) for the next connection: a session gives
// its reader back at the hand-off to the relay or when it ends.
var readers sync.Pool // of *bufio.Reader

// getReader is a reader of size bytes on r, from readers if one of that
// size is there.
func getReader(r io.Reader, size int) *bufio.Reader {
	if br, ok := readers.Get().(*bufio.Reader); ok {
		if br.Size() == size {
			br.Reset(r)
			return br
		}
	}
	return bufio.NewReaderSize(r, size)
}

// putReader zeroes br's buffer (it held a client's commands, secrets
// included) and keeps br for getReader. The caller must not use br again.
func putReader(br *bufio.Reader) {
	wipe(br)
	readers.Put(br)
}

// wipe zeroes br's buffer and detaches it from its reader.
func wipe(br *bufio.Reader) {
	br.Reset(zeros{})
	br.Peek(br.Size()) // fills the whole buffer from zeros
	br.Reset(nil)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
