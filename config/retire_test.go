package config

import (
	"strings"
	"testing"
	"time"
)

func TestAppPasswordRetirementKeys(t *testing.T) {
	c, err := Parse([]byte(base+lines(`[authn]`, `max_app_passwords = -1`, `unused_after = "90d"`,
		`unused_warn_before = "336h"`)), "/etc/pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Authn; a.MaxAppPasswords != -1 || a.UnusedAfter.Duration != 90*24*time.Hour ||
		a.UnusedWarnBefore.Duration != 14*24*time.Hour {
		t.Errorf("authn %+v", a)
	}
	d, err := Parse([]byte(base), "/etc/pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := d.Authn; a.MaxAppPasswords != 0 || a.UnusedAfter.Duration != 0 || a.UnusedWarnBefore.Duration != 0 {
		t.Errorf("defaults %+v: want zero (the account service applies 40, off and 14d)", a)
	}
	for _, tc := range []struct{ keys, want string }{
		{`unused_after = "90"`, "authn.unused_after"},
		{`unused_after = "soon"`, "90d"},
		{`unused_after = "-5d"`, "authn.unused_after"},
		{`unused_after = "-1h"`, "negative"},
		{"unused_after = \"10d\"\nunused_warn_before = \"10d\"", "authn.unused_warn_before"},
	} {
		_, err := Parse([]byte(base+lines(`[authn]`, tc.keys)), "/etc/pg", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.keys, err, tc.want)
		}
	}
}
