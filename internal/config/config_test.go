package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gatehouse.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	p := writeFile(t, "data_dir: /tmp/x\napi:\n  listen: 127.0.0.1:1111\naudit:\n  mode: sync\nlog:\n  format: json\n")
	cfg, err := Load(p, envMap(map[string]string{
		"GATEHOUSE_API_LISTEN": "127.0.0.1:2222",
		"GATEHOUSE_LOG_FORMAT": "text",
	}), []Override{{Path: "api.listen", Value: "127.0.0.1:3333"}})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:3333", cfg.API.Listen, "flag beats env beats file")
	require.Equal(t, "text", cfg.Log.Format, "env beats file")
	require.Equal(t, "sync", cfg.Audit.Mode, "file beats default")
	require.Equal(t, "/tmp/x", cfg.DataDir)
	require.Equal(t, filepath.Join("/tmp/x", "gatehouse.db"), cfg.Store.SQLitePath)
	require.Equal(t, "http://127.0.0.1:3333", cfg.API.PublicURL)
}

func TestEveryErrorReportedWithPath(t *testing.T) {
	p := writeFile(t, `
data_dir: ""
api:
  listen: nonsense
  lisen: typo
  max_body_bytes: lots
audit:
  mode: eventually
  group_window: soon
store:
  driver: postgres
extra: 1
`)
	_, err := Load(p, envMap(map[string]string{"GATEHOUSE_LOG_LEVEL": "loud"}), []Override{{Path: "audit.nope", Value: "1"}})
	require.Error(t, err)
	msg := err.Error()
	// Type and unknown-key errors come first (validation runs only on a well-typed tree).
	for _, want := range []string{
		"api.lisen: unknown key",
		"api.max_body_bytes: invalid integer",
		"audit.group_window: invalid duration",
		"extra: unknown key",
		"audit.nope: unknown key (flag)",
	} {
		require.Contains(t, msg, want)
	}
	var ce *Error
	require.True(t, errors.As(err, &ce))
	require.Contains(t, msg, "line ")
}

func TestValidationReportsAll(t *testing.T) {
	p := writeFile(t, "data_dir: \"\"\napi:\n  listen: nonsense\naudit:\n  mode: eventually\nstore:\n  driver: postgres\n")
	_, err := Load(p, envMap(map[string]string{"GATEHOUSE_LOG_LEVEL": "loud"}), nil)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"data_dir: must not be empty",
		"api.listen: must be host:port",
		"audit.mode: must be sync or group",
		"store.dsn: must be set for driver postgres",
		"log.level: must be debug, info, warn or error",
		"s3.local_dir: must be set for backend local", // derived from data_dir
	} {
		require.Contains(t, msg, want)
	}
	require.Equal(t, 6, strings.Count(msg, "\n")+1, "one line per error: %s", msg)
}

func TestDefaultsValid(t *testing.T) {
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	require.Equal(t, "group", cfg.Audit.Mode)
	require.Equal(t, 30*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, 90*24*time.Hour, cfg.Identity.TokenMaxTTL)
}

func TestTokenMaxTTL(t *testing.T) {
	cfg, err := Load(writeFile(t, "identity:\n  token_max_ttl: 720h\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, cfg.Identity.TokenMaxTTL)
	for _, v := range []string{"30m", "8761h", "0s"} {
		_, err := Load(writeFile(t, "identity:\n  token_max_ttl: "+v+"\n"), nil, nil)
		require.ErrorContains(t, err, "identity.token_max_ttl: must be between 1h and 8760h", v)
	}
}

func TestBadYAMLAndMissingFile(t *testing.T) {
	_, err := Load(writeFile(t, "api: [unclosed"), nil, nil)
	require.ErrorContains(t, err, "invalid YAML")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil)
	require.ErrorContains(t, err, "cannot read config file")
	_, err = Load(writeFile(t, "api: 3\n"), nil, nil)
	require.ErrorContains(t, err, "api: expected a mapping")
	_, err = Load(writeFile(t, "api:\n  listen: [a, b]\n"), nil, nil)
	require.ErrorContains(t, err, "api.listen: expected a single value")
}

func TestKeysHaveEnvNames(t *testing.T) {
	keys := Keys()
	require.NotEmpty(t, keys)
	found := false
	for _, k := range keys {
		require.NotEmpty(t, k[2], "key %s lacks doc", k[0])
		if k[0] == "audit.group_window" {
			require.Equal(t, "GATEHOUSE_AUDIT_GROUP_WINDOW", k[1])
			found = true
		}
	}
	require.True(t, found)
}

func TestSTSDefaultsAndValidation(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{"GATEHOUSE_API_PUBLIC_URL": "https://gh.example.test/"}), nil)
	require.NoError(t, err)
	require.Equal(t, "000000000000", cfg.STS.AccountID)
	require.Equal(t, "us-east-1", cfg.STS.Region)
	require.Equal(t, time.Hour, cfg.STS.DefaultSessionDuration)
	require.Equal(t, "urn:amazon:webservices", cfg.STS.SAMLAudience)
	require.Equal(t, "https://gh.example.test/saml/acs", cfg.STS.ACSURL, "derived from api.public_url")

	cfg, err = Load(writeFile(t, "sts:\n  acs_url: https://sso.example.test/acs\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, "https://sso.example.test/acs", cfg.STS.ACSURL, "an explicit acs_url wins")

	p := writeFile(t, "sts:\n  account_id: \"12345\"\n  region: Mars\n  default_session_duration: 13h\n  saml_audience: \" \"\n  acs_url: /relative\n")
	_, err = Load(p, nil, nil)
	require.Error(t, err)
	for _, want := range []string{
		"sts.account_id: must be 12 digits",
		"sts.region: must be a region name",
		"sts.default_session_duration: must be whole seconds between 15m and 12h",
		"sts.saml_audience: must not be empty",
		"sts.acs_url: must be an absolute http(s) URL",
	} {
		require.Contains(t, err.Error(), want)
	}
}

func TestS3BackendValidation(t *testing.T) {
	_, err := Load(writeFile(t, "s3:\n  backend: s3\n  endpoint: not a url\n"), nil, nil)
	require.ErrorContains(t, err, "s3.endpoint: must be an absolute http(s) URL")
	require.ErrorContains(t, err, "s3.access_key_id: access_key_id and secret_access_key are required")
	_, err = Load(writeFile(t, "s3:\n  backend: tape\n  listen: 127.0.0.1:8080\n"), nil, nil)
	require.ErrorContains(t, err, "s3.backend: must be local or s3")
	require.ErrorContains(t, err, "s3.listen: must differ from api.listen")
	cfg, err := Load(writeFile(t, "s3:\n  listen: \"\"\n"), nil, nil)
	require.NoError(t, err, "an empty s3.listen disables the gateway")
	require.Empty(t, cfg.S3.Listen)
}

func TestAuditDurability(t *testing.T) {
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	require.Equal(t, "write", cfg.Audit.Durability, "the default waits for write(2), fsync follows (design 0002)")

	cfg, err = Load(writeFile(t, "audit:\n  durability: fsync\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, "fsync", cfg.Audit.Durability, "fsync is one setting away")

	cfg, err = Load("", envMap(map[string]string{"GATEHOUSE_AUDIT_DURABILITY": "fsync"}), nil)
	require.NoError(t, err)
	require.Equal(t, "fsync", cfg.Audit.Durability)

	for _, bogus := range []string{"bogus", "", "WRITE", "fsync "} {
		_, err = Load(writeFile(t, "audit:\n  durability: \""+bogus+"\"\n"), nil, nil)
		require.ErrorContains(t, err, `audit.durability: must be fsync or write, got "`+bogus+`"`)
	}
	_, err = Load("", nil, []Override{{Path: "audit.durability", Value: "bogus"}})
	require.ErrorContains(t, err, "audit.durability: must be fsync or write")

	require.Equal(t, 5*time.Millisecond, cfg.Audit.SyncInterval)
	cfg, err = Load(writeFile(t, "audit:\n  durability: write\n  sync_interval: 20ms\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 20*time.Millisecond, cfg.Audit.SyncInterval)
	for _, bad := range []string{"0s", "-1ms", "2s"} {
		_, err = Load(writeFile(t, "audit:\n  sync_interval: "+bad+"\n"), nil, nil)
		require.ErrorContains(t, err, "audit.sync_interval: must be between 1ns and 1s")
	}
}

// TestRemovedIdentityGroupKeysRefused: the keys that once made the members
// of a named group admins or SCIM callers (issue 11 finding 2) are refused
// from a file and from the environment, never silently ignored.
func TestRemovedIdentityGroupKeysRefused(t *testing.T) {
	_, err := Load(writeFile(t, "identity:\n  admin_group: admins\n  scim_group: scim\n"), nil, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "identity.admin_group")
	require.Contains(t, err.Error(), "identity.scim_group")
	require.Contains(t, err.Error(), "privileges grant")
	_, err = Load("", envMap(map[string]string{"GATEHOUSE_IDENTITY_ADMIN_GROUP": "admins"}), nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "identity.admin_group")
}

func TestLoginThrottleValidation(t *testing.T) {
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	require.Equal(t, 10, cfg.Login.UserBurst)
	require.Equal(t, 2*time.Second, cfg.Login.HashWait)
	p := writeFile(t, "login:\n  user_burst: 0\n  source_refill: 0s\n  max_concurrent_hashes: -1\n  hash_wait: 5m\n")
	_, err = Load(p, nil, nil)
	require.Error(t, err)
	for _, want := range []string{"login.user_burst: must be at least 1", "login.source_refill: must be between",
		"login.max_concurrent_hashes: must not be negative", "login.hash_wait: must be between 0 and 1m"} {
		require.Contains(t, err.Error(), want)
	}
}

// TestDenialAggregationKeys: the window and key limit of the aggregation of
// unauthenticated denials are config keys, listed by --help-config, with
// defaults matching audit.Aggregator's and out-of-range values refused.
func TestDenialAggregationKeys(t *testing.T) {
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.Audit.DenialWindow)
	require.Equal(t, 4096, cfg.Audit.DenialMaxSources)
	cfg, err = Load(writeFile(t, "audit:\n  denial_window: 250ms\n  denial_max_sources: 10\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, cfg.Audit.DenialWindow)
	require.Equal(t, 10, cfg.Audit.DenialMaxSources)
	for _, tc := range []struct{ yaml, want string }{
		{"audit:\n  denial_window: 1ms\n", "audit.denial_window: must be between 10ms and 1m"},
		{"audit:\n  denial_window: 2m\n", "audit.denial_window: must be between 10ms and 1m"},
		{"audit:\n  denial_max_sources: 0\n", "audit.denial_max_sources: must be between 1 and 1000000"},
		{"audit:\n  denial_max_sources: 1000001\n", "audit.denial_max_sources: must be between 1 and 1000000"},
	} {
		_, err := Load(writeFile(t, tc.yaml), nil, nil)
		require.ErrorContains(t, err, tc.want, tc.yaml)
	}
	listed := map[string]bool{}
	for _, k := range Keys() {
		listed[k[0]] = true
	}
	require.True(t, listed["audit.denial_window"] && listed["audit.denial_max_sources"])
}
