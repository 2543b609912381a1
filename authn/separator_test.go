package authn

import (
	"testing"
)

// TestMasterSeparatorInUsername: the upstream's login-master mode joins
// user and master user with a separator, so a user name holding it would
// make the upstream read part of the name as a master user ("eve%bob" +
// "%" + "proxy"). An account that has one (made before the separator was
// configured) is refused at login exactly like an unknown user: same
// decision, one argon2id evaluation. (authn/account refuses to create one.)
func TestMasterSeparatorInUsername(t *testing.T) {
	f := newFixture(t)
	const legacy = "eve%bob@example.com"
	f.account(t, legacy, "", false)
	np := f.appPassword(t, legacy, "old phone")
	f.account(t, alice, "", false)
	ok := f.appPassword(t, alice, "phone")

	f.v.MasterSeparators = []string{"%", "*"}
	if d := f.verifyOnce(t, attempt(legacy, np.Password)); d.Result != UnknownUser || d.AppPasswordID != "" {
		t.Errorf("Verify(%s) = %+v, want %s", legacy, d, UnknownUser)
	}
	if d := f.verifyOnce(t, attempt(alice, ok.Password)); d.Result != OK {
		t.Errorf("Verify(%s) = %+v, want OK", alice, d)
	}
	f.account(t, "bob.smith+tag@example.com", "", false)
}
