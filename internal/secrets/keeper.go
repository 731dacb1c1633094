package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size in bytes of local key encryption keys and of data keys.
const KeySize = 32

// Keeper encrypts and decrypts small values (data keys) with a key encryption
// key. It has the shape of gocloud.dev/secrets.Keeper so that cloud KMS
// keepers fit behind it.
type Keeper interface {
	// Encrypt encrypts plaintext. The result includes everything Decrypt needs
	// apart from the key.
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	// Decrypt decrypts a ciphertext produced by Encrypt with the same key. It
	// fails if the ciphertext was produced with another key or was modified.
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// LocalKeeper is a Keeper holding a 32-byte AES-256-GCM key in memory. Its
// ciphertexts are nonce (12 bytes) followed by the sealed plaintext and tag.
type LocalKeeper struct {
	aead cipher.AEAD
	id   string
}

// NewLocalKeeper returns a keeper for a 32-byte key. The key is copied into
// the cipher; the caller may clear its slice afterwards. The error never
// contains the key.
func NewLocalKeeper(key []byte) (*LocalKeeper, error) {
	if len(key) != KeySize {
		// Don't include the key in this error.
		return nil, fmt.Errorf("local key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create AES-GCM: %w", err)
	}
	return &LocalKeeper{aead: aead, id: localKeyID(key)}, nil
}

// localKeyID derives a stable, non-reversible id from a local key: the same
// key always gets the same id, whether it comes from a file or a base64key URL.
func localKeyID(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("kitewatch key id v1"))
	return "local:" + hex.EncodeToString(mac.Sum(nil)[:8])
}

// ID returns the keeper's stable key id, "local:" followed by 16 hex digits
// derived from the key with HMAC-SHA-256.
func (k *LocalKeeper) ID() string { return k.id }

// Encrypt seals plaintext with a fresh random nonce.
func (k *LocalKeeper) Encrypt(_ context.Context, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("read random nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// errLocalDecrypt is returned for every local decryption failure so that the
// cause (short input, wrong key, tampering) does not leak.
var errLocalDecrypt = errors.New("local keeper: message authentication failed")

// Decrypt opens a ciphertext produced by Encrypt with the same key.
func (k *LocalKeeper) Decrypt(_ context.Context, ciphertext []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(ciphertext) < ns+k.aead.Overhead() {
		return nil, errLocalDecrypt
	}
	pt, err := k.aead.Open(nil, ciphertext[:ns], ciphertext[ns:], nil)
	if err != nil {
		return nil, errLocalDecrypt
	}
	return pt, nil
}
