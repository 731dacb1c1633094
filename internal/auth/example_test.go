package auth_test

import (
	"fmt"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
)

// users stands in for the store in this example.
var users = map[string]string{} // email -> password hash

// signIn shows how the pieces combine for one password sign-in attempt.
func signIn(lim *auth.Limiter, ip, email, password string) error {
	if wait := lim.Check(ip, email); wait > 0 {
		return fmt.Errorf("too many attempts, retry in %v", wait)
	}
	hash, found := users[email]
	ok := false
	if found {
		var err error
		if ok, err = auth.CheckPassword(hash, password); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	} else {
		auth.DummyCheck(password) // same cost as a real check: no enumeration by timing
	}
	if !ok {
		lim.Failure(ip, email)
		return fmt.Errorf("wrong email or password")
	}
	lim.Success(ip, email)
	if auth.NeedsRehash(hash) {
		users[email], _ = auth.HashPassword(password)
	}
	return nil
}

func Example() {
	hash, err := auth.HashPassword("correct horse battery staple")
	if err != nil {
		panic(err)
	}
	users["a@acme.test"] = hash

	lim := auth.NewLimiter(auth.LimiterConfig{})
	fmt.Println(signIn(lim, "192.0.2.1", "a@acme.test", "correct horse battery staple"))
	fmt.Println(signIn(lim, "192.0.2.1", "nobody@acme.test", "guess guess guess"))

	// A personal API token: show plain once, store hash and hint.
	plain, tokenHash, err := auth.NewToken(auth.PrefixAPIToken)
	if err != nil {
		panic(err)
	}
	fmt.Println(auth.LooksLikeAPIToken(plain), len(tokenHash), len(auth.TokenHint(plain)) < 12)

	c := auth.SessionCookie("kws_...", time.Now().Add(12*time.Hour), true)
	fmt.Println(c.Name, c.HttpOnly, c.Secure)
	// Output:
	// <nil>
	// wrong email or password
	// true 32 true
	// __Host-kitewatch_session true true
}
