// Package config holds gatehouse's configuration tree and its loader.
//
// Precedence, lowest to highest: built-in defaults, the YAML file, GATEHOUSE_*
// environment variables, then command-line overrides. Every leaf has one key
// path (e.g. "api.listen"); its environment variable is GATEHOUSE_ followed by
// the path upper-cased with "." replaced by "_" (GATEHOUSE_API_LISTEN).
// Loading is strict: unknown keys and ill-typed values are errors, and Load
// reports every error at once, each prefixed with its key path and source.
package config

import (
	"time"
)

// Config is the whole server configuration. Field tags name the key path
// segment; `doc` is shown by `gatehouse serve --help-config`.
type Config struct {
	DataDir         string        `yaml:"data_dir" doc:"directory for the SQLite store, audit log, keys and bootstrap token"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" doc:"how long graceful shutdown waits for in-flight requests"`
	Log             Log           `yaml:"log"`
	API             API           `yaml:"api"`
	Admin           Admin         `yaml:"admin"`
	Store           Store         `yaml:"store"`
	Audit           Audit         `yaml:"audit"`
	Identity        Identity      `yaml:"identity"`
	Login           Login         `yaml:"login"`
	Secrets         Secrets       `yaml:"secrets"`
	STS             STS           `yaml:"sts"`
	S3              S3            `yaml:"s3"`
	// TrustedProxies and TrustedProxyHeader apply to the API and S3
	// listeners alike (internal/clientip).
	TrustedProxies     string `yaml:"trusted_proxies" doc:"comma-separated addresses or CIDR prefixes of reverse proxies whose forwarding header names the client (aws:SourceIp, audit); empty trusts none"`
	TrustedProxyHeader string `yaml:"trusted_proxy_header" doc:"the header those proxies set: X-Forwarded-For or Forwarded (RFC 7239); the other is ignored"`

	// derived* record which URLs applyDerived computed from api.listen, so
	// BindAPI can correct them once the real port is known.
	derivedPublicURL, derivedACSURL bool
}

// Log configures structured logging.
type Log struct {
	Format string `yaml:"format" doc:"json or text"`
	Level  string `yaml:"level" doc:"debug, info, warn or error"`
}

// API is the public listener: REST, SCIM and later the data planes.
type API struct {
	Listen            string        `yaml:"listen" doc:"host:port of the API listener"`
	PublicURL         string        `yaml:"public_url" doc:"externally visible base URL (default http://<listen>)"`
	TLSCertFile       string        `yaml:"tls_cert_file" doc:"PEM certificate; TLS is on when set together with tls_key_file"`
	TLSKeyFile        string        `yaml:"tls_key_file" doc:"PEM private key"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes" doc:"largest accepted request body for REST and SCIM"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes" doc:"largest accepted request header block"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" doc:"slow-client guard for request headers"`
	ReadTimeout       time.Duration `yaml:"read_timeout" doc:"limit for reading a whole request"`
	WriteTimeout      time.Duration `yaml:"write_timeout" doc:"limit for writing a response"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" doc:"keep-alive idle limit"`
}

// Admin is the operations listener: /livez, /readyz, /metrics.
type Admin struct {
	Listen string `yaml:"listen" doc:"host:port of the admin listener (health and metrics)"`
}

// Store selects the metadata store backend.
type Store struct {
	Driver     string `yaml:"driver" doc:"sqlite or postgres"`
	SQLitePath string `yaml:"sqlite_path" doc:"SQLite file (default <data_dir>/gatehouse.db)"`
	DSN        string `yaml:"dsn" doc:"PostgreSQL DSN, for driver postgres" secret:"true"`
}

// Audit configures the hash-chained audit log.
type Audit struct {
	Mode               string        `yaml:"mode" doc:"with durability fsync: sync (fsync per record) or group (batched fsync; each request waits for its batch)"`
	Durability         string        `yaml:"durability" doc:"write (default: a request waits for its record's write(2); fsync follows in the background within sync_interval, so a process crash loses nothing and an OS crash or power loss can lose the last sync_interval plus one fsync of records) or fsync (a request waits for its record's fsync)"`
	SyncInterval       time.Duration `yaml:"sync_interval" doc:"with durability write: at most one background fsync per interval (bounds what an OS crash can lose)"`
	GroupWindow        time.Duration `yaml:"group_window" doc:"longest a record waits for its batch in group mode"`
	CheckpointEvery    int           `yaml:"checkpoint_every" doc:"records between signed checkpoints"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" doc:"time between signed checkpoints"`
	DenialWindow       time.Duration `yaml:"denial_window" doc:"requests refused without valid credentials (every plane) are recorded once per source and error code per window, the rest counted in one summary record (10ms to 1m)"`
	DenialMaxSources   int           `yaml:"denial_max_sources" doc:"sources and error codes tracked per window and plane; denials beyond it are counted together in one overflow summary (1 to 1000000)"`
}

// Identity configures local principals and SCIM.
type Identity struct {
	SessionTTL     time.Duration `yaml:"session_ttl" doc:"lifetime of login sessions"`
	TokenMaxTTL    time.Duration `yaml:"token_max_ttl" doc:"longest lifetime a personal access token may be given (1h to 8760h); longer requests are refused with 400. A token minted with a session or another token also ends no later than it"`
	BootstrapToken string        `yaml:"bootstrap_token_file" doc:"where the first-run admin token is written (default <data_dir>/bootstrap-admin.token)"`
}

// Login throttles password sign-in (web form and REST/CLI login) and caps
// the argon2 work it can cause.
type Login struct {
	UserBurst           int           `yaml:"user_burst" doc:"sign-in attempts per user name before throttling (failures use them up; a success gives its attempt back)"`
	UserRefill          time.Duration `yaml:"user_refill" doc:"one more attempt per user name each interval once the burst is used"`
	SourceBurst         int           `yaml:"source_burst" doc:"sign-in attempts per source address before throttling"`
	SourceRefill        time.Duration `yaml:"source_refill" doc:"one more attempt per source address each interval once the burst is used"`
	MaxTracked          int           `yaml:"max_tracked" doc:"user names and sources tracked each; beyond it new ones share one bucket (memory stays bounded)"`
	MaxConcurrentHashes int           `yaml:"max_concurrent_hashes" doc:"argon2 password checks and hashes running at once (each costs 19 MiB); 0 = max(2, CPUs)"`
	HashWait            time.Duration `yaml:"hash_wait" doc:"how long a sign-in waits for a free hashing slot before it is refused with 503"`
}

// Secrets configures encryption of secrets at rest.
type Secrets struct {
	MasterKeyFile string `yaml:"master_key_file" doc:"32-byte key file sealing signing keys at rest (default <data_dir>/master.key, created 0600); GATEHOUSE_MASTER_KEY (base64) takes precedence"`
}

// STS configures the AWS-compatible STS endpoint (credential passthrough).
type STS struct {
	AccountID              string        `yaml:"account_id" doc:"12-digit AWS-style account id in every role, provider and session ARN"`
	Region                 string        `yaml:"region" doc:"region accepted in the SigV4 scope of signed STS calls (us-east-1 is always accepted too)"`
	DefaultSessionDuration time.Duration `yaml:"default_session_duration" doc:"session length when DurationSeconds is omitted (capped by the role's max session duration)"`
	SAMLAudience           string        `yaml:"saml_audience" doc:"SAML SP entity id: the Audience every assertion must name"`
	ACSURL                 string        `yaml:"acs_url" doc:"SAML assertion consumer URL that assertions must name as Recipient, and the SAML:aud trust-policy key (default <api.public_url>/saml/acs)"`
	KeyRotation            time.Duration `yaml:"key_rotation" doc:"age at which the session-token key is replaced (old keys keep verifying until their tokens expire)"`
	SAMLClockSkew          time.Duration `yaml:"saml_clock_skew" doc:"clock skew tolerated, both ways, on SAML assertion and IdP certificate validity times (at most 5m)"`
}

// S3 configures the S3-compatible gateway (the credential passthrough data
// plane). It has its own listener because path-style requests use the root.
type S3 struct {
	Listen            string        `yaml:"listen" doc:"host:port of the S3 listener; empty disables the gateway"`
	PublicURL         string        `yaml:"public_url" doc:"S3 endpoint URL that clients are told to use (gatehouse env; default http(s)://<bound s3.listen>)"`
	Region            string        `yaml:"region" doc:"region in SigV4 scopes and GetBucketLocation"`
	BaseDomain        string        `yaml:"base_domain" doc:"enables virtual-hosted-style requests for <bucket>.<base_domain>"`
	MaxObjectSize     int64         `yaml:"max_object_size" doc:"largest PutObject or part in bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" doc:"slow-client guard for S3 request headers"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" doc:"S3 keep-alive idle limit"`
	Backend           string        `yaml:"backend" doc:"local (a directory) or s3 (an S3-compatible endpoint)"`
	LocalDir          string        `yaml:"local_dir" doc:"object directory for the local backend (default <data_dir>/objects)"`
	Endpoint          string        `yaml:"endpoint" doc:"S3-compatible endpoint for the s3 backend"`
	AccessKeyID       string        `yaml:"access_key_id" doc:"storage credential of the s3 backend"`
	SecretAccessKey   string        `yaml:"secret_access_key" doc:"storage credential of the s3 backend (prefer GATEHOUSE_S3_SECRET_ACCESS_KEY)" secret:"true"`
	StageUploads      bool          `yaml:"stage_uploads" doc:"s3 backend: stage uploads and publish by copy (for servers that commit truncated bodies, e.g. versitygw 1.8)"`
	Buckets           string        `yaml:"buckets" doc:"comma-separated buckets to create at start if missing (local backend)"`
	TLS               S3TLS         `yaml:"tls"`
}

// S3TLS turns TLS on for the S3 listener (TLS 1.2 and later), so that
// aws:SecureTransport is true for requests over it.
type S3TLS struct {
	CertFile string `yaml:"cert_file" doc:"PEM certificate chain of the S3 listener; TLS is on when set together with key_file (re-read when the files change)"`
	KeyFile  string `yaml:"key_file" doc:"PEM private key of the S3 listener"`
}

// On reports whether the S3 listener serves TLS.
func (t S3TLS) On() bool { return t.CertFile != "" && t.KeyFile != "" }

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir:         "./gatehouse-data",
		ShutdownTimeout: 30 * time.Second,
		Log:             Log{Format: "text", Level: "info"},
		API: API{
			Listen:            "127.0.0.1:8080",
			MaxBodyBytes:      1 << 20,
			MaxHeaderBytes:    64 << 10,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       5 * time.Minute,
			WriteTimeout:      5 * time.Minute,
			IdleTimeout:       2 * time.Minute,
		},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		Store: Store{Driver: "sqlite"},
		Audit: Audit{
			Mode:               "group",
			Durability:         "write",
			SyncInterval:       5 * time.Millisecond,
			GroupWindow:        2 * time.Millisecond,
			CheckpointEvery:    1000,
			CheckpointInterval: 10 * time.Second,
			DenialWindow:       time.Second,
			DenialMaxSources:   4096,
		},
		Identity: Identity{
			SessionTTL:  12 * time.Hour,
			TokenMaxTTL: 90 * 24 * time.Hour,
		},
		Login: Login{
			UserBurst: 10, UserRefill: 30 * time.Second,
			SourceBurst: 60, SourceRefill: time.Second,
			MaxTracked: 10000, HashWait: 2 * time.Second,
		},
		STS: STS{
			AccountID:              "000000000000",
			Region:                 "us-east-1",
			DefaultSessionDuration: time.Hour,
			SAMLAudience:           "urn:amazon:webservices",
			KeyRotation:            24 * time.Hour,
			SAMLClockSkew:          3 * time.Minute,
		},
		S3: S3{
			Listen:            "127.0.0.1:9000",
			Region:            "us-east-1",
			MaxObjectSize:     5 << 30,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			Backend:           "local",
		},
		TrustedProxyHeader: "X-Forwarded-For",
	}
}
