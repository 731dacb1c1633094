// Package kmstest provides in-memory fakes of the cloud KMS APIs that
// kitewatch's KMS keepers call, for tests that must never reach a real
// service: the HashiCorp Vault transit API and the AWS KMS JSON API. Both
// encrypt for real (AES-256-GCM under a random key per named key), so a
// ciphertext only decrypts with the key that produced it.
package kmstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// keySet holds named AES-256-GCM keys.
type keySet struct {
	mu   sync.Mutex
	keys map[string]cipher.AEAD
}

// set gives name a fresh random key, replacing any earlier one.
func (s *keySet) set(name string) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]cipher.AEAD{}
	}
	s.keys[name] = aead
}

var errNoKey = errors.New("encryption key not found")

func (s *keySet) seal(name string, plaintext, ad []byte) ([]byte, error) {
	s.mu.Lock()
	aead, ok := s.keys[name]
	s.mu.Unlock()
	if !ok {
		return nil, errNoKey
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

func (s *keySet) open(name string, ciphertext, ad []byte) ([]byte, error) {
	s.mu.Lock()
	aead, ok := s.keys[name]
	s.mu.Unlock()
	if !ok {
		return nil, errNoKey
	}
	if len(ciphertext) < aead.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	ns := aead.NonceSize()
	return aead.Open(nil, ciphertext[:ns], ciphertext[ns:], ad)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Vault is a fake HashiCorp Vault server with transit engines: it answers
// PUT or POST /v1/<mount>/encrypt/<key> ({"plaintext": base64} to
// {"data":{"ciphertext":"vault:v1:..."}}) and /v1/<mount>/decrypt/<key>
// ({"ciphertext": ...} to {"data":{"plaintext": base64}}), and refuses
// requests without the token.
type Vault struct {
	*httptest.Server
	// Token is the X-Vault-Token every request must carry.
	Token string

	keys     keySet
	requests atomic.Int64
	empty    atomic.Bool
	status   atomic.Int64
}

// NewVault starts a fake Vault server for the test's lifetime.
func NewVault(t testing.TB, token string) *Vault {
	t.Helper()
	v := &Vault{Token: token}
	v.Server = httptest.NewServer(http.HandlerFunc(v.serve))
	t.Cleanup(v.Close)
	return v
}

// SetKey creates the transit key mount/name, or replaces its key material
// (so earlier ciphertexts no longer decrypt).
func (v *Vault) SetKey(mount, name string) { v.keys.set(mount + "/" + name) }

// Requests returns how many requests the server has answered.
func (v *Vault) Requests() int64 { return v.requests.Load() }

// FailWith makes the server answer every request with this HTTP status
// (such as 503 while sealed); 0 makes it answer normally again.
func (v *Vault) FailWith(status int) { v.status.Store(int64(status)) }

// AnswerEmpty makes the server answer 204 No Content to every request, as a
// misbehaving proxy might.
func (v *Vault) AnswerEmpty(on bool) { v.empty.Store(on) }

func (v *Vault) fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string][]string{"errors": {msg}})
}

func (v *Vault) serve(w http.ResponseWriter, r *http.Request) {
	v.requests.Add(1)
	if v.empty.Load() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if st := v.status.Load(); st != 0 {
		v.fail(w, int(st), "Vault is sealed")
		return
	}
	if r.Header.Get("X-Vault-Token") != v.Token {
		v.fail(w, http.StatusForbidden, "permission denied")
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		v.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
		return
	}
	// /v1/<mount>/<op>/<key>; mounts and keys here have no slashes.
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
	if len(parts) != 3 || (parts[1] != "encrypt" && parts[1] != "decrypt") {
		v.fail(w, http.StatusNotFound, "no handler for route")
		return
	}
	name := parts[0] + "/" + parts[2]
	var body struct {
		Plaintext  string `json:"plaintext"`
		Ciphertext string `json:"ciphertext"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		v.fail(w, http.StatusBadRequest, "failed to parse JSON input")
		return
	}
	switch parts[1] {
	case "encrypt":
		pt, err := base64.StdEncoding.DecodeString(body.Plaintext)
		if err != nil {
			v.fail(w, http.StatusBadRequest, "failed to base64-decode plaintext")
			return
		}
		ct, err := v.keys.seal(name, pt, nil)
		if err != nil {
			v.fail(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"data": map[string]any{
			"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct), "key_version": 1}})
	case "decrypt":
		enc, ok := strings.CutPrefix(body.Ciphertext, "vault:v1:")
		ct, err := base64.StdEncoding.DecodeString(enc)
		if !ok || err != nil {
			v.fail(w, http.StatusBadRequest, "invalid ciphertext: no prefix")
			return
		}
		pt, err := v.keys.open(name, ct, nil)
		if err != nil {
			v.fail(w, http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"data": map[string]any{
			"plaintext": base64.StdEncoding.EncodeToString(pt)}})
	}
}

// AWSKMS is a fake AWS KMS endpoint speaking the JSON 1.1 protocol
// (X-Amz-Target: TrentService.Encrypt and TrentService.Decrypt). Like the
// real service, its ciphertext blobs name their key and are bound to the
// encryption context. Requests must be SigV4-signed with AccessKeyID.
type AWSKMS struct {
	*httptest.Server
	// AccessKeyID is the access key id the Authorization header must name.
	AccessKeyID string

	keys     keySet
	requests atomic.Int64
}

// NewAWSKMS starts a fake AWS KMS endpoint for the test's lifetime.
func NewAWSKMS(t testing.TB, accessKeyID string) *AWSKMS {
	t.Helper()
	k := &AWSKMS{AccessKeyID: accessKeyID}
	k.Server = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.Close)
	return k
}

// SetKey creates the key keyID (as used in Encrypt's KeyId, e.g.
// "alias/kitewatch"), or replaces its key material.
func (k *AWSKMS) SetKey(keyID string) { k.keys.set(keyID) }

// Requests returns how many requests the endpoint has answered.
func (k *AWSKMS) Requests() int64 { return k.requests.Load() }

const awsJSON = "application/x-amz-json-1.1"

func (k *AWSKMS) fail(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, awsJSON, map[string]string{"__type": typ, "message": msg})
}

// contextAD encodes an encryption context canonically.
func contextAD(ec map[string]string) []byte {
	names := make([]string, 0, len(ec))
	for n := range ec {
		names = append(names, n)
	}
	sort.Strings(names)
	var b []byte
	for _, n := range names {
		b = append(b, n...)
		b = append(b, 0)
		b = append(b, ec[n]...)
		b = append(b, 0)
	}
	return b
}

func (k *AWSKMS) serve(w http.ResponseWriter, r *http.Request) {
	k.requests.Add(1)
	if r.Method != http.MethodPost {
		k.fail(w, http.StatusBadRequest, "UnknownOperationException", "POST only")
		return
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+k.AccessKeyID+"/") {
		k.fail(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	var body struct {
		KeyId             string
		Plaintext         []byte
		CiphertextBlob    []byte
		EncryptionContext map[string]string
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		k.fail(w, http.StatusBadRequest, "SerializationException", "bad JSON")
		return
	}
	ad := contextAD(body.EncryptionContext)
	switch r.Header.Get("X-Amz-Target") {
	case "TrentService.Encrypt":
		ct, err := k.keys.seal(body.KeyId, body.Plaintext, ad)
		if err != nil {
			k.fail(w, http.StatusBadRequest, "NotFoundException", "Key '"+body.KeyId+"' does not exist")
			return
		}
		// The blob names its key: length byte, key id, sealed data.
		blob := append([]byte{byte(len(body.KeyId))}, body.KeyId...)
		blob = append(blob, ct...)
		writeJSON(w, http.StatusOK, awsJSON, map[string]any{"CiphertextBlob": blob, "KeyId": body.KeyId,
			"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	case "TrentService.Decrypt":
		b := body.CiphertextBlob
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			k.fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			return
		}
		keyID := string(b[1 : 1+int(b[0])])
		pt, err := k.keys.open(keyID, b[1+int(b[0]):], ad)
		if err != nil {
			k.fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			return
		}
		writeJSON(w, http.StatusOK, awsJSON, map[string]any{"Plaintext": pt, "KeyId": keyID,
			"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		k.fail(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}
