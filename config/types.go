package config

import (
	"fmt"
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
