package authn

import (
	"context"
	"strings"
	"testing"
)

// TestMasterSeparatorInUsername: the upstream's login-master mode joins
// user and master user with a separator, so a user name holding it would
// make the upstream read part of the name as a master user ("eve%bob" +
// "%" + "proxy"). No account may be created with one, and an account that
// has one (made before the separator was configured) is refused at login
// exactly like an unknown user: same decision, one argon2id evaluation.
func TestMasterSeparatorInUsername(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const legacy = "eve%bob@example.com"
	f.account(t, legacy, "", false)
	np := f.appPassword(t, legacy, "old phone")
	f.account(t, alice, "", false)
	ok := f.appPassword(t, alice, "phone")

	f.v.MasterSeparators = []string{"%", "*"}
	for _, name := range []string{"mallory%proxy@example.com", "%@example.com"} {
		err := f.v.CreateAccount(ctx, name, "", false)
		if err == nil || !strings.HasPrefix(err.Error(), "username: ") || !strings.Contains(err.Error(), `"%"`) {
			t.Errorf("CreateAccount(%q) = %v, want an error naming the username and the separator", name, err)
		}
	}
	if _, err := f.st.GetAccount(ctx, "mallory%proxy@example.com"); err == nil {
		t.Error("the account was stored")
	}
	if d := f.verifyOnce(t, attempt(legacy, np.Password)); d.Result != UnknownUser || d.AppPasswordID != "" {
		t.Errorf("Verify(%s) = %+v, want %s", legacy, d, UnknownUser)
	}
	if d := f.verifyOnce(t, attempt(alice, ok.Password)); d.Result != OK {
		t.Errorf("Verify(%s) = %+v, want OK", alice, d)
	}
	f.account(t, "bob.smith+tag@example.com", "", false)
}
