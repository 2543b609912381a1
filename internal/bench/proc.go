package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of the times in /proc/PID/stat; the kernel
// ABI fixes it at 100 on every architecture Go supports.
const clkTck = 100

// procTree returns pid and all its live descendants.
func procTree(pid int) ([]int, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// stat is what we use of /proc/PID/stat.
type stat struct {
	ppid int
	// ticks is utime + stime + cutime + cstime: the process's CPU and that
	// of its children that it has waited for.
	ticks int64
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

// parseStat reads a /proc/PID/stat line (proc(5)); comm, field 2, may hold
// spaces and parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return stat{}, fmt.Errorf("stat: %d fields after comm", len(f))
	}
	var s stat
	var err error
	if s.ppid, err = strconv.Atoi(f[1]); err != nil {
		return stat{}, fmt.Errorf("stat ppid: %w", err)
	}
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return stat{}, fmt.Errorf("stat times: %w", err)
		}
		s.ticks += n
	}
	return s, nil
}

// cpuSeconds is the CPU time used so far by pid and its live descendants,
// including their children that have exited and been waited for.
func cpuSeconds(pid int) (float64, error) {
	tree, err := procTree(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, p := range tree {
		if st, err := readStat(p); err == nil {
			ticks += st.ticks
		}
	}
	return float64(ticks) / clkTck, nil
}

// memory is the resident memory of a process tree, in KiB.
type memory struct {
	rss, pss int64
	procs    int
}

// memoryKiB sums Rss and Pss of /proc/P/smaps_rollup over pid's tree.
func memoryKiB(pid int) (memory, error) {
	tree, err := procTree(pid)
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, p := range tree {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue // exited meanwhile
		}
		rss, pss, err := parseRollup(b)
		if err != nil {
			return memory{}, fmt.Errorf("process %d: %w", p, err)
		}
		m.rss += rss
		m.pss += pss
		m.procs++
	}
	if m.procs == 0 {
		return memory{}, fmt.Errorf("process %d: no smaps_rollup readable", pid)
	}
	return m, nil
}

// parseRollup returns the Rss and Pss lines (KiB) of a smaps_rollup file.
func parseRollup(b []byte) (rss, pss int64, err error) {
	rss, pss = -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "Rss" && key != "Pss") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("smaps_rollup %s: %w", key, err)
		}
		if key == "Rss" {
			rss = n
		} else {
			pss = n
		}
	}
	if rss < 0 || pss < 0 {
		return 0, 0, errors.New("smaps_rollup: no Rss or Pss line")
	}
	return rss, pss, nil
}

// loadAverage returns the 1-minute load average (0 if unreadable).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
