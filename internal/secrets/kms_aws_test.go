//go:build kms_aws || kms_all

package secrets_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/secrets/kmstest"
)

const (
	awsAccessKeyID = "AKIDKITEWATCHTEST"
	awsSecretKey   = "SECRETKEY-must-not-leak"
)

// useFakeAWSKMS gives the AWS SDK static credentials from the environment,
// no config files and no metadata server, and returns a fake KMS with the
// key alias/kitewatch and the key URL query that points at it.
func useFakeAWSKMS(t *testing.T) (*kmstest.AWSKMS, string) {
	k := kmstest.NewAWSKMS(t, awsAccessKeyID)
	k.SetKey("alias/kitewatch")
	none := filepath.Join(t.TempDir(), "none")
	for name, val := range map[string]string{
		"AWS_ACCESS_KEY_ID":           awsAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       awsSecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_KMS":        "",
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
	} {
		t.Setenv(name, val)
	}
	q := url.Values{"region": {"eu-west-1"}, "endpoint": {k.URL}, "hostname_immutable": {"true"}}
	return k, q.Encode()
}

func TestAWSKMSKeeperRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake, query := useFakeAWSKMS(t)
	k, id, err := secrets.OpenKeeper(ctx, "awskms:///alias/kitewatch?"+query, "")
	if err != nil {
		t.Fatal(err)
	}
	defer secrets.CloseKeeper(k)
	if id != "awskms:alias/kitewatch" {
		t.Fatalf("id = %q (region and endpoint must not be part of it)", id)
	}
	ring, _ := secrets.NewKeyring(secrets.NamedKeeper{ID: id, Keeper: k})
	ad := secrets.AssociatedData(3, "buildkite", "token")
	sealed, err := ring.Seal(ctx, []byte("bkua_aws_secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(ctx, sealed, ad); err != nil || string(got) != "bkua_aws_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if fake.Requests() < 2 {
		t.Fatalf("the fake KMS saw %d requests", fake.Requests())
	}
	kcv, err := ring.CheckValue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.VerifyCheckValue(ctx, kcv); err != nil {
		t.Fatal(err)
	}

	// An encryption context is part of the id and needed to decrypt.
	kc, idc, err := secrets.OpenKeeper(ctx, "awskms:///alias/kitewatch?context_app=kitewatch&"+query, "")
	if err != nil {
		t.Fatal(err)
	}
	if idc != "awskms:alias/kitewatch?context_app=kitewatch" {
		t.Fatalf("id with context = %q", idc)
	}
	ct, err := kc.Encrypt(ctx, []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypt(ctx, ct); err == nil {
		t.Fatal("decrypted without the encryption context")
	}

	// New key material under the alias is refused at start, with a clear error.
	fake.SetKey("alias/kitewatch")
	err = ring.VerifyCheckValue(ctx, kcv)
	if !errors.Is(err, secrets.ErrWrongKey) || !strings.Contains(err.Error(), `key "awskms:alias/kitewatch" cannot decrypt it`) ||
		!strings.Contains(err.Error(), "decrypt with awskms") {
		t.Fatalf("replaced key: %v, want ErrWrongKey with the KMS's reason", err)
	}
	t.Logf("startup error: %v", err)
	_, err = ring.Open(ctx, sealed, ad)
	if !errors.Is(err, secrets.ErrUndecryptable) || !strings.Contains(err.Error(), "decrypt with awskms") || !strings.Contains(err.Error(), "InvalidCiphertextException") {
		t.Fatalf("Open under replaced key: %v", err)
	}
	if strings.Contains(err.Error(), awsSecretKey) {
		t.Fatalf("error leaks the secret key: %v", err)
	}

	// A key the KMS does not have.
	kn, _, err := secrets.OpenKeeper(ctx, "awskms:///alias/nosuchkey?"+query, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kn.Encrypt(ctx, []byte("x")); err == nil || !strings.Contains(err.Error(), "encrypt with awskms") || !strings.Contains(err.Error(), "NotFoundException") {
		t.Fatalf("unknown key: %v", err)
	}
	// An unknown URL parameter is refused before any request.
	before := fake.Requests()
	if _, _, err := secrets.OpenKeeper(ctx, "awskms:///alias/kitewatch?colour=red&"+query, ""); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown parameter: %v", err)
	}
	if fake.Requests() != before {
		t.Fatal("a refused URL reached the KMS")
	}
}
