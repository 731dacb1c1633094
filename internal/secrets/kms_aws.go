//go:build kms_aws || kms_all

package secrets

import (
	"context"
	"net/url"

	gcsecrets "gocloud.dev/secrets"
	"gocloud.dev/secrets/awskms"
)

// awskms: credentials and region come from the AWS SDK's default chain
// (AWS_* environment variables, shared config files, instance roles); the
// URL's region, endpoint, profile... parameters override it.
func init() {
	registerKMS("awskms", func(ctx context.Context, u *url.URL) (kmsDriver, error) {
		return new(awskms.URLOpener).OpenKeeperURL(ctx, u)
	})
}

var _ kmsDriver = (*gcsecrets.Keeper)(nil)
