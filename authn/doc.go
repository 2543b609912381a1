// Package authn decides mail logins: argon2id verifiers, app-password
// generation, MFA policy and scopes (Verifier), and in front of them the
// brute-force limits and tarpit, the verified-credential cache and the
// audit log (Guard). It does no I/O except through the store interfaces
// and the audit slog.Logger. It mints new credentials (HashPassword,
// MintAppPassword) but stores none: account changes are authn/account's.
//
// Implementation notes (invariants):
//   - A Verifier login runs exactly one argon2id evaluation, whatever its
//     outcome (except a store failure, which is answered as temporary):
//     unknown users, wrong secrets and disabled accounts cost the same.
//     The Guard runs none for an attempt it refuses (RateLimited) and none
//     for a cache hit; neither depends on the account's state.
//   - Account state (disabled, MFA, expiry, scopes) is revealed only after
//     the secret verified.
//   - Secrets never appear in errors or log lines.
package authn
