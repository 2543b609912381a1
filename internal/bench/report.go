package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Rows of the table, in the order they are printed.
const (
	rowLogin = iota
	rowLoginTLS
	rowFetch
	rowFetchTLS
	rowIdlePSS
	rowIdleRSS
	rowIdleTLSPSS
	rowIdleTLSRSS
	rowSMTP
	rowCPULogin
	rowCPULoginTLS
	rowCPUFetch
	rowCPUFetchTLS
	rowCPUSMTP
	numRows
)

// rowInfo describes a row: its label, and whether lower figures are better.
type rowInfo struct {
	label string
	lower bool
}

func rowInfos(c Config) [numRows]rowInfo {
	size := func(n int) string {
		if n%(1<<20) == 0 {
			return fmt.Sprintf("%d MiB", n>>20)
		}
		return fmt.Sprintf("%d B", n)
	}
	fetch := fmt.Sprintf("FETCH %s ×%d, MB/s", size(c.FetchSize), c.Fetches)
	idle := fmt.Sprintf("idle session, KiB (K=%d)", c.Sessions)
	return [numRows]rowInfo{
		rowLogin:       {fmt.Sprintf("logins/s, C=%d, warm", c.Concurrency), false},
		rowLoginTLS:    {fmt.Sprintf("logins/s, C=%d, warm, client TLS", c.Concurrency), false},
		rowFetch:       {fetch, false},
		rowFetchTLS:    {fetch + ", client TLS", false},
		rowIdlePSS:     {idle + ", PSS", true},
		rowIdleRSS:     {idle + ", RSS", true},
		rowIdleTLSPSS:  {idle + ", PSS, client TLS", true},
		rowIdleTLSRSS:  {idle + ", RSS, client TLS", true},
		rowSMTP:        {fmt.Sprintf("SMTP %s message, MB/s", size(c.SMTPSize)), false},
		rowCPULogin:    {"CPU s per 1000 logins", true},
		rowCPULoginTLS: {"CPU s per 1000 logins, client TLS", true},
		rowCPUFetch:    {"CPU s per GiB, FETCH", true},
		rowCPUFetchTLS: {"CPU s per GiB, FETCH, client TLS", true},
		rowCPUSMTP:     {"CPU s per GiB, SMTP", true},
	}
}

// Report is the outcome of a Run: per row and target, one figure per
// repetition.
type Report struct {
	cfg     Config
	info    [numRows]rowInfo
	started time.Time
	ended   time.Time

	mu       sync.Mutex
	loads    []float64
	cells    [numRows]map[string][]float64 // target -> value per repetition, NaN = none
	failed   [numRows]map[string]bool
	failures []string
	warnings []string
}

func newReport(c Config) *Report {
	rep := &Report{cfg: c, info: rowInfos(c), started: time.Now()}
	for i := range rep.cells {
		rep.cells[i] = map[string][]float64{}
		rep.failed[i] = map[string]bool{}
	}
	rep.sampleLoad()
	return rep
}

func (rep *Report) sampleLoad() float64 {
	l := loadAverage()
	rep.mu.Lock()
	rep.loads = append(rep.loads, l)
	rep.mu.Unlock()
	return l
}

func (rep *Report) finish() {
	rep.sampleLoad()
	rep.ended = time.Now()
}

func (rep *Report) set(row int, target string, i int, v float64) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	vals := rep.cells[row][target]
	if vals == nil {
		vals = make([]float64, rep.cfg.Reps)
		for j := range vals {
			vals[j] = math.NaN()
		}
		rep.cells[row][target] = vals
	}
	vals[i] = v
}

func (rep *Report) fail(rows []int, target, format string, a ...any) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	for _, r := range rows {
		rep.failed[r][target] = true
	}
	rep.failures = append(rep.failures, fmt.Sprintf(format, a...))
}

func (rep *Report) warn(format string, a ...any) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.warnings = append(rep.warnings, fmt.Sprintf(format, a...))
}

// Failures lists the measurements that failed (empty when all succeeded).
func (rep *Report) Failures() []string { return slices.Clone(rep.failures) }

// values returns the figures of target in row (nil if none).
func (rep *Report) values(row int, target string) []float64 {
	var out []float64
	for _, v := range rep.cells[row][target] {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

// best is the best figure of target in row, and false if there is none.
func (rep *Report) best(row int, target string) (float64, bool) {
	vs := rep.values(row, target)
	if len(vs) == 0 {
		return 0, false
	}
	if rep.info[row].lower {
		return slices.Min(vs), true
	}
	return slices.Max(vs), true
}

// ratios returns target/base per repetition where both have a figure.
func (rep *Report) ratios(row int, target, base string) []float64 {
	t, b := rep.cells[row][target], rep.cells[row][base]
	var out []float64
	for i := range t {
		if i < len(b) && !math.IsNaN(t[i]) && !math.IsNaN(b[i]) && b[i] != 0 {
			out = append(out, t[i]/b[i])
		}
	}
	return out
}

// WriteMarkdown writes the header, the table and the notes.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	c := rep.cfg
	fmt.Fprintf(bw, "passgate bench, %s, %s: best of %d repetitions [min–max]; logins for %v per run; idle once, first.\n\n",
		rep.started.UTC().Format(time.RFC3339), rep.ended.Sub(rep.started).Round(time.Second), c.Reps, c.Duration)
	fmt.Fprintf(bw, "Load average (1 min): %.2f at start, %.2f at most, %.2f at end; %d CPUs.\n\n",
		rep.loads[0], slices.Max(rep.loads), rep.loads[len(rep.loads)-1], runtime.NumCPU())

	var others []string
	for _, t := range c.Targets {
		if !slices.Contains(c.Baselines, t.Name) {
			others = append(others, t.Name)
		}
	}
	head := []string{"measure"}
	for _, t := range c.Targets {
		head = append(head, t.Name)
	}
	for _, b := range c.Baselines {
		for _, t := range others {
			head = append(head, t+" / "+b)
		}
	}
	writeRow(bw, head)
	writeRow(bw, slices.Repeat([]string{"---"}, len(head)))
	for row := range numRows {
		if len(rep.cells[row]) == 0 && len(rep.failed[row]) == 0 {
			continue
		}
		cells := []string{rep.info[row].label}
		for _, t := range c.Targets {
			cells = append(cells, rep.cell(row, t.Name))
		}
		for _, b := range c.Baselines {
			for _, t := range others {
				cells = append(cells, rep.ratioCell(row, t, b))
			}
		}
		writeRow(bw, cells)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Rates: higher is better; memory and CPU: lower is better. Memory is the growth of the target's --pid process tree per idle session; CPU is that tree's user+system time. A ratio is target / baseline of the best figures, [min–max] of the per-repetition ratios.")
	for _, s := range rep.warnings {
		fmt.Fprintf(bw, "\n- warning: %s", s)
	}
	for _, s := range rep.failures {
		fmt.Fprintf(bw, "\n- FAILED: %s", s)
	}
	if len(rep.warnings)+len(rep.failures) > 0 {
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// cell is the best figure with its range, "error" if it failed, or "—".
func (rep *Report) cell(row int, target string) string {
	best, ok := rep.best(row, target)
	switch {
	case !ok && rep.failed[row][target]:
		return "error"
	case !ok:
		return "—"
	}
	return withRange(num(best), rep.values(row, target), num)
}

func (rep *Report) ratioCell(row int, target, base string) string {
	t, okT := rep.best(row, target)
	b, okB := rep.best(row, base)
	if !okT || !okB || b == 0 {
		return "—"
	}
	return withRange(fmt.Sprintf("%.2f", t/b), rep.ratios(row, target, base), func(v float64) string { return fmt.Sprintf("%.2f", v) })
}

// withRange appends " [min–max]" when vs holds more than one figure.
func withRange(s string, vs []float64, format func(float64) string) string {
	if len(vs) < 2 {
		return s
	}
	return fmt.Sprintf("%s [%s–%s]", s, format(slices.Min(vs)), format(slices.Max(vs)))
}

// num formats a figure with three significant digits or more.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
