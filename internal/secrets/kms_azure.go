//go:build kms_azure || kms_all

package secrets

import (
	"context"
	"net/url"

	"gocloud.dev/secrets/azurekeyvault"
)

// azurekeyvault: credentials come from azidentity's DefaultAzureCredential
// (AZURE_* environment variables, workload or managed identity, az CLI).
func init() {
	registerKMS("azurekeyvault", func(ctx context.Context, u *url.URL) (kmsDriver, error) {
		o := &azurekeyvault.URLOpener{ClientMaker: azurekeyvault.DefaultClientMaker}
		return o.OpenKeeperURL(ctx, u)
	})
}
