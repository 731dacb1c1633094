package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"sort"
	"strings"
)

// ErrKeeperUnavailable is matched by keeper errors that say nothing about the
// ciphertext: the key service could not be reached, timed out, throttled the
// call or failed internally. The keyring passes such errors through instead
// of reporting the record undecryptable (ErrUndecryptable) or the key wrong
// (ErrWrongKey); startup still fails on them.
var ErrKeeperUnavailable = errors.New("key service unavailable")

// unavailableChecks recognise KMS client errors that mean the service, not
// the ciphertext, failed. The kms_* build-tagged files add SDK-specific ones
// (gocloud error codes, Vault status codes).
var unavailableChecks = []func(error) bool{
	func(err error) bool {
		var ne net.Error // connection refused, DNS, timeouts; *url.Error is one
		return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	},
}

func keeperUnavailable(err error) bool {
	for _, f := range unavailableChecks {
		if f(err) {
			return true
		}
	}
	return false
}

// kmsDriver is what a compiled-in cloud KMS keeper provides: the methods of
// *gocloud.dev/secrets.Keeper. It is declared here, without importing
// gocloud, so that the default build links no cloud SDK.
type kmsDriver interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
	Close() error
}

// kmsOpener opens the keeper named by a parsed, validated key URL.
type kmsOpener func(ctx context.Context, u *url.URL) (kmsDriver, error)

// kmsScheme describes one cloud KMS key URL scheme.
type kmsScheme struct {
	// tag is the build tag that compiles the scheme in.
	tag string
	// form is the URL form, for error messages.
	form string
	// validate checks the URL's shape before any SDK is involved, so a
	// malformed URL fails without loading credentials or dialing out.
	validate func(u *url.URL) error
	// idParam reports whether a query parameter takes part in the key id:
	// only parameters without which the ciphertext cannot be decrypted do
	// (an encryption context, additional authenticated data, an algorithm),
	// never ones that only say how to reach the key (region, endpoint,
	// profile...).
	idParam func(name string) bool
	// open is set by the build-tagged file that compiles the scheme in.
	open kmsOpener
}

// kmsSchemes holds every cloud KMS scheme kitewatch knows. The kms_* build
// tag files fill in open (see registerKMS); a scheme without it answers
// ErrKeeperNotCompiled.
var kmsSchemes = map[string]*kmsScheme{
	"awskms": {
		tag:      "kms_aws",
		form:     "awskms:///<key id, alias/name or ARN>?region=<region>",
		validate: validateKeyPath,
		idParam:  func(name string) bool { return strings.HasPrefix(name, "context_") },
	},
	"gcpkms": {
		tag:      "kms_gcp",
		form:     "gcpkms://projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>",
		validate: validateGCPKey,
		idParam:  func(name string) bool { return name == "additional_authenticated_data" },
	},
	"azurekeyvault": {
		tag:      "kms_azure",
		form:     "azurekeyvault://<vault>.vault.azure.net/keys/<key>[/<version>]",
		validate: validateAzureKey,
		idParam:  func(name string) bool { return name == "algorithm" },
	},
	"hashivault": {
		tag:      "kms_vault",
		form:     "hashivault://<transit key name>[?engine=<transit mount>]",
		validate: validateKeyPath,
		// The engine (the transit mount) is part of the key's identity; it
		// is put into the id's path by kmsKeyID rather than as a parameter.
		idParam: func(string) bool { return false },
	},
}

// registerKMS compiles a cloud KMS scheme in. It is called from the init
// functions of the kms_* build-tagged files.
func registerKMS(scheme string, open kmsOpener) {
	s, ok := kmsSchemes[scheme]
	if !ok {
		panic("secrets: registerKMS of unknown scheme " + scheme)
	}
	s.open = open
}

// openKMS opens a cloud KMS keeper for keyURL, whose scheme is in
// kmsSchemes. Errors name the scheme and never the whole URL.
func openKMS(ctx context.Context, scheme, keyURL string) (Keeper, string, error) {
	s := kmsSchemes[scheme]
	if s.open == nil {
		return nil, "", fmt.Errorf("open key: this binary was built without %s support; rebuild with -tags %s: %w", scheme, s.tag, ErrKeeperNotCompiled)
	}
	u, err := url.Parse(keyURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return nil, "", fmt.Errorf("open key: malformed %s key URL (want %s): %v", scheme, s.form, err)
	}
	if u.User != nil {
		return nil, "", fmt.Errorf("open key: %s key URLs must not hold credentials (user:password@); the %s keeper reads them from its environment", scheme, scheme)
	}
	if u.Opaque != "" || u.Fragment != "" {
		return nil, "", fmt.Errorf("open key: malformed %s key URL (want %s)", scheme, s.form)
	}
	if err := s.validate(u); err != nil {
		return nil, "", fmt.Errorf("open key: malformed %s key URL (want %s): %v", scheme, s.form, err)
	}
	id := kmsKeyID(scheme, u, s.idParam)
	d, err := s.open(ctx, u)
	if err != nil {
		return nil, "", fmt.Errorf("open key %s: %w", id, err)
	}
	return &KMSKeeper{scheme: scheme, id: id, d: d}, id, nil
}

// kmsKeyID derives the stable id of a KMS key from its URL: the scheme, the
// key's name (URL host and path) and the query parameters that decryption
// depends on, sorted. Parameters that only locate the service are left out,
// so the same key reached through another endpoint keeps its id. Credentials
// are never in key URLs (openKMS refuses them). An id longer than a record
// can hold is replaced by "<scheme>:sha256:" and 32 hex digits of its hash.
func kmsKeyID(scheme string, u *url.URL, idParam func(string) bool) string {
	key := strings.TrimPrefix(path.Join(u.Host, u.Path), "/")
	if scheme == "hashivault" {
		engine := u.Query().Get("engine")
		if engine == "" {
			engine = "transit"
		}
		key = strings.Trim(engine, "/") + "/" + key
	}
	id := scheme + ":" + key
	q := u.Query()
	var names []string
	for name := range q {
		if idParam(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for i, name := range names {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		vals := append([]string(nil), q[name]...)
		sort.Strings(vals)
		for j, v := range vals {
			if j > 0 {
				sep = "&"
			}
			id += sep + url.QueryEscape(name) + "=" + url.QueryEscape(v)
		}
	}
	if len(id) > maxKEKIDLen {
		sum := sha256.Sum256([]byte(id))
		id = scheme + ":sha256:" + hex.EncodeToString(sum[:16])
	}
	return id
}

// validateKeyPath requires a non-empty key name in the URL's host or path.
func validateKeyPath(u *url.URL) error {
	if strings.Trim(path.Join(u.Host, u.Path), "/") == "" {
		return errors.New("no key name")
	}
	return nil
}

// validateGCPKey requires a full Cloud KMS key resource name.
func validateGCPKey(u *url.URL) error {
	parts := strings.Split(strings.Trim(path.Join(u.Host, u.Path), "/"), "/")
	if len(parts) != 8 || parts[0] != "projects" || parts[2] != "locations" || parts[4] != "keyRings" || parts[6] != "cryptoKeys" {
		return errors.New("not a key resource name")
	}
	for _, p := range parts {
		if p == "" {
			return errors.New("empty part in the key resource name")
		}
	}
	return nil
}

// validateAzureKey requires a vault host and a /keys/<name>[/<version>] path.
func validateAzureKey(u *url.URL) error {
	if u.Host == "" || !strings.Contains(u.Host, ".") {
		return errors.New("no key vault host name")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return errors.New("the path must be /keys/<key name> or /keys/<key name>/<version>")
	}
	return nil
}

// KMSKeeper adapts a cloud KMS keeper (a gocloud.dev/secrets keeper compiled
// in with a kms_* build tag) to Keeper. Its errors name the scheme and the
// operation; they come from the KMS client and never hold the plaintext.
// Close releases the client; call it when the keeper is no longer used.
type KMSKeeper struct {
	scheme string
	id     string
	d      kmsDriver
}

// ID returns the keeper's key id (see OpenKeeper).
func (k *KMSKeeper) ID() string { return k.id }

// Encrypt encrypts plaintext with the KMS key.
func (k *KMSKeeper) Encrypt(ctx context.Context, plaintext []byte) (ct []byte, err error) {
	defer k.recoverPanic("encrypt", &err)
	ct, err = k.d.Encrypt(ctx, plaintext)
	if err != nil {
		return nil, k.wrap("encrypt", err)
	}
	if len(ct) == 0 {
		return nil, fmt.Errorf("encrypt with %s: the KMS returned an empty ciphertext", k.scheme)
	}
	return ct, nil
}

// Decrypt decrypts a ciphertext produced by Encrypt with the same KMS key.
func (k *KMSKeeper) Decrypt(ctx context.Context, ciphertext []byte) (pt []byte, err error) {
	defer k.recoverPanic("decrypt", &err)
	pt, err = k.d.Decrypt(ctx, ciphertext)
	if err != nil {
		return nil, k.wrap("decrypt", err)
	}
	return pt, nil
}

// wrap names the scheme and operation, and marks errors of an unavailable
// service with ErrKeeperUnavailable.
func (k *KMSKeeper) wrap(op string, err error) error {
	if keeperUnavailable(err) {
		return fmt.Errorf("%s with %s: %w: %w", op, k.scheme, ErrKeeperUnavailable, err)
	}
	return fmt.Errorf("%s with %s: %w", op, k.scheme, err)
}

// recoverPanic turns a panic in a KMS client (some panic on an unexpected
// response shape) into an error for that one call.
func (k *KMSKeeper) recoverPanic(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s with %s: unexpected response from the KMS", op, k.scheme)
	}
}

// Close releases the KMS client.
func (k *KMSKeeper) Close() error {
	if err := k.d.Close(); err != nil {
		return fmt.Errorf("close %s keeper: %w", k.scheme, err)
	}
	return nil
}

// CloseKeeper closes k if it holds resources (it implements io.Closer, as
// KMS keepers do); local keepers need no closing. It is safe on nil.
func CloseKeeper(k Keeper) error {
	if c, ok := k.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
