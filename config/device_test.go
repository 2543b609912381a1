package config

import (
	"strings"
	"testing"
)

func TestDevicePolicyKey(t *testing.T) {
	for _, p := range []string{"notify", "block", "off"} {
		c, err := Parse([]byte(base+lines(`[authn]`, `device_policy = "`+p+`"`)), "/etc/pg", nil)
		if err != nil || c.Authn.DevicePolicy != p {
			t.Errorf("device_policy %q: %v, %q", p, err, c.Authn.DevicePolicy)
		}
	}
	if c, err := Parse([]byte(base), "/etc/pg", nil); err != nil || c.Authn.DevicePolicy != "" {
		t.Errorf("default: %v, %q; want empty (authn applies notify)", err, c.Authn.DevicePolicy)
	}
	_, err := Parse([]byte(base+lines(`[authn]`, `device_policy = "sometimes"`)), "/etc/pg", nil)
	if err == nil || !strings.Contains(err.Error(), "authn.device_policy") || !strings.Contains(err.Error(), "sometimes") {
		t.Errorf("unknown policy: %v, want an error naming authn.device_policy", err)
	}
}
