package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// recordVersion is the first byte of every sealed record.
const recordVersion = 1

const (
	nonceSize       = 12
	tagSize         = 16
	maxKEKIDLen     = 255
	maxWrappedLen   = 1<<16 - 1
	checkValueLabel = "kcv1"
)

// checkPlaintext is what a key-check value encrypts.
var checkPlaintext = []byte("kitewatch key check v1")

// ErrUndecryptable is matched (with errors.Is) by every error from Open and
// Rewrap caused by the record itself: malformed, sealed with an unknown key,
// tampered with, or opened with the wrong associated data. Callers treat the
// record as lost and never fall back to anything else.
var ErrUndecryptable = errors.New("secret cannot be decrypted")

// ErrWrongKey is returned by VerifyCheckValue when the stored key-check value
// was not produced by a key in the keyring.
var ErrWrongKey = errors.New("key encryption key does not match the key-check value")

// Reasons carried by UndecryptableError.
const (
	ReasonMalformed  = "malformed"   // the record cannot be parsed
	ReasonUnknownKEK = "unknown_kek" // no keeper in the keyring has the record's key id
	ReasonUnwrap     = "unwrap"      // the keeper failed to unwrap the data key
	ReasonAuth       = "auth"        // wrong associated data or modified ciphertext
)

// UndecryptableError says why a record could not be opened. It matches
// ErrUndecryptable and never contains key material or plaintext.
type UndecryptableError struct {
	Reason string // one of the Reason constants
	KEKID  string // the record's key id, when it could be parsed
	Err    error  // the underlying keeper error for ReasonUnwrap, else nil
}

func (e *UndecryptableError) Error() string {
	var b strings.Builder
	b.WriteString("secret cannot be decrypted: ")
	switch e.Reason {
	case ReasonMalformed:
		b.WriteString("malformed record")
	case ReasonUnknownKEK:
		fmt.Fprintf(&b, "sealed with key %q, which is not configured", e.KEKID)
	case ReasonUnwrap:
		fmt.Fprintf(&b, "key %q failed to unwrap the data key", e.KEKID)
	case ReasonAuth:
		b.WriteString("authentication failed (wrong associated data or modified record)")
	default:
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUndecryptable) true.
func (e *UndecryptableError) Is(target error) bool { return target == ErrUndecryptable }

// Unwrap returns the keeper error, if any.
func (e *UndecryptableError) Unwrap() error { return e.Err }

// NamedKeeper is a keeper with its key id, as returned by OpenKeeper.
type NamedKeeper struct {
	ID     string
	Keeper Keeper
}

// Keyring seals records with a primary key encryption key and opens records
// sealed with the primary or any older key. It is safe for concurrent use.
type Keyring struct {
	primary NamedKeeper
	byID    map[string]Keeper
}

// NewKeyring returns a keyring that seals with primary and can also open
// records sealed with the older keepers. Ids must be non-empty, at most 255
// bytes and distinct.
func NewKeyring(primary NamedKeeper, older ...NamedKeeper) (*Keyring, error) {
	r := &Keyring{primary: primary, byID: map[string]Keeper{}}
	for _, nk := range append([]NamedKeeper{primary}, older...) {
		if nk.ID == "" || len(nk.ID) > maxKEKIDLen {
			return nil, fmt.Errorf("new keyring: key id must be 1 to %d bytes", maxKEKIDLen)
		}
		if nk.Keeper == nil {
			return nil, fmt.Errorf("new keyring: key %q has no keeper", nk.ID)
		}
		if _, dup := r.byID[nk.ID]; dup {
			return nil, fmt.Errorf("new keyring: key %q given twice", nk.ID)
		}
		r.byID[nk.ID] = nk.Keeper
	}
	return r, nil
}

// Close closes every keeper of the keyring that holds resources (KMS
// keepers; see CloseKeeper) and returns the first error. The keyring must not
// be used afterwards.
func (r *Keyring) Close() error {
	var first error
	for _, k := range r.byID {
		if err := CloseKeeper(k); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// PrimaryID returns the id of the key new records are sealed with.
func (r *Keyring) PrimaryID() string { return r.primary.ID }

// AssociatedData returns the associated data that binds a sealed secret to
// the organization, integration and field it is stored in. Each part is
// length-prefixed, so different triples never encode alike.
func AssociatedData(orgID int64, integration string, field string) []byte {
	b := []byte("kitewatch/ad/v1")
	b = binary.BigEndian.AppendUint64(b, uint64(orgID))
	for _, s := range []string{integration, field} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// record is a parsed sealed record. Its slices alias the input.
type record struct {
	kekID      string
	wrapped    []byte
	nonce      []byte
	ciphertext []byte
}

func parseRecord(b []byte) (record, error) {
	malformed := &UndecryptableError{Reason: ReasonMalformed}
	if len(b) < 2 || b[0] != recordVersion {
		return record{}, malformed
	}
	idLen := int(b[1])
	b = b[2:]
	if idLen == 0 || len(b) < idLen+2 {
		return record{}, malformed
	}
	var rec record
	rec.kekID = string(b[:idLen])
	b = b[idLen:]
	wLen := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if wLen == 0 || len(b) < wLen+nonceSize+tagSize {
		return record{}, malformed
	}
	rec.wrapped = b[:wLen]
	rec.nonce = b[wLen : wLen+nonceSize]
	rec.ciphertext = b[wLen+nonceSize:]
	return rec, nil
}

func (rec record) marshal() []byte {
	out := make([]byte, 0, 4+len(rec.kekID)+len(rec.wrapped)+len(rec.nonce)+len(rec.ciphertext))
	out = append(out, recordVersion, byte(len(rec.kekID)))
	out = append(out, rec.kekID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rec.wrapped)))
	out = append(out, rec.wrapped...)
	out = append(out, rec.nonce...)
	out = append(out, rec.ciphertext...)
	return out
}

// dataAD domain-separates the data AEAD's associated data from other uses.
func dataAD(ad []byte) []byte {
	return append([]byte("kitewatch/record/v1\x00"), ad...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext under a fresh random data key bound to
// associatedData, wraps the data key with the primary key and returns the
// self-describing record. It fails only if randomness or the keeper fails.
func (r *Keyring) Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error) {
	dek := make([]byte, KeySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("seal secret: generate data key: %w", err)
	}
	aead, err := newGCM(dek)
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal secret: generate nonce: %w", err)
	}
	wrapped, err := r.primary.Keeper.Encrypt(ctx, dek)
	if err != nil {
		return nil, fmt.Errorf("seal secret: wrap data key with %q: %w", r.primary.ID, err)
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrappedLen {
		return nil, fmt.Errorf("seal secret: key %q returned a wrapped key of %d bytes", r.primary.ID, len(wrapped))
	}
	rec := record{
		kekID:      r.primary.ID,
		wrapped:    wrapped,
		nonce:      nonce,
		ciphertext: aead.Seal(nil, nonce, plaintext, dataAD(associatedData)),
	}
	return rec.marshal(), nil
}

// unwrap parses a record and returns it with its data key.
func (r *Keyring) unwrap(ctx context.Context, b []byte) (record, []byte, error) {
	rec, err := parseRecord(b)
	if err != nil {
		return record{}, nil, err
	}
	k, ok := r.byID[rec.kekID]
	if !ok {
		return record{}, nil, &UndecryptableError{Reason: ReasonUnknownKEK, KEKID: rec.kekID}
	}
	dek, err := k.Decrypt(ctx, rec.wrapped)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// A cancelled KMS call says nothing about the record.
			return record{}, nil, fmt.Errorf("unwrap data key with %q: %w", rec.kekID, ctxErr)
		}
		if errors.Is(err, ErrKeeperUnavailable) {
			// Nor does an unreachable or failing key service.
			return record{}, nil, fmt.Errorf("unwrap data key with %q: %w", rec.kekID, err)
		}
		return record{}, nil, &UndecryptableError{Reason: ReasonUnwrap, KEKID: rec.kekID, Err: err}
	}
	if len(dek) != KeySize {
		clear(dek)
		return record{}, nil, &UndecryptableError{Reason: ReasonUnwrap, KEKID: rec.kekID}
	}
	return rec, dek, nil
}

// Open decrypts a record produced by Seal with the same associated data. Any
// problem with the record (malformed, unknown key, modified, other associated
// data) returns an error matching ErrUndecryptable; only a cancelled context
// or an unavailable key service (ErrKeeperUnavailable) during a keeper call
// returns something else.
func (r *Keyring) Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error) {
	rec, dek, err := r.unwrap(ctx, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	aead, err := newGCM(dek)
	if err != nil {
		return nil, &UndecryptableError{Reason: ReasonUnwrap, KEKID: rec.kekID}
	}
	pt, err := aead.Open(nil, rec.nonce, rec.ciphertext, dataAD(associatedData))
	if err != nil {
		return nil, &UndecryptableError{Reason: ReasonAuth, KEKID: rec.kekID}
	}
	return pt, nil
}

// KEKID returns the id of the key a record's data key is wrapped with. It
// fails with ErrUndecryptable if the record cannot be parsed.
func KEKID(sealed []byte) (string, error) {
	rec, err := parseRecord(sealed)
	if err != nil {
		return "", err
	}
	return rec.kekID, nil
}

// NeedsRewrap reports whether a record's data key is wrapped with a key other
// than the primary. It returns false for records that cannot be parsed, which
// Rewrap could not fix either.
func (r *Keyring) NeedsRewrap(sealed []byte) bool {
	id, err := KEKID(sealed)
	return err == nil && id != r.primary.ID
}

// Rewrap returns the record with its data key re-wrapped under the primary
// key; nonce and ciphertext are unchanged. A record already under the primary
// key is returned as is. It cannot check associated data, so it succeeds on
// records that Open would refuse for that reason.
func (r *Keyring) Rewrap(ctx context.Context, sealed []byte) ([]byte, error) {
	if !r.NeedsRewrap(sealed) {
		if _, err := parseRecord(sealed); err != nil {
			return nil, err
		}
		return sealed, nil
	}
	rec, dek, err := r.unwrap(ctx, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	wrapped, err := r.primary.Keeper.Encrypt(ctx, dek)
	if err != nil {
		return nil, fmt.Errorf("rewrap secret: wrap data key with %q: %w", r.primary.ID, err)
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrappedLen {
		return nil, fmt.Errorf("rewrap secret: key %q returned a wrapped key of %d bytes", r.primary.ID, len(wrapped))
	}
	rec.kekID = r.primary.ID
	rec.wrapped = wrapped
	return rec.marshal(), nil
}

// CheckValue returns a key-check value for the primary key, to be stored
// once and passed to VerifyCheckValue on later starts. Its form is
// "kcv1:<key id>:<base64 ciphertext>"; it reveals nothing about the key.
func (r *Keyring) CheckValue(ctx context.Context) (string, error) {
	ct, err := r.primary.Keeper.Encrypt(ctx, checkPlaintext)
	if err != nil {
		return "", fmt.Errorf("compute key-check value with %q: %w", r.primary.ID, err)
	}
	return checkValueLabel + ":" + r.primary.ID + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// VerifyCheckValue checks that a stored key-check value was produced by a key
// of this keyring with the same key material. It returns an error matching
// ErrWrongKey when the key id is unknown or the key cannot decrypt it, so the
// caller can refuse to start; when the key service is unavailable it returns
// an error matching ErrKeeperUnavailable instead (the caller still must not
// start, but the key may be right). The check value's key id is the last colon
// separated field before the ciphertext, so ids may contain colons.
func (r *Keyring) VerifyCheckValue(ctx context.Context, stored string) error {
	rest, ok := strings.CutPrefix(stored, checkValueLabel+":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 {
		return fmt.Errorf("verify key-check value: malformed value: %w", ErrWrongKey)
	}
	id, enc := rest[:i], rest[i+1:]
	ct, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("verify key-check value: malformed value: %w", ErrWrongKey)
	}
	k, ok := r.byID[id]
	if !ok {
		return fmt.Errorf("verify key-check value: stored data was encrypted with key %q, but the configured key is %q (wrong --key-url?): %w", id, r.primary.ID, ErrWrongKey)
	}
	pt, err := k.Decrypt(ctx, ct)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("verify key-check value with %q: %w", id, ctxErr)
		}
		if errors.Is(err, ErrKeeperUnavailable) {
			return fmt.Errorf("verify key-check value with %q: %w", id, err)
		}
		// Keeper errors never hold key material; for a KMS they say why
		// (access denied, key disabled, unreachable...).
		return fmt.Errorf("verify key-check value: key %q cannot decrypt it (the key material changed, or the KMS refused): %v: %w", id, err, ErrWrongKey)
	}
	if subtle.ConstantTimeCompare(pt, checkPlaintext) != 1 {
		return fmt.Errorf("verify key-check value: key %q decrypts it to the wrong value: %w", id, ErrWrongKey)
	}
	return nil
}
