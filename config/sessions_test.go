package config

import (
	"strings"
	"testing"
	"time"
)

func TestSessionsRecheckInterval(t *testing.T) {
	for _, tc := range []struct {
		value string // "" = key absent
		want  time.Duration
		err   string
	}{
		{"", 0, ""}, // proxy/sessions applies its default
		{`"1s"`, time.Second, ""},
		{`"5m"`, 5 * time.Minute, ""},
		{`"500ms"`, 0, "sessions.recheck_interval: 500ms is below the minimum of 1s"},
		{`"-1m"`, 0, "sessions.recheck_interval: -1m0s is negative"},
		{`"soon"`, 0, `sessions.recheck_interval: "soon" is not a duration`},
	} {
		data := base
		if tc.value != "" {
			data += lines(`[sessions]`, `recheck_interval = `+tc.value)
		}
		c, err := Parse([]byte(data), t.TempDir(), nil)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("recheck_interval = %s: error %v, want %q", tc.value, err, tc.err)
			}
		case err != nil:
			t.Errorf("recheck_interval = %s: %v", tc.value, err)
		case c.Sessions.RecheckInterval.Duration != tc.want:
			t.Errorf("recheck_interval = %s: %v, want %v", tc.value, c.Sessions.RecheckInterval.Duration, tc.want)
		}
	}
}
