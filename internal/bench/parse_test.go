package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses.
	line := []byte("1234 (imap (login) x) S 77 1234 1234 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 100 1000 50\n")
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 77 || st.ticks != 150+50+7+3 {
		t.Errorf("parseStat = %+v, want ppid 77, ticks 210", st)
	}
	if _, err := parseStat([]byte("1 (x) S 1 2")); err == nil {
		t.Error("a short line parsed")
	}
}

func TestParseRollup(t *testing.T) {
	b := []byte("55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:                9184 kB\nPss:                6120 kB\nPss_Anon:           3000 kB\n")
	rss, pss, err := parseRollup(b)
	if err != nil || rss != 9184 || pss != 6120 {
		t.Errorf("parseRollup = %d, %d, %v; want 9184, 6120", rss, pss, err)
	}
	if _, _, err := parseRollup([]byte("Rss: 1 kB\n")); err == nil {
		t.Error("a rollup without Pss parsed")
	}
}

func TestProcessTreeOfThisTest(t *testing.T) {
	s := startServers(t)
	tree, err := procTree(1)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range tree {
		found = found || p == s.PID
	}
	if !found {
		t.Errorf("the child %d is not in the tree of pid 1", s.PID)
	}
	m, err := memoryKiB(s.PID)
	if err != nil || m.pss <= 0 || m.rss < m.pss || m.procs != 1 {
		t.Errorf("memoryKiB = %+v, %v", m, err)
	}
	if _, err := cpuSeconds(s.PID); err != nil {
		t.Error(err)
	}
}

func TestLiteralSize(t *testing.T) {
	for line, want := range map[string]int64{
		"* 1 FETCH (UID 5 BODY[] {10485760}": 10485760,
		"* 1 FETCH (BODY[] {0}":              0,
		"a LOGIN {5+}":                       5,
		"* OK done":                          -1,
		"* 1 FETCH (BODY[] {x}":              -1,
		"{-1}":                               -1,
	} {
		n, ok := literalSize([]byte(line))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("literalSize(%q) = %d, want %d", line, n, want)
		}
	}
}

func TestLoginCommand(t *testing.T) {
	b, err := loginCommand("al\"ice", `p\w`)
	if err != nil || string(b) != `LOGIN "al\"ice" "p\\w"` {
		t.Errorf("loginCommand = %s, %v", b, err)
	}
	_, err = loginCommand("alice", "pw\r\nx LOGOUT")
	if err == nil || strings.Contains(err.Error(), "pw") || !strings.Contains(err.Error(), "secret") {
		t.Errorf("CRLF in the secret: %v; want an error naming the field only", err)
	}
}

func TestMessage(t *testing.T) {
	for _, size := range []int{512, 513, 1000, 64 << 10, 10<<20 + 7} {
		m := message(size, "a@example.org", "b@example.org")
		if len(m) != size || !bytes.HasSuffix(m, []byte("\r\n")) {
			t.Errorf("message(%d): %d bytes, ends %q", size, len(m), m[len(m)-2:])
		}
		if bytes.Contains(m, []byte("\n.")) || bytes.Count(m, []byte("\n")) != bytes.Count(m, []byte("\r\n")) {
			t.Errorf("message(%d) has a dot line or a bare LF", size)
		}
		if d := dataOf(m); !bytes.HasSuffix(d, []byte("\r\n.\r\n")) || len(d) != size+3 {
			t.Errorf("dataOf(message(%d)) does not end with the dot line", size)
		}
	}
}

// The table takes the best figure (highest rate, lowest memory) and the
// ratio range from the repetitions.
func TestReportCells(t *testing.T) {
	cfg := Config{Targets: []Target{{Name: "d"}, {Name: "p"}}, Reps: 3}.withDefaults()
	rep := newReport(cfg)
	for i, v := range []float64{100, 80, 90} {
		rep.set(rowLogin, "d", i, v)
	}
	for i, v := range []float64{50, 60, math.NaN()} {
		if !math.IsNaN(v) {
			rep.set(rowLogin, "p", i, v)
		}
	}
	rep.set(rowIdlePSS, "d", 0, 450)
	rep.set(rowIdlePSS, "p", 0, 38)
	rep.fail([]int{rowSMTP}, "p", "smtp p rep 1: boom")
	rep.finish()
	if got := rep.cell(rowLogin, "d"); got != "100 [80.0–100]" {
		t.Errorf("login d = %q", got)
	}
	if got := rep.ratioCell(rowLogin, "p", "d"); got != "0.60 [0.50–0.75]" {
		t.Errorf("login p/d = %q", got)
	}
	if got := rep.ratioCell(rowIdlePSS, "p", "d"); got != "0.08" {
		t.Errorf("idle p/d = %q", got)
	}
	if got := rep.cell(rowSMTP, "p"); got != "error" {
		t.Errorf("failed cell = %q", got)
	}
	if got := rep.cell(rowSMTP, "d"); got != "—" {
		t.Errorf("empty cell = %q", got)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if strings.Contains(md.String(), "FETCH") || !strings.Contains(md.String(), "FAILED: smtp p rep 1: boom") {
		t.Errorf("table:\n%s", md.String())
	}
}
