package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var messageSeq atomic.Int64

// smtpMessage returns an RFC 5322 message that exercises the transfer: a
// line that starts with a dot (dot-stuffed on the wire, RFC 5321 §4.5.2),
// 8-bit UTF-8 text, trailing white space, and a unique Message-ID.
func smtpMessage(from, to, subject string) []byte {
	n := messageSeq.Add(1)
	return []byte("From: <" + from + ">\r\n" +
		"To: <" + to + ">\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <passgate-it-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(n, 10) + "@example.net>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Hello through passgate.\r\n" +
		".a line that starts with a dot\r\n" +
		"..and one with two\r\n" +
		"Grüße, trailing spaces:   \r\n" +
		"\r\n" +
		"-- \r\n" +
		"the end\r\n")
}

// bigMessage returns a message of exactly size bytes (at least 200): lines
// of 75 printable characters, every 100th starting with a dot, and a
// shorter last line.
func bigMessage(from, to, subject string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 100)
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <passgate-it-big-%d-%d@example.net>\r\n\r\n",
		from, to, subject, os.Getpid(), messageSeq.Add(1))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; b.Len() < size; i++ {
		if i%100 == 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(&b, "%08d %s\r\n", i, alphabet)
	}
	b.Truncate(size - 2)
	out := append(b.Bytes(), "\r\n"...)
	if out[size-3] == '\r' { // no bare CR before the final CRLF
		out[size-3] = 'x'
	}
	return out
}

// writeMessage writes msg to a file in the test's directory and returns its
// path.
func writeMessage(t testing.TB, msg []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "message.eml")
	if err := os.WriteFile(path, msg, 0o644); err != nil {
		t.Fatalf("write message: %v", err)
	}
	return path
}

// checkRelayed checks a message the sink got against what the client sent.
// The upstream adds exactly one trace header in front of the message
// (RFC 5321 §4.4); Dovecot's submission service writes
//
//	Received: from localhost ([127.0.0.1])
//		by localhost with ESMTPSA
//		id TJk8Ild8Cmt2GgAAg+zDdQ
//		(envelope-from <user000@example.org>)
//		for <scratch-1@example.net>; Sat, 28 Nov 2026 07:01:43 +0000
//
// ("ESMTPA" when passgate reached it without TLS, "ESMTPSA" over STARTTLS),
// Postfix a similar one. Everything after it must be the client's bytes,
// unchanged. It returns the Received header.
func checkRelayed(t testing.TB, m sinkMessage, sent []byte, from string, to ...string) string {
	t.Helper()
	if !strings.EqualFold(m.From, from) {
		t.Errorf("the sink got MAIL FROM:<%s>, want <%s>", m.From, from)
	}
	if strings.Join(m.To, ",") != strings.Join(to, ",") {
		t.Errorf("the sink got RCPT TO %q, want %q", m.To, to)
	}
	received, rest, ok := cutTraceHeader(m.Data)
	if !ok {
		t.Fatalf("the sink's message does not start with Dovecot's Received header: %.300q", m.Data)
	}
	if !strings.Contains(received, "for <"+to[0]+">") {
		t.Errorf("Received header %q does not name the recipient", received)
	}
	if !bytes.Equal(rest, sent) {
		t.Fatalf("the sink got %d bytes after the Received header, the client sent %d; %s",
			len(rest), len(sent), firstDifference(rest, sent))
	}
	return received
}

// cutTraceHeader splits off the first header field of data if it is a
// Received field, with its folded continuation lines.
func cutTraceHeader(data []byte) (received string, rest []byte, ok bool) {
	if !bytes.HasPrefix(data, []byte("Received: ")) {
		return "", data, false
	}
	end := 0
	for {
		i := bytes.Index(data[end:], []byte("\r\n"))
		if i < 0 {
			return "", data, false
		}
		end += i + 2
		if end >= len(data) || (data[end] != ' ' && data[end] != '\t') {
			return string(data[:end]), data[end:], true
		}
	}
}

// firstDifference describes where got and want first differ.
func firstDifference(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			lo := max(i-40, 0)
			return fmt.Sprintf("first difference at byte %d: got %q, want %q", i, got[lo:min(i+40, len(got))], want[lo:min(i+40, len(want))])
		}
	}
	return fmt.Sprintf("one is a prefix of the other (%d common bytes)", n)
}
