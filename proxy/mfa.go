package proxy

import "strings"

// PortalPlaceholder stands for the portal's URL in an MFA message.
const PortalPlaceholder = "{portal_url}"

// DefaultMFAMessage is the MFA message when none is configured; without a
// portal URL, one that names none.
const (
	DefaultMFAMessage      = "Application password required: create one at " + PortalPlaceholder
	defaultMFAMessageNoURL = "Application password required: create one in the app-passwords portal"
)

// MFAText is a front-end's answer to a primary password refused because the
// account uses MFA (IMAP "NO [ALERT] text", SMTP "534 5.7.9 text"): message
// with PortalPlaceholder replaced by portalURL. An empty message is
// DefaultMFAMessage, or, without a portal URL, a text that names none.
func MFAText(message, portalURL string) string {
	switch {
	case message == "" && portalURL == "":
		return defaultMFAMessageNoURL
	case message == "":
		message = DefaultMFAMessage
	}
	return strings.ReplaceAll(message, PortalPlaceholder, portalURL)
}

// RelinkText is a front-end's answer to a login whose mailbox must be
// linked again in the portal (upstream.RelinkError: the provider refused
// the stored refresh token for good): IMAP "NO [ALERT] text", SMTP
// "535 5.7.8 text".
func RelinkText(portalURL string) string {
	if portalURL == "" {
		return "Your mailbox must be linked again: sign in to the app-passwords portal and choose Link again"
	}
	return "Your mailbox must be linked again: sign in to " + portalURL + " and choose Link again"
}

// DeviceRefusedText is a front-end's answer to a login refused because
// the app password was used from another device than the one it is bound
// to and its policy is block (authn.DeviceRefused): IMAP "NO [ALERT]
// text", SMTP "535 5.7.8 text". It names the portal, where the owner can
// accept the new device.
func DeviceRefusedText(portalURL string) string {
	if portalURL == "" {
		return "This app password is bound to another device: if this device is yours, accept it in the app-passwords portal"
	}
	return "This app password is bound to another device: if this device is yours, accept it at " + portalURL
}

// UpstreamRefusedText is the client's text for a login the upstream
// refused with an action for an admin (upstream.RefusedError.Action).
func UpstreamRefusedText(action string) string {
	return "Mail server refused the login: " + action
}
