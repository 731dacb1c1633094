package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestOpenKeeperDefaultKeyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not enforced on Windows")
	}
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")

	k1, id1, err := OpenKeeper(ctx, "", dataDir)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	st, err := os.Stat(filepath.Join(dataDir, DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %04o, want 0700", dst.Mode().Perm())
	}
	entries, _ := os.ReadDir(dataDir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d entries, want only the key file", len(entries))
	}

	// Second start reads the same key: same id, and it opens what the first sealed.
	k2, id2, err := OpenKeeper(ctx, "", dataDir)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if id1 != id2 || !strings.HasPrefix(id1, "local:") {
		t.Fatalf("ids %q and %q, want equal local ids", id1, id2)
	}
	ct, err := k1.Encrypt(ctx, []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k2.Decrypt(ctx, ct); err != nil || string(pt) != "data key" {
		t.Fatalf("Decrypt after restart = %q, %v", pt, err)
	}

	// The same key as file:// and as base64key:// has the same id.
	_, id3, err := OpenKeeper(ctx, "file://"+filepath.Join(dataDir, DefaultKeyFile), "")
	if err != nil || id3 != id1 {
		t.Fatalf("file URL: id %q, %v; want %q", id3, err, id1)
	}
	raw, _ := os.ReadFile(filepath.Join(dataDir, DefaultKeyFile))
	_, id4, err := OpenKeeper(ctx, "base64key://"+strings.TrimSpace(string(raw)), "")
	if err != nil || id4 != id1 {
		t.Fatalf("base64key URL: id %q, %v; want %q", id4, err, id1)
	}
}

func TestOpenKeeperRefusesOpenPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not enforced on Windows")
	}
	ctx := context.Background()
	dataDir := t.TempDir()
	if _, _, err := OpenKeeper(ctx, "", dataDir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, DefaultKeyFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o644, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		for _, keyURL := range []string{"", "file://" + path} {
			_, _, err := OpenKeeper(ctx, keyURL, dataDir)
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("mode %04o, url %q: err = %v, want ErrInsecureKeyFile", mode, keyURL, err)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600 "+path) {
				t.Fatalf("error %q does not name the file and the chmod fix", msg)
			}
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenKeeper(ctx, "", dataDir); err != nil {
		t.Fatalf("mode 0400 refused: %v", err)
	}
}

func TestOpenKeeperKeyFileFormats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	rawURL := write("raw.key", key)
	b64URL := write("b64.key", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	_, idRaw, err := OpenKeeper(ctx, rawURL, "")
	if err != nil {
		t.Fatal(err)
	}
	_, idB64, err := OpenKeeper(ctx, b64URL, "")
	if err != nil || idB64 != idRaw {
		t.Fatalf("base64 file id %q, %v; want %q", idB64, err, idRaw)
	}
	for name, url := range map[string]string{
		"short":    write("short.key", []byte("abc")),
		"missing":  "file://" + filepath.Join(dir, "nope.key"),
		"relative": "file://rel/path.key",
	} {
		if _, _, err := OpenKeeper(ctx, url, ""); err == nil {
			t.Errorf("%s: OpenKeeper succeeded", name)
		}
	}
}

func TestOpenKeeperBase64KeyErrorsHideKey(t *testing.T) {
	ctx := context.Background()
	tests := map[string]string{
		"short":       base64.StdEncoding.EncodeToString([]byte("sixteen byte key")),
		"not base64":  "this-is-not%%base64-but-a-secret-SUPERSECRETVALUE",
		"long":        base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdefEXTRA")),
		"with spaces": "SUPERSECRET VALUE",
	}
	for name, key := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := OpenKeeper(ctx, "base64key://"+key, "")
			if err == nil {
				t.Fatal("OpenKeeper succeeded")
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error %q contains the key", err)
			}
		})
	}
	good := base64.URLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	if _, id, err := OpenKeeper(ctx, "base64key://"+good, ""); err != nil || id == "" {
		t.Fatalf("valid base64key: %q, %v", id, err)
	}
}

func TestOpenKeeperKMSNotCompiled(t *testing.T) {
	ctx := context.Background()
	for scheme, s := range kmsSchemes {
		if s.open != nil {
			continue // compiled in by a kms_* tag in this test binary
		}
		_, _, err := OpenKeeper(ctx, scheme+"://some/key?region=x", "")
		if !errors.Is(err, ErrKeeperNotCompiled) {
			t.Fatalf("%s: err = %v, want ErrKeeperNotCompiled", scheme, err)
		}
		want := "built without " + scheme + " support; rebuild with -tags " + s.tag
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not say %q", scheme, err, want)
		}
	}
	_, _, err := OpenKeeper(ctx, "weird://SECRETSTUFF", "")
	if err == nil || strings.Contains(err.Error(), "SECRETSTUFF") {
		t.Fatalf("unknown scheme: err = %v (must fail without echoing the URL)", err)
	}
}
