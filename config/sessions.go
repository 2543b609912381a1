package config

import "time"

// Sessions tunes how live sessions are kept in step with the store
// (proxy/sessions).
type Sessions struct {
	// RecheckInterval is how often every live session is checked against
	// the store, so that one whose credential is gone ends within it even
	// if the revocation event was lost unnoticed. Zero: the default of
	// proxy/sessions (60s). At least 1s.
	RecheckInterval Duration `toml:"recheck_interval"`
}

// minRecheckInterval bounds the store reads of the recheck: each one reads
// every live session's account and app password.
const minRecheckInterval = time.Second

// sessions validates s; its zero values keep meaning "the default".
func (l *loader) sessions(s *Sessions) {
	l.duration("sessions.recheck_interval", &s.RecheckInterval, 0, minRecheckInterval)
}
