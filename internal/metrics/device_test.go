package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// A login that binds or drifts is one login in passgate_logins_total: the
// binding's own record counts as a device event, not as a second login. A
// refusal for drift is a login of its own.
func TestDeviceRecordsAreNotLogins(t *testing.T) {
	m := New("test")
	for _, res := range []string{string(authn.OK), authn.AuditDeviceFirstUse, string(authn.OK), authn.AuditDeviceDrift, string(authn.DeviceRefused)} {
		m.Audited(store.AuditRecord{Protocol: "imap", Mechanism: "LOGIN", Result: res})
	}
	rec := httptest.NewRecorder()
	m.Handler(&Ready{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`passgate_logins_total{mechanism="login",protocol="imap",result="ok"} 2`,
		`passgate_logins_total{mechanism="login",protocol="imap",result="device-refused"} 1`,
		`passgate_device_events_total{event="device-first-use"} 1`,
		`passgate_device_events_total{event="device-drift"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
	if strings.Contains(body, `result="device-drift"`) || strings.Contains(body, `result="device-first-use"`) {
		t.Errorf("a binding record counted as a login:\n%s", body)
	}
}
