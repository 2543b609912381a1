// Package portal is passgate's self-service web portal: users sign in with
// their primary password and a TOTP code (RFC 6238), or with the
// organisation's OpenID Connect provider (oidc.go), enrol an authenticator,
// link their mailbox for the OAuth 2.0 upstream login (link.go),
// create, download and revoke app passwords, see the device each was first
// used from and its sign-ins from other devices (accepting a new device,
// setting its policy: device.go), and change their password;
// admins list users, delete all app passwords of selected users, require or
// reset MFA and disable accounts. It also answers the mail clients'
// autoconfiguration requests (Thunderbird autoconfig, Outlook Autodiscover).
//
//	s := &portal.Server{Store: db, Auth: guard, Verifier: v, Key: key,
//		BaseURL: "https://mail.example.org", Mail: portal.MailSettings{...},
//		ConnLimit: &proxy.ConnLimiter{}}
//	s.HTTPServer(tlsConfig).ServeTLS(s.Listener(ln), "", "")
//
// Implementation notes (invariants every change must keep):
//
//   - Sessions live in the store's KV (several instances share them) under
//     the SHA-256 of the cookie value, never the value itself. Every request
//     re-reads the account: a disabled account, a changed primary password or
//     a reset authenticator takes effect on the next click.
//   - The admin pages and actions need the admin role and an enrolled
//     authenticator (needAdmin, the one gate): an admin without one is sent
//     to set it up, whatever the account's MFA setting.
//   - A redirect goes only to a path of the portal (redirect); a target
//     from a form is rebuilt from a known page, never echoed (adminBack).
//     The one exception, toProvider, sends the browser to the configured
//     provider's authorization endpoint, built from the configuration.
//   - Every state change is a POST behind net/http.CrossOriginProtection;
//     GET handlers change nothing but the session's own bookkeeping. The
//     authorization code flows' GETs are that: starting one writes a
//     pre-session (flow.go, bounded per address), and the provider's
//     callback is bound to it by the state and the browser's cookie.
//   - An OIDC sign-in counts as the second factor only when the
//     configuration requires, and the ID token shows, multi-factor
//     authentication at the provider (session.IdPMFA); otherwise the
//     account's own TOTP policy follows, as after a password.
//   - Secrets (passwords, app passwords, TOTP secrets, recovery codes,
//     session and download tokens) never appear in a URL, a log line or an
//     error; pages that show one are sent with Cache-Control: no-store (every
//     dynamic page is).
//   - The TOTP secret and the mailbox link's refresh token are stored
//     sealed with Key (AES-256-GCM, purpose and username as additional
//     data); a TOTP time step is accepted once per account
//     (RFC 6238 §5.2), across instances, through KV.AddKV.
//   - Every password goes through Auth and every second factor (TOTP or
//     recovery code) through the SecondFactorGuard (one authn.Guard in
//     passgate serve, shared with the mail logins): each attempt is counted
//     in the brute-force limits before it is compared, and audited. Nothing
//     about the limits lives in the session (signing in again resets
//     nothing). Replacing an authenticator takes the password and the
//     current second factor.
//   - No inline script or style: the Content-Security-Policy forbids it.
package portal
