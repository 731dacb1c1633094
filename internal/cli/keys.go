package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
)

// settingKeyCheck holds the key-check value of the key the database's
// secrets are sealed with.
const settingKeyCheck = "kek_check"

// openKeyring opens the configured key encryption key (and any previous
// ones) and checks it against the database's key-check value, refusing a
// wrong key. On first use it records the check value. The caller closes the
// keyring (KMS keepers hold clients).
func openKeyring(ctx context.Context, c config.Config, db *store.DB) (_ *secrets.Keyring, err error) {
	ring, err := openKeys(ctx, c, "open the key encryption key", "open a previous key encryption key")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ring.Close()
		}
	}()
	stored, err := db.Setting(ctx, settingKeyCheck)
	switch {
	case errors.Is(err, ci.ErrNotFound):
		kcv, err := ring.CheckValue(ctx)
		if err != nil {
			return nil, err
		}
		if err := db.PutSetting(ctx, settingKeyCheck, kcv); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if err := ring.VerifyCheckValue(ctx, stored); err != nil {
			return nil, fmt.Errorf("refusing to start: %w. Start kitewatch with the key it was set up with (--key-url), or change keys with kitewatch keys rotate", err)
		}
	}
	return ring, nil
}

func newKeysCmd(e *env) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{Use: "keys", Short: "Manage the key encryption key that protects stored secrets"}
	s.bindDatabase(cmd.PersistentFlags())
	var newURL string
	var batch int
	rotate := &cobra.Command{
		Use:   "rotate --new-key-url URL",
		Short: "Re-wrap every stored secret's data key under a new key encryption key",
		Long: `Re-wrap every stored secret's data key under a new key encryption key.

Only the wrapped data keys change; the encrypted secrets do not. The command
is resumable: run it again after an interruption and it continues with the
records still under an older key. While it runs, servers must be able to
read both keys: restart them first with --key-url NEW --previous-key-urls OLD.
When it finishes, the old key is no longer needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newURL == "" {
				return errors.New("--new-key-url is required")
			}
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, c config.Config) error {
				// The current key must be the one the database was sealed with.
				current, err := openKeyring(ctx, c, db)
				if err != nil {
					return err
				}
				current.Close()
				next := c
				next.PreviousKeyURLs = append([]string{c.KeyURL}, c.PreviousKeyURLs...)
				next.KeyURL = newURL
				ring, err := openRotationKeyring(ctx, next)
				if err != nil {
					return err
				}
				defer ring.Close()
				n, err := RewrapAll(ctx, db, ring, batch)
				if err != nil {
					return fmt.Errorf("key rotation stopped after %d records (run the command again to resume): %w", n, err)
				}
				kcv, err := ring.CheckValue(ctx)
				if err != nil {
					return err
				}
				if err := db.PutSetting(ctx, settingKeyCheck, kcv); err != nil {
					return err
				}
				if err := db.AppendAudit(ctx, ci.AuditEvent{Actor: "operator (kitewatch keys)", Action: "keys.rotate",
					Target: "kek:" + ring.PrimaryID(), Outcome: ci.OutcomeSuccess, ClientIP: "local",
					Details: map[string]string{"rewrapped": fmt.Sprint(n)}}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "re-wrapped %d secrets under key %s; start kitewatch with --key-url set to the new key (the old key is no longer needed)\n", n, ring.PrimaryID())
				return nil
			})
		},
	}
	rotate.Flags().StringVar(&newURL, "new-key-url", "", "the new key encryption key (file:///path, base64key://..., or a KMS URL in a binary built with its kms_* tag)")
	rotate.Flags().IntVar(&batch, "batch", 100, "records re-wrapped per database round trip")
	cmd.AddCommand(rotate)
	return cmd
}

// openRotationKeyring opens the keys for a rotation without checking the
// key-check value (the new key has none yet).
func openRotationKeyring(ctx context.Context, c config.Config) (*secrets.Keyring, error) {
	return openKeys(ctx, c, "open the new key encryption key", "open the current key encryption key")
}

// openKeys opens c.KeyURL as the primary key and c.PreviousKeyURLs as older
// ones. Keepers it does not keep (on error, or a previous URL naming the
// primary key again) are closed.
func openKeys(ctx context.Context, c config.Config, primaryWhat, olderWhat string) (*secrets.Keyring, error) {
	primary, id, err := secrets.OpenKeeper(ctx, c.KeyURL, c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", primaryWhat, err)
	}
	keep := []secrets.NamedKeeper{{ID: id, Keeper: primary}}
	closeAll := func() {
		for _, nk := range keep {
			secrets.CloseKeeper(nk.Keeper)
		}
	}
	for _, u := range c.PreviousKeyURLs {
		k, kid, err := secrets.OpenKeeper(ctx, u, c.DataDir)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: %w", olderWhat, err)
		}
		if kid == id {
			secrets.CloseKeeper(k)
			continue
		}
		keep = append(keep, secrets.NamedKeeper{ID: kid, Keeper: k})
	}
	ring, err := secrets.NewKeyring(keep[0], keep[1:]...)
	if err != nil {
		closeAll()
		return nil, err
	}
	return ring, nil
}

// RewrapAll re-wraps, in batches, every sealed record not under the
// keyring's primary key. Each record is swapped with a compare-and-swap, so
// a concurrent rotation of the token itself wins and a crash loses nothing.
func RewrapAll(ctx context.Context, db *store.DB, ring *secrets.Keyring, batch int) (int, error) {
	if batch <= 0 {
		batch = 100
	}
	done := 0
	for {
		list, err := db.IntegrationsToRewrap(ctx, ring.PrimaryID(), batch)
		if err != nil {
			return done, err
		}
		if len(list) == 0 {
			return done, nil
		}
		progress := false
		for _, in := range list {
			next, err := ring.Rewrap(ctx, in.TokenSealed)
			if err != nil {
				return done, fmt.Errorf("re-wrap the token of integration %d: %w", in.ID, err)
			}
			ok, err := db.ReplaceSealedToken(ctx, in.ID, in.TokenSealed, next, ring.PrimaryID())
			if err != nil {
				return done, err
			}
			if ok {
				done++
				progress = true
			}
		}
		if !progress {
			return done, errors.New("records changed while being re-wrapped; run the command again")
		}
	}
}
