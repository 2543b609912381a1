// Package authn decides mail logins: argon2id verifiers, app-password and
// recovery-code generation, MFA policy and scopes (Verifier), and in front
// of them the brute-force limits and tarpit, the verified-credential cache,
// the memory of known refusals and the audit log (Guard), for passwords
// and for the portal's second factors; with a Directory, the operator's
// directory verifies primary passwords and vouches for accounts (see
// Directory). It does no I/O except through the store interfaces, the
// directory.Directory and the audit slog.Logger. It mints new credentials
// (HashPassword, MintAppPassword) but stores none of its own accord:
// account changes are authn/account's, except the provisioning of a
// directory's accounts (Directory).
//
// Implementation notes (invariants):
//   - A Verifier login runs exactly one argon2id evaluation, whatever its
//     outcome (except a store failure, which is answered as temporary):
//     unknown users, wrong secrets and disabled accounts cost the same,
//     store reads included. With a Directory, a primary password costs
//     the directory's work instead (which is the same for unknown and
//     known users), and an app password is never sent to it. A recovery code costs at most one (found by
//     keyed tag), a wrong one none.
//   - The Guard counts every attempt in the limits before any hash
//     (increment first, then decide, atomically per counter), so parallel
//     attempts cannot race past a limit; it gives back what a success or
//     a repeat does not keep. It runs no argon2id for an attempt it
//     refuses (RateLimited), for a cache hit, for a repeat of a known
//     refusal in an unchanged account state, or for an attempt that waited
//     for an identical one (single flight); none of these depends on the
//     account's state.
//   - Account state (disabled, MFA, expiry, scopes) is revealed only after
//     the secret verified. While an account is blocked, only a secret that
//     is one of its app passwords (80 bits, not guessable) is verified.
//   - Secrets never appear in errors or log lines; caches and memories
//     keep keyed MACs of them only.
//   - First-use binding (device.go) is decided only after the secret
//     verified (or a cached verification was re-checked), costs no hash,
//     and a device refusal counts in the limits like a wrong secret.
package authn
