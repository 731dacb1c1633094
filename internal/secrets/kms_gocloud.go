//go:build kms_aws || kms_gcp || kms_azure || kms_vault || kms_all

package secrets

import "gocloud.dev/gcerrors"

// gocloud classifies driver errors; these codes mean the service failed or
// throttled, not that the ciphertext or the key is wrong.
func init() {
	unavailableChecks = append(unavailableChecks, func(err error) bool {
		switch gcerrors.Code(err) {
		case gcerrors.Internal, gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded, gcerrors.Canceled:
			return true
		}
		return false
	})
}
