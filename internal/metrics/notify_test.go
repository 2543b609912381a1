package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passgate/passgate/notify"
)

// Every notification event and outcome is its own series: the longest
// event name fits the label bound.
func TestNotifiedSeries(t *testing.T) {
	m := New("test")
	for _, ev := range notify.Events() {
		m.Notified(ev, notify.OutcomeMailSent)
	}
	m.Notified("device-drift", notify.OutcomeCollapsed)
	m.Notified("device-drift", notify.OutcomeCollapsed)
	rec := httptest.NewRecorder()
	m.Handler(&Ready{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, ev := range notify.Events() {
		if !strings.Contains(body, `passgate_notifications_total{event="`+ev+`",outcome="mail-sent"} 1`) {
			t.Errorf("no mail-sent series for %s", ev)
		}
	}
	if !strings.Contains(body, `passgate_notifications_total{event="device-drift",outcome="collapsed"} 2`) {
		t.Errorf("collapsed drift not counted:\n%s", body)
	}
}
