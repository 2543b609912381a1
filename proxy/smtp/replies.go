package smtp

import (
	"errors"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// Replies passgate itself gives. Replies from the upstream reach the client
// unchanged (see upstreamReply).
var (
	// RFC 4954 §6: MAIL before AUTH on a submission server.
	errAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	// RFC 4954 §6: bad credentials (also scope denied, disabled, expired...).
	errBadCredentials = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8},
		Message: "Authentication credentials invalid"}
	// RFC 4954 §6: temporary failure (store or upstream unavailable).
	errTempAuth = &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Temporary authentication failure, try again later"}
	errTooManyFailures = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed login attempts, closing connection"}
	// RFC 4954 §6 temporary failure: the Authenticator's rate limit
	// refused the attempt without verifying it.
	errRateLimited = &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed logins, try again later"}
	// The account has limits.max_sessions_per_user sessions open already:
	// the connection is closed (RFC 5321 §3.8), the client retries later.
	errSessionLimit = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Too many sessions open for this account, try again later"}
	// RFC 4954 §4: a mechanism passgate does not offer.
	errUnknownMechanism = &gosmtp.SMTPError{Code: 504, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4},
		Message: "Unsupported authentication mechanism"}
	// RFC 4616 §2: a PLAIN message is [authzid] NUL authcid NUL passwd;
	// RFC 4954 §4 answers an undecodable response 501 5.5.2.
	errMalformedPLAIN = &gosmtp.SMTPError{Code: 501, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
		Message: "Malformed PLAIN response"}
	// RFC 5321 §4.5.3.1.6: a text line of a message longer than passgate
	// reads (MaxLineLength, twice the RFC's 1000 octets).
	errLineTooLong = &gosmtp.SMTPError{Code: 500, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
		Message: "Line too long, message not accepted"}
	// RFC 6409 §6.1: the submission server may refuse a sender the user
	// does not own.
	errSenderNotOwned = &gosmtp.SMTPError{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: "Sender address not owned by the authenticated user"}
	errSenderLookup = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message: "Temporary failure checking the sender, try again later"}
	errUpstreamFailed = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message: "Upstream failed, message not accepted"}
	errAborted = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message: "Message transfer aborted, message not accepted"}
	// A path passgate cannot write upstream as the client meant it (RFC
	// 3463 X.1.7 bad sender, X.1.3 bad destination address syntax).
	errBadSender = &gosmtp.SMTPError{Code: 501, EnhancedCode: gosmtp.EnhancedCode{5, 1, 7},
		Message: "Bad sender address syntax"}
	errBadRecipient = &gosmtp.SMTPError{Code: 501, EnhancedCode: gosmtp.EnhancedCode{5, 1, 3},
		Message: "Bad recipient address syntax"}
)

// errMFA is the RFC 4954 §6 "534 5.7.9 Authentication mechanism is too weak"
// reply, used for a primary password where an app password is required.
func errMFA(msg string) error {
	return &gosmtp.SMTPError{Code: 534, EnhancedCode: gosmtp.EnhancedCode{5, 7, 9}, Message: msg}
}

// errDeviceRefused is RFC 4954 §6's 535 5.7.8 (the credentials are
// refused) with msg naming the portal where the owner can accept the new
// device.
func errDeviceRefused(msg string) error { return errUpstreamRefused(msg) }

// errUpstreamRefused is RFC 4954 §6's 535 5.7.8 with msg, cut to fit one
// reply line (RFC 5321 §4.5.3.1.5: 512 octets).
func errUpstreamRefused(msg string) error {
	msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	if len(msg) > 480 {
		msg = msg[:477] + "..."
	}
	return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: msg}
}

// errParamUnsupported is the RFC 5321 §4.2.2 / RFC 1869 reply to a MAIL or
// RCPT parameter that the upstream does not implement.
func errParamUnsupported(param string) error {
	return &gosmtp.SMTPError{Code: 555, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4},
		Message: param + " not supported by the upstream server"}
}

// asSMTPError reports whether err is a protocol reply (as opposed to an I/O
// failure) and returns it.
func asSMTPError(err error) (*gosmtp.SMTPError, bool) {
	var se *gosmtp.SMTPError
	ok := errors.As(err, &se)
	return se, ok
}

// acceptedReply turns the upstream's 250 reply to the end of DATA into the
// reply for the client, so that its text (often a queue id) goes through.
// go-smtp's server writes the code, enhanced code and text of a returned
// *SMTPError whatever the code, which is how a 250 with our own text is
// written.
func acceptedReply(status string) error {
	ec := gosmtp.EnhancedCode{2, 0, 0}
	msg := status
	if code, rest, ok := strings.Cut(status, " "); ok {
		if parsed, ok := parseEnhancedCode(code); ok && parsed[0] == 2 {
			ec, msg = parsed, rest
		}
	}
	if msg == "" {
		msg = "OK"
	}
	return &gosmtp.SMTPError{Code: 250, EnhancedCode: ec, Message: msg}
}

// parseEnhancedCode parses "x.y.z" (RFC 3463).
func parseEnhancedCode(s string) (gosmtp.EnhancedCode, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCode{}, false
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return gosmtp.EnhancedCode{}, false
		}
		ec[i] = n
	}
	return ec, true
}
