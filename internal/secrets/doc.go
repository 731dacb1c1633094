// Package secrets encrypts kitewatch's stored secrets (such as Buildkite API
// tokens) at rest with envelope encryption, and provides a Secret type that
// never prints its value.
//
// # Keys
//
// A key encryption key (KEK) sits behind the two-method [Keeper] interface,
// the shape of gocloud.dev/secrets. [OpenKeeper] opens one from a key URL:
//
//   - "" (the default): the file kitewatch.key in the data directory, created
//     with mode 0600 on first start;
//   - file:///abs/path: an existing key file (32 raw bytes, or their standard
//     base64 encoding on one line);
//   - base64key://<standard or URL-safe base64 of 32 bytes>: an in-memory key;
//   - awskms://, gcpkms://, azurekeyvault://, hashivault://: cloud KMS keys
//     through gocloud.dev/secrets keepers, adapted by [KMSKeeper]. Each is
//     compiled in only with its build tag (kms_aws, kms_gcp, kms_azure,
//     kms_vault; kms_all for all four), so the default binary links no cloud
//     SDK; without the tag OpenKeeper answers [ErrKeeperNotCompiled] naming
//     the tag. The build-tagged files (kms_aws.go...) only register an
//     opener; URL checks, key ids, error wrapping and the adapter are
//     untagged (kms.go).
//
// Key files that group or others may read or write are refused.
//
// Every key has a stable id, stored with each record: "local:" and 16 hex
// digits derived from a local key, or "<scheme>:<key name>" for a KMS key,
// with the URL parameters decryption depends on (an AWS encryption context,
// GCP additional authenticated data, the Azure algorithm) but not the ones
// that only locate the service (region, endpoint...). Ids never hold
// credentials: KMS URLs with user:password@ are refused. KMS keepers hold
// clients; release them with [CloseKeeper] or [Keyring.Close].
//
// Package kmstest has fakes of the Vault transit and AWS KMS APIs for tests.
//
// # Records
//
// A [Keyring] holds the primary keeper and older ones by key id. [Keyring.Seal]
// encrypts each secret with a fresh random 32-byte data key (AES-256-GCM) and
// wraps that data key with the primary KEK. The sealed record is
// self-describing:
//
//	version (1 byte) | kek id length (1 byte) | kek id | wrapped key length (2 bytes, big endian) | wrapped key | nonce (12 bytes) | ciphertext+tag
//
// Associated data (see [AssociatedData]) binds a record to the organization,
// integration and field it belongs to, so a record copied to another row
// fails to open. Every failure to open is an error matching [ErrUndecryptable];
// there is never a plaintext fallback.
//
// KEK rotation calls [Keyring.Rewrap] on every record: only the wrapped data
// key changes, the ciphertext does not. A key-check value
// ([Keyring.CheckValue], [Keyring.VerifyCheckValue]) stored next to the data
// detects a wrong KEK at startup.
package secrets
