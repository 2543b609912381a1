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
