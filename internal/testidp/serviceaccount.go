package testidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
)

// NewServiceAccount registers a service account allowed domain-wide
// delegation for every known user and returns its JSON key file, in the
// form Google's console downloads (type, client_email, client_id,
// private_key_id, private_key, token_uri pointing at this IdP). Tokens
// issued to it have azp = clientID.
func (p *IdP) NewServiceAccount(t testing.TB, email, clientID string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testidp: service account key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testidp: service account key: %v", err)
	}
	keyID := "sa-" + rand.Text()[:12]
	p.mu.Lock()
	p.accounts[email] = &serviceAccount{clientID: clientID, keyID: keyID, key: &key.PublicKey}
	p.mu.Unlock()
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "passgate-test",
		"private_key_id": keyID,
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      clientID,
		"auth_uri":       p.AuthURL(),
		"token_uri":      p.TokenURL(),
	})
	if err != nil {
		t.Fatalf("testidp: service account file: %v", err)
	}
	return data
}
