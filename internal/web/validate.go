package web

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/kitewatch/kitewatch/internal/ci"
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidateOrg checks an organization's slug and name.
func ValidateOrg(slug, name string) error {
	if !slugRE.MatchString(slug) {
		return ci.Errorf(ci.ErrInvalid, "invalid_slug", "the organization slug must be 1 to 63 lower-case letters, digits or dashes, starting with a letter or digit")
	}
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 100 {
		return ci.Errorf(ci.ErrInvalid, "invalid_name", "the organization name must be 1 to 100 characters")
	}
	return nil
}

// ValidateEmail checks an email address.
func ValidateEmail(email string) error {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return ci.Errorf(ci.ErrInvalid, "invalid_email", "enter a valid email address such as ann@example.com")
	}
	return nil
}
