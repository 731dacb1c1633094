package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultKeyFile is the name of the key file created in the data directory
// when no key URL is given.
const DefaultKeyFile = "kitewatch.key"

// maxKeyFileSize bounds how much of a key file is read.
const maxKeyFileSize = 1024

// ErrKeeperNotCompiled is returned by OpenKeeper for a KMS scheme whose keeper
// was not compiled into this binary.
var ErrKeeperNotCompiled = errors.New("key URL scheme not compiled into this binary")

// ErrInsecureKeyFile is returned by OpenKeeper when a key file may be read or
// written by users other than its owner.
var ErrInsecureKeyFile = errors.New("key file permissions are too open")

// OpenKeeper opens the key encryption key named by keyURL and returns it with
// its stable key id.
//
// An empty keyURL means the file kitewatch.key in dataDir: dataDir is created
// with mode 0700 if missing and the key file is created with a random key and
// mode 0600 if missing. file:///abs/path names an existing key file. Key files
// hold 32 raw bytes or their standard base64 encoding, and are refused (with
// an error matching ErrInsecureKeyFile that names the file and the chmod fix)
// when group or others have any permission on them. base64key://KEY is an
// in-memory key; errors never contain it.
//
// Cloud KMS schemes (awskms, gcpkms, azurekeyvault, hashivault) open a
// gocloud.dev/secrets keeper when the binary was built with the scheme's tag
// (kms_aws, kms_gcp, kms_azure, kms_vault; kms_all for all four) and return
// a *KMSKeeper; without the tag they return an error matching
// ErrKeeperNotCompiled naming the tag to use. KMS URLs holding credentials
// (user:password@) are refused: each SDK reads them from its environment.
// The caller should release a KMS keeper with CloseKeeper (or Keyring.Close).
//
// The id of a local key is derived from the key (see LocalKeeper.ID), so the
// same key keeps the same id wherever it is loaded from. The id of a KMS key
// is "<scheme>:<key name>" followed by the query parameters decryption
// depends on (see kmsKeyID), e.g. "awskms:alias/kitewatch" for
// awskms:///alias/kitewatch?region=eu-west-1.
func OpenKeeper(ctx context.Context, keyURL, dataDir string) (Keeper, string, error) {
	switch {
	case keyURL == "":
		if dataDir == "" {
			return nil, "", errors.New("open key: no --key-url and no data directory for the default key file")
		}
		k, err := openOrCreateKeyFile(filepath.Join(dataDir, DefaultKeyFile), dataDir)
		if err != nil {
			return nil, "", err
		}
		return k, k.ID(), nil
	case strings.HasPrefix(keyURL, "base64key://"):
		// Parse by hand: url.Parse errors would echo the key.
		k, err := keeperFromBase64(strings.TrimPrefix(keyURL, "base64key://"))
		if err != nil {
			return nil, "", err
		}
		return k, k.ID(), nil
	case strings.HasPrefix(keyURL, "file://"):
		u, err := url.Parse(keyURL)
		if err != nil {
			return nil, "", fmt.Errorf("parse key URL %q: %w", keyURL, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", fmt.Errorf("key URL %q: file URLs must be file:///absolute/path (no host)", keyURL)
		}
		if !filepath.IsAbs(u.Path) {
			return nil, "", fmt.Errorf("key URL %q: the key file path must be absolute", keyURL)
		}
		k, err := readKeyFile(u.Path)
		if err != nil {
			return nil, "", err
		}
		return k, k.ID(), nil
	}
	scheme, _, ok := strings.Cut(keyURL, "://")
	if !ok {
		return nil, "", errors.New("open key: the key URL has no scheme; use file:///path, base64key://... or a KMS URL")
	}
	if _, ok := kmsSchemes[scheme]; ok {
		return openKMS(ctx, scheme, keyURL)
	}
	// The scheme is printed, never the rest of the URL, which may hold a key.
	return nil, "", fmt.Errorf("open key: unknown key URL scheme %q; use file://, base64key://, awskms://, gcpkms://, azurekeyvault:// or hashivault://", scheme)
}

// keeperFromBase64 decodes a base64 key in any of the common alphabets.
func keeperFromBase64(s string) (*LocalKeeper, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				// Don't include the key in this error.
				return nil, fmt.Errorf("open key: base64key must decode to %d bytes, got %d", KeySize, len(key))
			}
			k, err := NewLocalKeeper(key)
			clear(key)
			return k, err
		}
	}
	// Don't include the key in this error.
	return nil, errors.New("open key: base64key is not valid base64")
}

// openOrCreateKeyFile reads the default key file, creating it and its
// directory first when missing.
func openOrCreateKeyFile(path, dataDir string) (*LocalKeeper, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
	}
	return readKeyFile(path)
}

// createKeyFile writes a new random key to path without ever leaving a
// partial file there: it writes a temporary file, syncs it and hard-links it
// into place, which fails rather than overwrites if another process won.
func createKeyFile(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	defer clear(key)
	enc := []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	defer clear(enc)

	tmp, err := os.CreateTemp(filepath.Dir(path), ".kitewatch.key.tmp*")
	if err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("create key file %s: set mode 0600: %w", path, err)
	}
	if _, err := tmp.Write(enc); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the new directory entry durable; best effort
		d.Close()
	}
	return nil
}

// readKeyFile checks a key file's permissions and loads its key.
func readKeyFile(path string) (*LocalKeeper, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open key file %s: it does not exist; create one with: (umask 077; head -c 32 /dev/urandom | base64 > %s): %w", path, path, err)
		}
		return nil, fmt.Errorf("open key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("refusing to use key file %s: mode %04o lets group or others read or write it; fix it with: chmod 600 %s: %w", path, perm, path, ErrInsecureKeyFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("read key file %s: too large to be a key", path)
	}
	if len(data) == KeySize {
		return NewLocalKeeper(data)
	}
	k, err := keeperFromBase64(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: it must hold %d raw bytes or their base64 encoding", path, KeySize)
	}
	return k, nil
}
