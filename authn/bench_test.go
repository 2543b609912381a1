package authn

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyDefaultParams is the real cost of one app-password login
// with DefaultParams (one argon2id plus the store round trips).
func BenchmarkVerifyDefaultParams(b *testing.B) {
	ctx := context.Background()
	v := &Verifier{Store: newMemStore(), Now: func() time.Time { return t0 }}
	if err := createAccount(ctx, v, alice, "", false); err != nil {
		b.Fatal(err)
	}
	np, err := createAppPassword(ctx, v, alice, "laptop", nil, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	a := attempt(alice, np.Password)
	for b.Loop() {
		d, err := v.Verify(ctx, a)
		if err != nil || d.Result != OK {
			b.Fatalf("Verify = %+v, %v", d, err)
		}
	}
}

// BenchmarkHashDefault is the cost of one new hash with DefaultParams.
func BenchmarkHashDefault(b *testing.B) {
	secret := []byte("abcdefghjkmnpqrs")
	for b.Loop() {
		if _, err := DefaultParams.Hash(secret); err != nil {
			b.Fatal(err)
		}
	}
}
