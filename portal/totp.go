package portal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: what every authenticator app supports (RFC 6238 §4 with
// the RFC 4226 defaults).
const (
	totpPeriod = 30
	// totpSkew is how many steps before and after now a code may be from
	// (RFC 6238 §5.2 recommends at most one step of delay).
	totpSkew = 1
	// replayTTL keeps a used step long enough to outlive its validity.
	replayTTL = (2*totpSkew + 2) * totpPeriod * time.Second
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// seal encrypts plain for username with Key (AES-256-GCM); purpose and
// username are authenticated, so a sealed value cannot be moved to another
// account or use. The result is nonce || ciphertext.
func (s *Server) seal(purpose, username string, plain []byte) ([]byte, error) {
	return sealKey(s.Key).seal(purpose, username, plain)
}

// open reverses seal.
func (s *Server) open(purpose, username string, sealed []byte) ([]byte, error) {
	return sealKey(s.Key).open(purpose, username, sealed)
}

// sealKey is the portal's key, as seal and open use it (also outside a
// Server: MailboxLinks).
type sealKey []byte

func (k sealKey) seal(purpose, username string, plain []byte) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, []byte(purpose+"\x00"+username)), nil
}

func (k sealKey) open(purpose, username string, sealed []byte) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("open: sealed value too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(purpose+"\x00"+username))
	if err != nil {
		return nil, errors.New("open: sealed value does not open with this key")
	}
	return plain, nil
}

func (k sealKey) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("portal key: %w", err)
	}
	return cipher.NewGCM(block)
}

// codeResult is what checkTOTP decided.
type codeResult int

const (
	codeWrong codeResult = iota
	codeOK
	codeReplayed // right code, but its time step was already used
)

// checkTOTP checks a 6-digit code against secret (base32) at now, allowing
// totpSkew steps either way, and accepts each step of an account once,
// across instances (RFC 6238 §5.2: the verifier must not accept the second
// attempt of an OTP after a successful validation).
func (s *Server) checkTOTP(ctx context.Context, username, secret, code string) (codeResult, error) {
	step, ok, err := s.matchTOTP(secret, code)
	if err != nil || !ok {
		return codeWrong, err
	}
	fresh, err := s.useStep(ctx, username, step)
	if err != nil {
		return codeWrong, err
	}
	if !fresh {
		return codeReplayed, nil
	}
	return codeOK, nil
}

// matchTOTP returns the time step (now ± totpSkew) whose code code is, if
// any, without using it up.
func (s *Server) matchTOTP(secret, code string) (step int64, ok bool, err error) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != 6 {
		return 0, false, nil
	}
	now := s.now().Unix() / totpPeriod
	for _, d := range []int64{0, -1, 1} {
		step := now + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false, fmt.Errorf("totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true, nil
		}
	}
	return 0, false, nil
}

// useStep records that username used the TOTP step, across instances, and
// reports whether it was the first use.
func (s *Server) useStep(ctx context.Context, username string, step int64) (bool, error) {
	key := "portal/totp-used/" + username + "/" + strconv.FormatInt(step, 10)
	fresh, err := s.Store.AddKV(ctx, key, []byte{1}, replayTTL)
	if err != nil {
		return false, fmt.Errorf("totp replay guard: %w", err)
	}
	return fresh, nil
}

// newTOTPSecret returns a new 160-bit secret (RFC 4226 §4 R6), base32.
func (s *Server) newTOTPSecret(username string) (*otp.Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer(), AccountName: username,
		Period: totpPeriod, SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("new totp secret: %w", err)
	}
	return k, nil
}

// totpKey rebuilds the otpauth key of a base32 secret (for the QR code).
func (s *Server) totpKey(username, secret string) (*otp.Key, error) {
	raw, err := b32.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer(), AccountName: username,
		Period: totpPeriod, Secret: raw, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	return k, nil
}
