package authn

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/passgate/passgate/store"
)

// enrolRecovery gives user an authenticator with new recovery codes.
func enrolRecovery(t *testing.T, f *fixture, user string) []string {
	t.Helper()
	codes, kept, err := f.v.NewRecoveryCodes(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	err = f.st.UpdateAccount(context.Background(), user, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: []byte("sealed"), Recovery: kept}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

func TestNewRecoveryCodes(t *testing.T) {
	f := population(t)
	codes, kept, err := f.v.NewRecoveryCodes(context.Background(), "Bob@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	display := regexp.MustCompile(`^[` + Alphabet + `]{5}-[` + Alphabet + `]{5}$`)
	tags := map[string]bool{}
	for i, c := range codes {
		if !display.MatchString(c) {
			t.Errorf("code %q is not in display form", c)
		}
		if !strings.HasPrefix(kept[i].Hash, "$argon2id$") || strings.Contains(kept[i].Hash, c[:5]) || len(kept[i].Tag) != TagLen {
			t.Errorf("kept %d = %+v", i, kept[i])
		}
		tags[string(kept[i].Tag)] = true
	}
	if len(codes) != RecoveryCodes || len(tags) != RecoveryCodes {
		t.Errorf("%d codes, %d distinct tags", len(codes), len(tags))
	}
}

// TestUseRecoveryCodeOneHash is issue 9 item 4: a wrong recovery code
// costs no argon2id, a right one exactly one (counted by the Verifier, so
// inside its concurrency cap), and each code works once.
func TestUseRecoveryCodeOneHash(t *testing.T) {
	f := population(t)
	ctx := context.Background()
	codes := enrolRecovery(t, f, bob)
	use := func(code string) (bool, int, int64) {
		t.Helper()
		before := f.v.HashEvaluations()
		ok, left, err := f.v.UseRecoveryCode(ctx, bob, code)
		if err != nil {
			t.Fatalf("UseRecoveryCode(%q): %v", code, err)
		}
		return ok, left, f.v.HashEvaluations() - before
	}
	for _, wrong := range []string{"abcde-fghij", "short", "", codes[0] + "x"} {
		if ok, _, n := use(wrong); ok || n != 0 {
			t.Errorf("wrong code %q: accepted %v after %d argon2id, want refused after 0", wrong, ok, n)
		}
	}
	if ok, left, n := use(strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))); !ok || left != RecoveryCodes-1 || n != 1 {
		t.Errorf("right code: accepted %v, %d left, after %d argon2id; want accepted, %d left, after 1", ok, left, n, RecoveryCodes-1)
	}
	if ok, _, n := use(codes[3]); ok || n != 0 {
		t.Errorf("used code again: accepted %v after %d argon2id", ok, n)
	}
	if ok, _, _ := use(codes[3]); ok {
		t.Error("a code worked twice")
	}
	// Of concurrent uses of one code, one wins.
	var wins sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 8 {
		wins.Go(func() {
			ok, _, err := f.v.UseRecoveryCode(ctx, bob, codes[5])
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		})
	}
	wins.Wait()
	if accepted != 1 {
		t.Errorf("8 concurrent uses of one code: %d accepted, want 1", accepted)
	}
}

// TestUseRecoveryCodeWithoutTags: codes of enrolments made before tags
// existed still work once, each check counted inside the cap.
func TestUseRecoveryCodeWithoutTags(t *testing.T) {
	f := population(t)
	ctx := context.Background()
	codes := []string{"abcde-fghij", "kmnpq-rstuv", "wxyz2-34567"}
	var hashes []string
	for _, c := range codes {
		h, err := cheap.Hash([]byte(NormalizeSecret(c)))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	err := f.st.UpdateAccount(ctx, bob, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: []byte("sealed"), RecoveryHashes: hashes}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := f.v.HashEvaluations()
	ok, left, err := f.v.UseRecoveryCode(ctx, bob, codes[1])
	if err != nil || !ok || left != 2 {
		t.Fatalf("legacy code: %v, %d left, %v", ok, left, err)
	}
	if n := f.v.HashEvaluations() - before; n != 2 {
		t.Errorf("legacy code: %d argon2id evaluations counted, want 2 (the codes before it and itself)", n)
	}
	if ok, _, _ := f.v.UseRecoveryCode(ctx, bob, codes[1]); ok {
		t.Error("a legacy code worked twice")
	}
}
