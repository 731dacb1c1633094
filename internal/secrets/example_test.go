package secrets_test

import (
	"context"
	"fmt"
	"os"

	"github.com/kitewatch/kitewatch/internal/secrets"
)

func Example() {
	ctx := context.Background()
	dataDir, _ := os.MkdirTemp("", "kitewatch-example")
	defer os.RemoveAll(dataDir)

	// At startup: open the key encryption key and build the keyring.
	kek, id, err := secrets.OpenKeeper(ctx, "", dataDir) // creates dataDir/kitewatch.key
	if err != nil {
		panic(err)
	}
	ring, err := secrets.NewKeyring(secrets.NamedKeeper{ID: id, Keeper: kek})
	if err != nil {
		panic(err)
	}

	// Storing a token: seal it bound to where it is stored.
	token := secrets.NewSecret("bkua_0123456789abcdef0123456789abcdef01239f3c")
	ad := secrets.AssociatedData(42, "buildkite", "token")
	sealed, _ := ring.Seal(ctx, []byte(token.Reveal()), ad)

	// Reading it back needs the same associated data.
	plain, _ := ring.Open(ctx, sealed, ad)
	fmt.Println(secrets.Mask(string(plain)), token)

	// A record copied to another organization does not open.
	_, err = ring.Open(ctx, sealed, secrets.AssociatedData(43, "buildkite", "token"))
	fmt.Println(err != nil)
	// Output:
	// bkua_…9f3c [REDACTED]
	// true
}
