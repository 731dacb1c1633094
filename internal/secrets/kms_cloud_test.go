//go:build kms_gcp || kms_azure || kms_all

package secrets

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// countOpens wraps a compiled-in scheme's real opener and counts its calls.
func countOpens(t *testing.T, scheme string) *int {
	t.Helper()
	s := kmsSchemes[scheme]
	if s.open == nil {
		t.Skipf("%s is not compiled in (build tag %s)", scheme, s.tag)
	}
	prev := s.open
	t.Cleanup(func() { s.open = prev })
	n := new(int)
	s.open = func(ctx context.Context, u *url.URL) (kmsDriver, error) {
		*n++
		return prev(ctx, u)
	}
	return n
}

// noCloudCredentials leaves the SDKs nothing to find but files that do not
// exist, so nothing they do can reach a real service.
func noCloudCredentials(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.json")
	for _, name := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"} {
		t.Setenv(name, "")
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", none)
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1")
	t.Setenv("NO_GCE_CHECK", "True")
}

func TestGCPKMSMalformedURLsNeverReachTheSDK(t *testing.T) {
	noCloudCredentials(t)
	n := countOpens(t, "gcpkms")
	ctx := context.Background()
	for _, bad := range []string{
		"gcpkms://my-key",
		"gcpkms://projects/p/locations/l/keyRings/r",
		"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
		"gcpkms://projects//locations/l/keyRings/r/cryptoKeys/k",
		"gcpkms://u:SECRET@projects/p/locations/l/keyRings/r/cryptoKeys/k",
	} {
		_, _, err := OpenKeeper(ctx, bad, "")
		if err == nil || !strings.Contains(err.Error(), "gcpkms") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	if *n != 0 {
		t.Fatalf("malformed URLs reached the gcpkms opener %d times", *n)
	}
	// A well-formed URL without credentials fails at open, naming the key.
	_, _, err := OpenKeeper(ctx, "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k", "")
	if err == nil || !strings.Contains(err.Error(), "open key gcpkms:projects/p/locations/global/keyRings/r/cryptoKeys/k") {
		t.Fatalf("no credentials: err = %v", err)
	}
	t.Logf("without credentials: %v", err)
}

func TestAzureKeyVaultMalformedURLsNeverReachTheSDK(t *testing.T) {
	noCloudCredentials(t)
	n := countOpens(t, "azurekeyvault")
	ctx := context.Background()
	for _, bad := range []string{
		"azurekeyvault://myvault/keys/k",
		"azurekeyvault://myvault.vault.azure.net/",
		"azurekeyvault://myvault.vault.azure.net/secrets/k",
		"azurekeyvault://myvault.vault.azure.net/keys/k/v/extra",
		"azurekeyvault://u:SECRET@myvault.vault.azure.net/keys/k",
	} {
		_, _, err := OpenKeeper(ctx, bad, "")
		if err == nil || !strings.Contains(err.Error(), "azurekeyvault") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	if *n != 0 {
		t.Fatalf("malformed URLs reached the azurekeyvault opener %d times", *n)
	}
	// An unknown parameter is refused by gocloud's opener, which dials nothing.
	_, _, err := OpenKeeper(ctx, "azurekeyvault://myvault.vault.azure.net/keys/k?colour=red", "")
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown parameter: err = %v", err)
	}
}
