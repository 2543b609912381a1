// Package authn decides mail logins: argon2id verifiers, app-password
// generation, MFA policy and scopes. It does no I/O except through a
// store.Store.
//
// Implementation notes (invariants):
//   - A login runs exactly one argon2id evaluation, whatever its outcome
//     (except a store failure, which is answered as temporary): unknown users,
//     wrong secrets and disabled accounts cost the same.
//   - Account state (disabled, MFA, expiry, scopes) is revealed only after
//     the secret verified.
//   - Secrets never appear in errors or log lines.
package authn
