package store

import (
	"context"
	"time"
)

// KV holds short-lived values shared by every instance on the same backend:
// portal sessions, used TOTP steps (replay guard), enrolment state.
type KV interface {
	// PutKV stores value under key for ttl (> 0), replacing any value.
	PutKV(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// AddKV stores value under key for ttl only if key is absent (or
	// expired) and reports whether it did; atomic across instances.
	AddKV(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// GetKV returns the value, or ErrNotFound if absent or expired.
	GetKV(ctx context.Context, key string) ([]byte, error)
	// DeleteKV removes key; absent keys are not an error.
	DeleteKV(ctx context.Context, key string) error
}
