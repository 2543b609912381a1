package bench

import (
	"fmt"
	"time"
)

// message returns a text/plain message of exactly size bytes (at least
// 512): a header, then 78-byte lines of base64 letters. No line starts
// with '.', so it goes into SMTP DATA as it is, and it ends with CRLF.
func message(size int, from, to string) []byte {
	hdr := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: passgate bench %d bytes\r\n"+
		"Date: %s\r\nMessage-ID: <bench-%d-%d@passgate.invalid>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		from, to, size, time.Now().UTC().Format(time.RFC1123Z), size, time.Now().UnixNano())
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 0, size)
	b = append(b, hdr...)
	line := make([]byte, 78)
	line[76], line[77] = '\r', '\n'
	for i := 0; size-len(b) >= 2*len(line); i++ {
		for j := range 76 {
			line[j] = alphabet[(i*7+j*13)%len(alphabet)]
		}
		b = append(b, line...)
	}
	// The last line fills the rest (between 2 and 156 bytes, CRLF included).
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, '\r', '\n')
}
