package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Password length bounds. The minimum follows OWASP's advice for accounts
// without a second factor; the maximum bounds the cost of hashing attacker
// supplied input (argon2id hashes the whole password before its passes).
const (
	MinPasswordChars = 12
	MaxPasswordBytes = 1024
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are the parameters new hashes use: OWASP's argon2id
// recommendation of 19 MiB, two passes and one lane (see the package doc).
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// hashSlots bounds how many argon2id derivations run at once, and so the
// memory a burst of sign-ins can take (each holds Params.Memory): one per
// core, at least two. Further callers wait for a slot.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// Bounds accepted when decoding a stored hash, so a corrupted or hostile row
// cannot make one check allocate gigabytes or spin for minutes.
const (
	maxDecodeMemory  = 1 << 20 // 1 GiB in KiB
	maxDecodeTime    = 16
	maxDecodeThreads = 16
	maxDecodeKeyLen  = 128
	minDecodeSaltLen = 8
	maxDecodeSaltLen = 64
)

// errMalformedHash is returned (wrapped) when a stored hash cannot be parsed.
var errMalformedHash = errors.New("malformed password hash")

// ValidatePassword checks that pw is acceptable as a new password: at least
// MinPasswordChars characters and at most MaxPasswordBytes bytes. It returns a
// *ci.Error of kind ci.ErrInvalid whose message never includes the password.
func ValidatePassword(pw string) error {
	if len(pw) > MaxPasswordBytes {
		return ci.Errorf(ci.ErrInvalid, "password_too_long", "password must be at most %d bytes", MaxPasswordBytes)
	}
	if !utf8.ValidString(pw) {
		return ci.Errorf(ci.ErrInvalid, "password_invalid", "password must be valid UTF-8 text")
	}
	if utf8.RuneCountInString(pw) < MinPasswordChars {
		return ci.Errorf(ci.ErrInvalid, "password_too_short", "password must be at least %d characters", MinPasswordChars)
	}
	return nil
}

// HashPassword validates pw and returns its argon2id hash in PHC string
// format with DefaultParams and a fresh random salt. It fails with a
// *ci.Error of kind ci.ErrInvalid when the password is unacceptable.
func HashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	return hashWithParams(pw, DefaultParams)
}

func hashWithParams(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read random salt: %w", err)
	}
	key := deriveKey(pw, salt, p)
	return encodeHash(p, salt, key), nil
}

func deriveKey(pw string, salt []byte, p Params) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func encodeHash(p Params, salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// decodeHash parses a PHC argon2id string. Errors never include the input.
func decodeHash(encoded string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("decode password hash: not an argon2id PHC string: %w", errMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("decode password hash: unsupported argon2 version: %w", errMalformedHash)
	}
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, nil, nil, fmt.Errorf("decode password hash: bad parameter list: %w", errMalformedHash)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("decode password hash: bad parameter %q: %w", k, errMalformedHash)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
			seen |= 1
		case "t":
			p.Time = uint32(n)
			seen |= 2
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("decode password hash: lanes out of range: %w", errMalformedHash)
			}
			p.Threads = uint8(n)
			seen |= 4
		default:
			return p, nil, nil, fmt.Errorf("decode password hash: unknown parameter %q: %w", k, errMalformedHash)
		}
	}
	if seen != 7 {
		return p, nil, nil, fmt.Errorf("decode password hash: missing parameter: %w", errMalformedHash)
	}
	if p.Time < 1 || p.Time > maxDecodeTime || p.Threads < 1 || p.Threads > maxDecodeThreads ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxDecodeMemory {
		return p, nil, nil, fmt.Errorf("decode password hash: parameters out of range: %w", errMalformedHash)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minDecodeSaltLen || len(salt) > maxDecodeSaltLen {
		return p, nil, nil, fmt.Errorf("decode password hash: bad salt: %w", errMalformedHash)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxDecodeKeyLen {
		return p, nil, nil, fmt.Errorf("decode password hash: bad key: %w", errMalformedHash)
	}
	p.SaltLen = uint32(len(salt))
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}

// CheckPassword reports whether pw matches the encoded argon2id hash,
// comparing in constant time. It returns an error only when encoded cannot be
// parsed; a wrong password is (false, nil). Passwords longer than
// MaxPasswordBytes never match and are rejected without hashing.
func CheckPassword(encoded, pw string) (bool, error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	if len(pw) > MaxPasswordBytes {
		return false, nil
	}
	got := deriveKey(pw, salt, p)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than
// DefaultParams (or cannot be parsed), so that a caller who has just verified
// the password should store HashPassword's fresh result instead.
func NeedsRehash(encoded string) bool {
	p, _, _, err := decodeHash(encoded)
	if err != nil {
		return true
	}
	d := DefaultParams
	return p.Memory != d.Memory || p.Time != d.Time || p.Threads != d.Threads ||
		p.SaltLen != d.SaltLen || p.KeyLen != d.KeyLen
}

// dummySalt is a fixed salt for DummyCheck; its output is discarded.
var dummySalt = make([]byte, DefaultParams.SaltLen)

// DummyCheck spends the same work as CheckPassword against a DefaultParams
// hash and always returns false. Call it when the account does not exist so
// that response time does not reveal whether an email address is registered.
func DummyCheck(pw string) bool {
	if len(pw) > MaxPasswordBytes {
		return false
	}
	got := deriveKey(pw, dummySalt, DefaultParams)
	// Compare like CheckPassword does so the work matches; the result is
	// discarded because no password matches an account that does not exist.
	_ = subtle.ConstantTimeCompare(got, make([]byte, len(got)))
	return false
}
