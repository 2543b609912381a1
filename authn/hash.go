package authn

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultParams is the OWASP minimum recommendation for argon2id
// (19 MiB, 2 passes, 1 lane).
var DefaultParams = Params{MemoryKiB: 19456, Time: 2, Threads: 1}

// Bounds on parameters, whether configured or parsed from a stored PHC
// string, so that a hostile or corrupt hash cannot make us allocate or spin
// without limit.
const (
	MaxMemoryKiB = 1 << 20 // 1 GiB
	MaxTime      = 32
	MaxThreads   = 64

	saltLen              = 16
	keyLen               = 32
	minSaltLen, maxSalt  = 8, 64
	minKeyLen, maxKeyLen = 16, 64
)

// ErrMalformedHash is returned (wrapped) for a PHC string that is not a
// well-formed argon2id hash within the accepted bounds.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// Validate reports whether p is within the accepted bounds.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("argon2id threads %d out of range 1..%d", p.Threads, MaxThreads)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, MaxTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), MaxMemoryKiB)
	}
	return nil
}

// Hash returns the argon2id PHC string of secret with a fresh 16-byte salt
// and a 32-byte key:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
func (p Params) Hash(secret []byte) (string, error) {
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash: salt: %w", err)
	}
	end := hashMemory.begin()
	key := argon2.IDKey(secret, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	end()
	return formatPHC(p, salt, key), nil
}

func formatPHC(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyHash reports whether secret matches the argon2id PHC string phc,
// using the parameters recorded in phc (so hashes made with older parameters
// keep working). The comparison is constant-time. The error, for a malformed
// phc, names neither the secret nor the hash.
func VerifyHash(phc string, secret []byte) (bool, error) {
	h, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	end := hashMemory.begin()
	key := argon2.IDKey(secret, h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	end()
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

type phc struct {
	params    Params
	salt, key []byte
}

// parsePHC parses $argon2id$v=19$m=M,t=T,p=P$salt$key strictly.
func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return h, fmt.Errorf("%w: algorithm is not argon2id", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}
	var err error
	if h.params, err = parseParams(parts[3]); err != nil {
		return h, err
	}
	b64 := base64.RawStdEncoding.Strict()
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < minSaltLen || len(h.salt) > maxSalt {
		return h, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return h, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	return h, nil
}

// parseParams parses "m=M,t=T,p=P" (in that order, as the PHC string format
// for argon2 specifies) and checks the bounds.
func parseParams(s string) (Params, error) {
	var p Params
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return p, fmt.Errorf("%w: want m=,t=,p= parameters", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return p, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, strings.TrimSuffix(name, "="))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, strings.TrimSuffix(name, "="))
		}
		vals[i] = n
	}
	if vals[2] > MaxThreads {
		return p, fmt.Errorf("%w: argon2id threads %d out of range 1..%d", ErrMalformedHash, vals[2], MaxThreads)
	}
	p = Params{MemoryKiB: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return p, nil
}
