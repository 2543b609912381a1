package bolt

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// fill sets every field reachable from v to a non-zero value: each slice
// gets two elements, each pointer a value, so that a field added later is
// covered by the aliasing test below without editing it.
func fill(t *testing.T, v reflect.Value, depth int) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
		return
	case v.Type() == reflect.TypeFor[netip.Addr]():
		v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.7")))
		return
	case v.Type() == reflect.TypeFor[netip.Prefix]():
		v.Set(reflect.ValueOf(netip.MustParsePrefix("192.0.2.0/24")))
		return
	}
	if depth > 8 {
		t.Fatalf("fill: %s nests too deep", v.Type())
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), depth+1)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), depth+1)
		}
	case reflect.Map:
		t.Fatalf("fill: map %s: teach fill and the clone functions", v.Type())
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(3)
	default:
		t.Fatalf("fill: %s: unhandled kind %s", v.Type(), v.Kind())
	}
}

// shared reports the first slice or pointer of a that b points into too.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if s := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); s != "" {
					return s
				}
			}
		}
	case reflect.Pointer:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
		if !a.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if s := shared(a.Index(i), b.Index(i), path+"[]"); s != "" {
				return s
			}
		}
	}
	return ""
}

// The memo hands out deep copies: a caller that changes what it read
// (a portal handler editing an account) cannot change what the next
// reader gets, whatever fields the records grow.
func TestCloneIsDeep(t *testing.T) {
	var a store.Account
	fill(t, reflect.ValueOf(&a).Elem(), 0)
	if c := cloneAccount(a); !reflect.DeepEqual(c, a) {
		t.Errorf("cloneAccount changed the account:\n%+v\n%+v", c, a)
	} else if s := shared(reflect.ValueOf(a), reflect.ValueOf(c), "Account"); s != "" {
		t.Errorf("cloneAccount shares %s with the original", s)
	}
	var p store.AppPassword
	fill(t, reflect.ValueOf(&p).Elem(), 0)
	if c := cloneAppPassword(p); !reflect.DeepEqual(c, p) {
		t.Errorf("cloneAppPassword changed the app password:\n%+v\n%+v", c, p)
	} else if s := shared(reflect.ValueOf(p), reflect.ValueOf(c), "AppPassword"); s != "" {
		t.Errorf("cloneAppPassword shares %s with the original", s)
	}
}
