package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/directory"
)

var _ directory.Directory = (*timedDirectory)(nil)

// Directory returns d with every call timed in
// passgate_directory_call_duration_seconds and every failure counted in
// passgate_directory_errors_total, by operation (lookup, authenticate).
// The directory's answers (no such user, wrong password, disabled, cannot
// answer this) are not failures; ErrUnavailable and anything unexpected
// are. A nil m returns d unchanged.
func (m *Metrics) Directory(d directory.Directory) directory.Directory {
	if m == nil || d == nil {
		return d
	}
	return &timedDirectory{d: d, m: m}
}

func (m *Metrics) directoryCall(op string, start time.Time, err error) {
	m.directoryDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	switch {
	case err == nil, errors.Is(err, directory.ErrNotFound), errors.Is(err, directory.ErrBadPassword),
		errors.Is(err, directory.ErrDisabled), errors.Is(err, directory.ErrUnsupported):
		return
	}
	m.directoryErrors.WithLabelValues(op).Inc()
}

type timedDirectory struct {
	d directory.Directory
	m *Metrics
}

func (d *timedDirectory) Lookup(ctx context.Context, username string) (e directory.Entry, err error) {
	defer func(t time.Time) { d.m.directoryCall("lookup", t, err) }(time.Now())
	return d.d.Lookup(ctx, username)
}

func (d *timedDirectory) Authenticate(ctx context.Context, username, password string) (e directory.Entry, err error) {
	defer func(t time.Time) { d.m.directoryCall("authenticate", t, err) }(time.Now())
	return d.d.Authenticate(ctx, username, password)
}
