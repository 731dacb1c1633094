//go:build kms_vault || kms_all

package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	vault "github.com/hashicorp/vault/api"
	"gocloud.dev/secrets/hashivault"
)

// hashivault: the server is VAULT_SERVER_URL (or VAULT_ADDR) and the token
// VAULT_SERVER_TOKEN (or VAULT_TOKEN); the Vault client's other VAULT_*
// variables (VAULT_CACERT, VAULT_NAMESPACE...) apply too. Unlike gocloud's
// default opener, the environment is read on every open, not once per
// process.
func init() {
	registerKMS("hashivault", func(ctx context.Context, u *url.URL) (kmsDriver, error) {
		client, err := vaultClientFromEnv()
		if err != nil {
			return nil, err
		}
		o := &hashivault.URLOpener{Client: client}
		return o.OpenKeeperURL(ctx, u)
	})
}

// gocloud reports every Vault error as Unknown; a 5xx or 429 answer means
// the server failed or throttled, not that the key is wrong.
func init() {
	unavailableChecks = append(unavailableChecks, func(err error) bool {
		var re *vault.ResponseError
		return errors.As(err, &re) && (re.StatusCode >= 500 || re.StatusCode == 429)
	})
}

func vaultClientFromEnv() (*vault.Client, error) {
	addr := firstEnv("VAULT_SERVER_URL", "VAULT_ADDR")
	if addr == "" {
		return nil, errors.New("set VAULT_SERVER_URL (or VAULT_ADDR) to the Vault server's address")
	}
	// The address is checked here because the Vault client's errors
	// repeat it whole, credentials included; Vault authenticates with the
	// token, never with a user and password in the address.
	if u, err := url.Parse(addr); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the address
		}
		return nil, fmt.Errorf("VAULT_SERVER_URL (or VAULT_ADDR) is not a URL: %v", err)
	} else if u.User != nil {
		return nil, errors.New("VAULT_SERVER_URL (or VAULT_ADDR) must not hold credentials (user:password@): set VAULT_SERVER_TOKEN (or VAULT_TOKEN)")
	}
	cfg := vault.DefaultConfig() // reads VAULT_CACERT, VAULT_SKIP_VERIFY, VAULT_CLIENT_TIMEOUT...
	if cfg.Error != nil {
		return nil, fmt.Errorf("configure the Vault client: %w", cfg.Error)
	}
	cfg.Address = addr
	client, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure the Vault client: %w", err)
	}
	if token := firstEnv("VAULT_SERVER_TOKEN", "VAULT_TOKEN"); token != "" {
		client.SetToken(token)
	}
	return client, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
