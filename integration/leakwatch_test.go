package integration

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// leaks watches a whole run for secrets in passgate's output: every secret
// a test hands to passgate (primary passwords, app passwords, the master
// secret) is noted, every byte passgate writes to its log or to a CLI's
// standard error is kept, and TestMain searches all of it at the end. A
// per-test check can only see its own output; this one also catches a
// secret that shows up in another test's process, later.
var leaks leakWatch

type leakWatch struct {
	mu      sync.Mutex
	secrets map[string]bool
	outputs []fmt.Stringer
}

// secret notes s (and its forms without spaces and in lower case, as a
// user may type an app password).
func (w *leakWatch) secret(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.secrets == nil {
		w.secrets = map[string]bool{}
	}
	for _, form := range []string{s, strings.ReplaceAll(s, " ", ""), strings.ToLower(strings.ReplaceAll(s, " ", ""))} {
		if len(form) >= 8 { // shorter strings match by chance
			w.secrets[form] = true
		}
	}
}

// output notes a buffer that passgate writes its log to.
func (w *leakWatch) output(b fmt.Stringer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outputs = append(w.outputs, b)
}

type stringOutput string

func (s stringOutput) String() string { return string(s) }

// report writes what it searched and returns the number of leaks found.
func (w *leakWatch) report(out io.Writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var bytes, found int
	for _, o := range w.outputs {
		text := o.String()
		bytes += len(text)
		for s := range w.secrets {
			if strings.Contains(text, s) {
				found++
				fmt.Fprintf(out, "SECRET LEAK: a secret of %d characters appears in passgate's output:\n%s\n", len(s), text)
			}
		}
	}
	fmt.Fprintf(out, "secret scan: %d secrets searched for in %d outputs (%d bytes) of passgate: %d found\n",
		len(w.secrets), len(w.outputs), bytes, found)
	return found
}

func TestLeakWatchFindsASecret(t *testing.T) {
	var w leakWatch
	w.secret("abcd efgh jkmn pqrs")
	w.output(stringOutput(`level=INFO msg="imap login" user=alice`))
	if n := w.report(io.Discard); n != 0 {
		t.Fatalf("clean output: %d leaks reported", n)
	}
	w.output(stringOutput(`level=WARN msg=oops secret=abcdefghjkmnpqrs`))
	if n := w.report(io.Discard); n != 1 {
		t.Fatalf("an app password typed without spaces in the log: %d leaks reported, want 1", n)
	}
}
