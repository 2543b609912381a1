package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string in the file
// ("30s", "35m", "1h30m"). A bare number is rejected: it has no unit.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(s)
	if err != nil {
		if s != "" && strings.TrimLeft(s, "+-0123456789.") == "" {
			return fmt.Errorf("%q has no unit: write e.g. \"%ss\" or \"%sm\"", s, s, s)
		}
		return fmt.Errorf("%q is not a duration such as \"30s\" or \"35m\"", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// oneOf returns s if it is one of allowed, otherwise an error listing them.
func oneOf(s string, allowed []string) (string, error) {
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}

// Age is a long duration written as a number of days ("90d") or as a Go
// duration string ("2160h").
type Age struct{ time.Duration }

// UnmarshalText parses "90d" or a Go duration string.
func (a *Age) UnmarshalText(text []byte) error {
	s := string(text)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return fmt.Errorf("%q is not a number of days such as \"90d\"", s)
		}
		a.Duration = time.Duration(days) * 24 * time.Hour
		return nil
	}
	var d Duration
	if err := d.UnmarshalText(text); err != nil {
		return fmt.Errorf("%w, or a number of days such as \"90d\"", err)
	}
	a.Duration = d.Duration
	return nil
}

// MarshalText writes whole days as "90d", else a Go duration string.
func (a Age) MarshalText() ([]byte, error) {
	const day = 24 * time.Hour
	if a.Duration != 0 && a.Duration%day == 0 {
		return []byte(strconv.FormatInt(int64(a.Duration/day), 10) + "d"), nil
	}
	return []byte(a.Duration.String()), nil
}
