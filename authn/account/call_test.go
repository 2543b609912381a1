package account

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Every exported method is reachable through Call (a method with another
// shape would be missing from the control socket).
func TestCallReachesEveryMethod(t *testing.T) {
	typ := reflect.TypeFor[*Service]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if _, ok := callable()[name]; !ok && name != "Call" {
			t.Errorf("method %s cannot be called through Call", name)
		}
	}
	if _, ok := callable()["Call"]; ok {
		t.Error("Call can call itself")
	}
}

func TestCall(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	who := Actor{Door: DoorControl, Name: "ops"}
	call := func(op, args string) (string, error) {
		out, err := f.svc.Call(ctx, who, op, json.RawMessage(args))
		return string(out), err
	}
	if out, err := call("CreateUser", `[{"Username":"alice@example.com","MFA":true}]`); err != nil || out != "null" {
		t.Fatalf("CreateUser = %s, %v", out, err)
	}
	out, err := call("CreateAppPassword", `["alice@example.com","Phone",{"Scopes":["imap"]}]`)
	if err != nil {
		t.Fatal(err)
	}
	var np NewAppPassword
	if err := json.Unmarshal([]byte(out), &np); err != nil || np.Name != "Phone" || len(np.Scopes) != 1 || np.Password == "" {
		t.Fatalf("CreateAppPassword = %s (%v)", out, err)
	}
	if out, err := call("ListUsers", ``); err != nil || !strings.Contains(out, `"app_passwords":1`) {
		t.Errorf("ListUsers = %s, %v", out, err)
	}
	for _, tc := range []struct{ op, args, want string }{
		{"Frobnicate", `[]`, `no operation "Frobnicate"`},
		{"Call", `["SetMFA",[]]`, `no operation "Call"`},
		{"SetMFA", `["alice@example.com"]`, "takes 2 arguments, got 1"},
		{"SetMFA", `["alice@example.com","yes"]`, "argument 2"},
		{"SetMFA", `{"username":"alice@example.com"}`, "JSON array"},
		// The actor is the door's, never the caller's.
		{"CreateUser", `[{"Username":"bob@example.com","Actor":{"Door":"portal","Name":"root"}}]`, `unknown field "Actor"`},
		{"CreateAppPassword", `["alice@example.com","x",{"Actor":"portal:root"}]`, `unknown field "Actor"`},
		{"SetDisabled", `[{"Door":"portal","Name":"root"},"alice@example.com",true]`, "takes 2 arguments, got 3"},
		// Service errors come back as they are.
		{"SetMFA", `["ghost@example.com",true]`, `username: no account "ghost@example.com"`},
	} {
		if out, err := call(tc.op, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Call(%s, %s) = %s, %v; want an error with %q", tc.op, tc.args, out, err, tc.want)
		}
	}
	for _, r := range f.records(t, "alice@example.com") {
		if r.Actor != "control:ops" {
			t.Errorf("record %+v: actor is not the door's", r)
		}
	}
	if a := f.account(t, "alice@example.com"); a.Disabled {
		t.Error("a refused call changed the account")
	}
}
