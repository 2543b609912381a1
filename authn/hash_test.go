package authn

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// cheap are argon2id parameters for unit tests.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func TestHashRoundTrip(t *testing.T) {
	secret := []byte("abcdefghjkmnpqrs")
	h1, err := cheap.Hash(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q: want prefix $argon2id$v=19$m=64,t=1,p=1$", h1)
	}
	h2, err := cheap.Hash(secret)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of one secret are equal: salt is not random")
	}
	for _, tc := range []struct {
		secret string
		want   bool
	}{
		{"abcdefghjkmnpqrs", true},
		{"abcdefghjkmnpqrt", false},
		{"ABCDEFGHJKMNPQRS", false},
		{"", false},
	} {
		ok, err := VerifyHash(h1, []byte(tc.secret))
		if err != nil || ok != tc.want {
			t.Errorf("VerifyHash(%q) = %v, %v; want %v, nil", tc.secret, ok, err, tc.want)
		}
	}
}

// TestVerifyHashReference checks interoperability with the reference
// implementation (phc-winner-argon2 src/test.c): password "password", salt
// "somesalt", t=2, m=64 MiB, p=1.
func TestVerifyHashReference(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	for secret, want := range map[string]bool{"password": true, "Password": false} {
		ok, err := VerifyHash(ref, []byte(secret))
		if err != nil || ok != want {
			t.Errorf("VerifyHash(reference, %q) = %v, %v; want %v, nil", secret, ok, err, want)
		}
	}
}

func TestDefaultParams(t *testing.T) {
	h, err := DefaultParams.Hash([]byte("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=19456,t=2,p=1" {
		t.Fatalf("default hash %q: want $argon2id$v=19$m=19456,t=2,p=1$salt$key", h)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) != 16 {
		t.Errorf("salt %q: %d bytes, err %v; want 16 bytes", parts[4], len(salt), err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) != 32 {
		t.Errorf("key %q: %d bytes, err %v; want 32 bytes", parts[5], len(key), err)
	}
	if ok, err := VerifyHash(h, []byte("correct horse battery")); !ok || err != nil {
		t.Errorf("VerifyHash(default hash, right secret) = %v, %v", ok, err)
	}
	if ok, err := VerifyHash(h, []byte("correct horse battery ")); ok || err != nil {
		t.Errorf("VerifyHash(default hash, wrong secret) = %v, %v", ok, err)
	}
}

func TestVerifyHashMalformed(t *testing.T) {
	good, err := cheap.Hash([]byte("s3cret-value"))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, "$")
	salt, key := p[4], p[5]
	join := func(fields ...string) string { return strings.Join(fields, "$") }
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"plain text", "s3cret-value"},
		{"argon2i", join("", "argon2i", "v=19", "m=64,t=1,p=1", salt, key)},
		{"bcrypt", "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
		{"version 16", join("", "argon2id", "v=16", "m=64,t=1,p=1", salt, key)},
		{"no version", join("", "argon2id", "m=64,t=1,p=1", salt, key)},
		{"params out of order", join("", "argon2id", "v=19", "t=1,m=64,p=1", salt, key)},
		{"missing param", join("", "argon2id", "v=19", "m=64,t=1", salt, key)},
		{"extra param", join("", "argon2id", "v=19", "m=64,t=1,p=1,k=1", salt, key)},
		{"negative", join("", "argon2id", "v=19", "m=-64,t=1,p=1", salt, key)},
		{"leading zero", join("", "argon2id", "v=19", "m=064,t=1,p=1", salt, key)},
		{"not a number", join("", "argon2id", "v=19", "m=x,t=1,p=1", salt, key)},
		{"empty value", join("", "argon2id", "v=19", "m=,t=1,p=1", salt, key)},
		{"salt not base64", join("", "argon2id", "v=19", "m=64,t=1,p=1", "!!!!!!!!!!!", key)},
		{"salt padded", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt+"==", key)},
		{"salt too short", join("", "argon2id", "v=19", "m=64,t=1,p=1", "c2FsdA", key)},
		{"empty key", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, "")},
		{"key too short", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, key[:8])},
		{"trailing field", good + "$x"},
		{"no leading $", strings.TrimPrefix(good, "$")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyHash(tc.phc, []byte("s3cret-value"))
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyHash = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

// TestVerifyHashHostileParams: a stored hash with absurd costs is rejected
// before anything is allocated (a 4 GiB allocation would fail the test run).
func TestVerifyHashHostileParams(t *testing.T) {
	good, err := cheap.Hash([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, "$")
	for _, params := range []string{
		"m=4194304,t=1,p=1",    // 4 GiB
		"m=4294967295,t=1,p=1", // max uint32
		"m=4294967296,t=1,p=1", // overflows uint32
		"m=64,t=1000000,p=1",
		"m=64,t=0,p=1",
		"m=64,t=1,p=0",
		"m=1024,t=1,p=255",
		"m=4096,t=1,p=256", // overflows uint8
		"m=7,t=1,p=1",      // below 8*p
	} {
		t.Run(params, func(t *testing.T) {
			phc := strings.Join([]string{"", "argon2id", "v=19", params, p[4], p[5]}, "$")
			if ok, err := VerifyHash(phc, []byte("x")); ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyHash = %v, %v; want false, ErrMalformedHash", ok, err)
			}
		})
	}
}

func TestHashRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{MemoryKiB: 64, Time: 0, Threads: 1},
		{MemoryKiB: 64, Time: 1, Threads: 0},
		{MemoryKiB: MaxMemoryKiB + 1, Time: 1, Threads: 1},
		{MemoryKiB: 64, Time: MaxTime + 1, Threads: 1},
		{MemoryKiB: 8, Time: 1, Threads: 2},
	} {
		if h, err := p.Hash([]byte("x")); err == nil {
			t.Errorf("%+v.Hash = %q, nil; want an error", p, h)
		}
	}
}
