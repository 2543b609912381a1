package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/passgate/passgate/store"
)

// Recovery codes: an enrolment makes RecoveryCodes one-time codes of
// RecoveryCodeLen letters of Alphabet (50 bits), shown once in display
// form "abcde-fghij". Each is kept as an app password is: a keyed lookup
// tag and an argon2id verifier, so that checking a code costs at most one
// argon2id, inside the Verifier's concurrency cap, and a wrong code none.
const (
	RecoveryCodes   = 10
	RecoveryCodeLen = 10
)

// recoveryTag is the keyed lookup tag of a recovery code (normalised):
// HMAC-SHA256 under the store's lookup key, in a domain of its own so
// that it never equals an app password's Tag.
func recoveryTag(key []byte, username, normalized string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("passgate recovery code\x00"))
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(normalized))
	return m.Sum(nil)[:TagLen]
}

// NewRecoveryCodes returns RecoveryCodes new recovery codes for username
// in display form, and what the store keeps of them (store.TOTP.Recovery).
func (v *Verifier) NewRecoveryCodes(ctx context.Context, username string) ([]string, []store.RecoveryCode, error) {
	username, err := store.NormalizeUsername(username)
	if err != nil {
		return nil, nil, fmt.Errorf("username: %w", err)
	}
	key, err := v.lookupKey(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recovery codes: %w", err)
	}
	codes := make([]string, 0, RecoveryCodes)
	kept := make([]store.RecoveryCode, 0, RecoveryCodes)
	for range RecoveryCodes {
		b := make([]byte, RecoveryCodeLen)
		for i := range b {
			b[i] = Alphabet[randIntn(len(Alphabet))]
		}
		code := string(b[:RecoveryCodeLen/2]) + "-" + string(b[RecoveryCodeLen/2:])
		h, err := v.hash(string(b))
		if err != nil {
			return nil, nil, fmt.Errorf("recovery codes: %w", err)
		}
		codes = append(codes, code)
		kept = append(kept, store.RecoveryCode{Tag: recoveryTag(key, username, string(b)), Hash: h})
	}
	return codes, kept, nil
}

// errCodeUsed aborts the removal of a recovery code that is already gone.
var errCodeUsed = errors.New("recovery code already used")

// UseRecoveryCode checks code (case, spaces and dashes ignored) against
// username's unused recovery codes and, if it matches one, removes that
// one inside the store's transaction (of two concurrent uses, one wins).
// It returns whether the code was accepted and how many codes are left.
//
// A code is found by its keyed tag and checked with one argon2id inside
// the concurrency cap; a code that no tag names costs none. Enrolments
// made before tags existed (store.TOTP.RecoveryHashes) are still
// accepted: each such code is checked in turn, every check inside the cap,
// so an attempt against them costs up to RecoveryCodes evaluations until
// the user sets up the authenticator again. Callers bound the attempts
// (Guard.SecondFactor).
func (v *Verifier) UseRecoveryCode(ctx context.Context, username, code string) (ok bool, left int, err error) {
	username, err = store.NormalizeUsername(username)
	if err != nil {
		return false, 0, fmt.Errorf("username: %w", err)
	}
	norm := NormalizeSecret(code)
	if len(norm) != RecoveryCodeLen {
		return false, 0, nil
	}
	acct, err := v.Store.GetAccount(ctx, username)
	if err != nil {
		return false, 0, fmt.Errorf("recovery code: %w", err)
	}
	if acct.TOTP == nil {
		return false, 0, nil
	}
	key, err := v.lookupKey(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("recovery code: %w", err)
	}
	tag := recoveryTag(key, username, norm)
	var legacy string
	if i := slices.IndexFunc(acct.TOTP.Recovery, func(rc store.RecoveryCode) bool { return hmac.Equal(rc.Tag, tag) }); i >= 0 {
		good, err := v.check(acct.TOTP.Recovery[i].Hash, norm)
		if err != nil {
			return false, 0, fmt.Errorf("recovery code: %w", err)
		}
		if !good { // a tag collision: practically impossible
			return false, acct.TOTP.RecoveryLeft(), nil
		}
	} else {
		if legacy, err = v.matchLegacy(acct.TOTP.RecoveryHashes, norm); err != nil {
			return false, 0, err
		}
		if legacy == "" {
			return false, acct.TOTP.RecoveryLeft(), nil
		}
	}
	err = v.Store.UpdateAccount(ctx, username, func(a *store.Account) error {
		if a.TOTP == nil {
			return errCodeUsed
		}
		t := *a.TOTP
		n := t.RecoveryLeft()
		t.Recovery = slices.DeleteFunc(slices.Clone(t.Recovery), func(rc store.RecoveryCode) bool { return hmac.Equal(rc.Tag, tag) })
		if legacy != "" {
			t.RecoveryHashes = slices.DeleteFunc(slices.Clone(t.RecoveryHashes), func(h string) bool { return h == legacy })
		}
		if t.RecoveryLeft() == n {
			return errCodeUsed
		}
		a.TOTP, left = &t, t.RecoveryLeft()
		return nil
	})
	switch {
	case errors.Is(err, errCodeUsed):
		return false, 0, nil
	case err != nil:
		return false, 0, fmt.Errorf("recovery code: %w", err)
	}
	return true, left, nil
}

// matchLegacy returns the hash among hashes (codes without a tag) that
// norm matches, or "": one argon2id per code, each inside the cap.
func (v *Verifier) matchLegacy(hashes []string, norm string) (string, error) {
	for _, h := range hashes {
		ok, err := v.check(h, norm)
		if err != nil {
			return "", fmt.Errorf("recovery code: %w", err)
		}
		if ok {
			return h, nil
		}
	}
	return "", nil
}

// randIntn returns a uniform random int in [0, n) for n <= 256.
func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
