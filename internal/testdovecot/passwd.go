package testdovecot

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Passwd is the content of a passwd-file that tests change while Dovecot
// runs: user -> password ({PLAIN}) and extra fields (passdb fields such as
// nologin, and userdb fields prefixed userdb_). The zero value is empty and
// ready to use.
type Passwd struct {
	mu    sync.Mutex
	pw    map[string]string
	extra map[string]string
}

// Set adds or changes a user.
func (p *Passwd) Set(user, password, extra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pw == nil {
		p.pw, p.extra = map[string]string{}, map[string]string{}
	}
	p.pw[user], p.extra[user] = password, extra
}

// SetPassword changes a user's password, keeping its extra fields, and
// writes the file of s.
func (p *Passwd) SetPassword(t testing.TB, s *Server, user, password string) {
	t.Helper()
	p.mu.Lock()
	p.pw[user] = password
	p.mu.Unlock()
	s.WritePasswd(t, p.String())
}

// String returns the file's lines, sorted.
func (p *Passwd) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lines []string
	for user, pw := range p.pw {
		lines = append(lines, fmt.Sprintf("%s:{PLAIN}%s::::::%s", user, pw, p.extra[user]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}
