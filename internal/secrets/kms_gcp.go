//go:build kms_gcp || kms_all

package secrets

import (
	"context"
	"net/url"

	gcsecrets "gocloud.dev/secrets"
	_ "gocloud.dev/secrets/gcpkms" // registers gcpkms:// on gocloud's default mux
)

// gcpkms: credentials are Google Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials or the metadata
// server), loaded once per process by gocloud's default opener.
func init() {
	registerKMS("gcpkms", func(ctx context.Context, u *url.URL) (kmsDriver, error) {
		return gcsecrets.DefaultURLMux().OpenKeeperURL(ctx, u)
	})
}
