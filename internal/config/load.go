package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-dev/gatehouse/internal/clientip"
)

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "GATEHOUSE_"

var (
	stsAccountRE = regexp.MustCompile(`^[0-9]{12}$`)
	stsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)
)

// maxConfigBytes bounds the YAML file the loader will read.
const maxConfigBytes = 1 << 20

// Error is one configuration problem, tied to its key path and source.
type Error struct {
	Path   string // key path, e.g. "api.listen"
	Source string // "file config.yaml line 3", "env GATEHOUSE_API_LISTEN", "flag", "value"
	Msg    string
}

func (e *Error) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s (%s)", e.Path, e.Msg, e.Source)
}

// Override is one command-line setting: a key path and its string value.
type Override struct {
	Path  string
	Value string
}

// Load builds the configuration from defaults, the YAML file at path (if
// non-empty), the environment (lookup is os.LookupEnv in production) and the
// overrides, then validates it. The returned error joins every problem found
// (errors.Join of *Error) and the returned Config is then unusable.
func Load(path string, lookup func(string) (string, bool), overrides []Override) (Config, error) {
	cfg := Default()
	var errs []error
	if path != "" {
		errs = append(errs, loadFile(&cfg, path)...)
	}
	if lookup != nil {
		errs = append(errs, loadEnv(&cfg, lookup)...)
	}
	for _, o := range overrides {
		if err := setPath(&cfg, o.Path, o.Value, "flag"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		cfg.applyDerived()
		errs = append(errs, cfg.Validate()...)
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// Keys lists every leaf key path with its environment variable and doc, in
// a stable order, for help output.
func Keys() [][3]string {
	var out [][3]string
	walkLeaves(reflect.TypeOf(Config{}), "", func(p string, f reflect.StructField) {
		out = append(out, [3]string{p, EnvName(p), f.Tag.Get("doc")})
	})
	return out
}

// EnvName is the environment variable that overrides key path p.
func EnvName(p string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
}

func walkLeaves(t reflect.Type, prefix string, fn func(string, reflect.StructField)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if !f.IsExported() || name == "" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			walkLeaves(f.Type, p, fn)
			continue
		}
		fn(p, f)
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func loadFile(cfg *Config, path string) []error {
	f, err := os.Open(path)
	if err != nil {
		return []error{&Error{Path: "(file)", Msg: fmt.Sprintf("cannot read config file: %v", err)}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return []error{&Error{Path: "(file)", Msg: fmt.Sprintf("cannot read config file: %v", err)}}
	}
	if len(data) > maxConfigBytes {
		return []error{&Error{Path: "(file)", Msg: fmt.Sprintf("config file larger than %d bytes", maxConfigBytes)}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []error{&Error{Path: "(file)", Source: filepath.Base(path), Msg: fmt.Sprintf("invalid YAML: %v", err)}}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var errs []error
	decodeNode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", filepath.Base(path), &errs)
	return errs
}

// decodeNode walks a YAML node into v strictly, collecting every error.
func decodeNode(n *yaml.Node, v reflect.Value, path, file string, errs *[]error) {
	src := func(n *yaml.Node) string { return fmt.Sprintf("file %s line %d", file, n.Line) }
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Struct && v.Type() != reflect.TypeOf(time.Duration(0)) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, &Error{Path: orRoot(path), Source: src(n), Msg: "expected a mapping"})
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				*errs = append(*errs, &Error{Path: p, Source: src(k), Msg: "duplicate key"})
				continue
			}
			seen[k.Value] = true
			fv, ok := fieldByYAML(v, k.Value)
			if why, gone := removedKeys[p]; !ok && gone {
				*errs = append(*errs, &Error{Path: p, Source: src(k), Msg: why})
				continue
			}
			if !ok {
				*errs = append(*errs, &Error{Path: p, Source: src(k), Msg: "unknown key" + suggest(v.Type(), k.Value)})
				continue
			}
			decodeNode(val, fv, p, file, errs)
		}
		return
	}
	if n.Kind != yaml.ScalarNode {
		*errs = append(*errs, &Error{Path: path, Source: src(n), Msg: "expected a single value"})
		return
	}
	if err := setValue(v, n.Value); err != nil {
		*errs = append(*errs, &Error{Path: path, Source: src(n), Msg: err.Error()})
	}
}

func orRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func fieldByYAML(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() && yamlName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func suggest(t reflect.Type, name string) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() {
			names = append(names, yamlName(t.Field(i)))
		}
	}
	sort.Strings(names)
	return "; known keys: " + strings.Join(names, ", ")
}

// removedKeys are keys an earlier version accepted, with why they are
// refused now: a setting that would be silently ignored is an error.
var removedKeys = map[string]string{
	"identity.admin_group": "removed: administrators are no longer the members of a named group, which SCIM could write; " +
		"grant the admin privilege with `gatehouse admin privileges grant USER admin` (docs/design/0015-admin-privilege.md)",
	"identity.scim_group": "removed: SCIM callers are no longer the members of a named group; " +
		"grant the scim privilege with `gatehouse admin privileges grant USER scim` (docs/design/0015-admin-privilege.md)",
}

func loadEnv(cfg *Config, lookup func(string) (string, bool)) []error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(removedKeys)) {
		if _, ok := lookup(EnvName(p)); ok {
			errs = append(errs, &Error{Path: p, Source: "env " + EnvName(p), Msg: removedKeys[p]})
		}
	}
	walkLeaves(reflect.TypeOf(Config{}), "", func(p string, _ reflect.StructField) {
		name := EnvName(p)
		if val, ok := lookup(name); ok {
			if err := setPath(cfg, p, val, "env "+name); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errs
}

// setPath assigns a string value to the leaf at key path p.
func setPath(cfg *Config, p, val, source string) error {
	v := reflect.ValueOf(cfg).Elem()
	for _, seg := range strings.Split(p, ".") {
		if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(time.Duration(0)) {
			return &Error{Path: p, Source: source, Msg: "unknown key"}
		}
		fv, ok := fieldByYAML(v, seg)
		if !ok {
			return &Error{Path: p, Source: source, Msg: "unknown key"}
		}
		v = fv
	}
	if v.Kind() == reflect.Struct && v.Type() != reflect.TypeOf(time.Duration(0)) {
		return &Error{Path: p, Source: source, Msg: "not a leaf key"}
	}
	if err := setValue(v, val); err != nil {
		return &Error{Path: p, Source: source, Msg: err.Error()}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 2h)", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("invalid boolean %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// applyDerived fills defaults that depend on other keys.
func (c *Config) applyDerived() {
	if c.Store.SQLitePath == "" && c.DataDir != "" {
		c.Store.SQLitePath = filepath.Join(c.DataDir, "gatehouse.db")
	}
	if c.Secrets.MasterKeyFile == "" && c.DataDir != "" {
		c.Secrets.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.S3.LocalDir == "" && c.DataDir != "" {
		c.S3.LocalDir = filepath.Join(c.DataDir, "objects")
	}
	if c.Identity.BootstrapToken == "" && c.DataDir != "" {
		c.Identity.BootstrapToken = filepath.Join(c.DataDir, "bootstrap-admin.token")
	}
	if c.API.PublicURL == "" && c.API.Listen != "" {
		c.derivedPublicURL = true
		scheme := "http"
		if c.TLS() {
			scheme = "https"
		}
		c.API.PublicURL = scheme + "://" + c.API.Listen
	}
	c.API.PublicURL = strings.TrimRight(c.API.PublicURL, "/")
	if c.STS.ACSURL == "" && c.API.PublicURL != "" {
		c.derivedACSURL = true
		c.STS.ACSURL = c.API.PublicURL + "/saml/acs"
	}
}

// BindAPI re-derives the URLs that came from api.listen once the listener is
// bound, so that "127.0.0.1:0" becomes the real port in api.public_url and
// sts.acs_url. Explicitly configured URLs are left alone.
func (c *Config) BindAPI(addr string) {
	if !c.derivedPublicURL {
		return
	}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	c.API.PublicURL = scheme + "://" + addr
	if c.derivedACSURL {
		c.STS.ACSURL = c.API.PublicURL + "/saml/acs"
	}
}

// TLS reports whether the API listener serves TLS.
func (c *Config) TLS() bool { return c.API.TLSCertFile != "" && c.API.TLSKeyFile != "" }

// AuditDir is where the audit log lives.
func (c *Config) AuditDir() string { return filepath.Join(c.DataDir, "audit") }

// Validate checks the semantic rules and returns every violation.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 10*time.Minute {
		bad("shutdown_timeout", "must be between 1ns and 10m, got %s", c.ShutdownTimeout)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	checkAddr := func(path, addr string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad(path, "must be host:port, got %q", addr)
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(path, "invalid port %q", port)
		}
		_ = host
	}
	checkAddr("api.listen", c.API.Listen)
	checkAddr("admin.listen", c.Admin.Listen)
	if c.API.Listen != "" && c.API.Listen == c.Admin.Listen && !strings.HasSuffix(c.API.Listen, ":0") {
		bad("admin.listen", "must differ from api.listen (%q)", c.API.Listen)
	}
	if u, err := url.Parse(c.API.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("api.public_url", "must be an absolute http(s) URL, got %q", c.API.PublicURL)
	}
	if (c.API.TLSCertFile == "") != (c.API.TLSKeyFile == "") {
		bad("api.tls_key_file", "tls_cert_file and tls_key_file must be set together")
	}
	if c.API.MaxBodyBytes < 1024 || c.API.MaxBodyBytes > 1<<30 {
		bad("api.max_body_bytes", "must be between 1024 and 1073741824, got %d", c.API.MaxBodyBytes)
	}
	if c.API.MaxHeaderBytes < 4096 || c.API.MaxHeaderBytes > 1<<20 {
		bad("api.max_header_bytes", "must be between 4096 and 1048576, got %d", c.API.MaxHeaderBytes)
	}
	for path, d := range map[string]time.Duration{
		"api.read_header_timeout": c.API.ReadHeaderTimeout,
		"api.read_timeout":        c.API.ReadTimeout,
		"api.write_timeout":       c.API.WriteTimeout,
		"api.idle_timeout":        c.API.IdleTimeout,
	} {
		if d <= 0 {
			bad(path, "must be positive, got %s", d)
		}
	}
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.SQLitePath == "" {
			bad("store.sqlite_path", "must be set for driver sqlite")
		}
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn", "must be set for driver postgres")
		}
	default:
		bad("store.driver", "must be sqlite or postgres, got %q", c.Store.Driver)
	}
	switch c.Audit.Mode {
	case "sync", "group":
	default:
		bad("audit.mode", "must be sync or group, got %q", c.Audit.Mode)
	}
	switch c.Audit.Durability {
	case "fsync", "write":
	default:
		bad("audit.durability", "must be fsync or write, got %q", c.Audit.Durability)
	}
	if c.Audit.SyncInterval <= 0 || c.Audit.SyncInterval > time.Second {
		bad("audit.sync_interval", "must be between 1ns and 1s, got %s", c.Audit.SyncInterval)
	}
	if c.Audit.GroupWindow <= 0 || c.Audit.GroupWindow > time.Second {
		bad("audit.group_window", "must be between 1ns and 1s, got %s", c.Audit.GroupWindow)
	}
	if c.Audit.CheckpointEvery < 1 {
		bad("audit.checkpoint_every", "must be at least 1, got %d", c.Audit.CheckpointEvery)
	}
	if c.Audit.CheckpointInterval < time.Second {
		bad("audit.checkpoint_interval", "must be at least 1s, got %s", c.Audit.CheckpointInterval)
	}
	if c.Audit.DenialWindow < 10*time.Millisecond || c.Audit.DenialWindow > time.Minute {
		bad("audit.denial_window", "must be between 10ms and 1m, got %s", c.Audit.DenialWindow)
	}
	if c.Audit.DenialMaxSources < 1 || c.Audit.DenialMaxSources > 1000000 {
		bad("audit.denial_max_sources", "must be between 1 and 1000000, got %d", c.Audit.DenialMaxSources)
	}
	c.validateLogin(bad)
	if c.Identity.SessionTTL < time.Minute || c.Identity.SessionTTL > 30*24*time.Hour {
		bad("identity.session_ttl", "must be between 1m and 720h, got %s", c.Identity.SessionTTL)
	}
	if c.Identity.TokenMaxTTL < time.Hour || c.Identity.TokenMaxTTL > 365*24*time.Hour {
		bad("identity.token_max_ttl", "must be between 1h and 8760h, got %s", c.Identity.TokenMaxTTL)
	}
	if !stsAccountRE.MatchString(c.STS.AccountID) {
		bad("sts.account_id", "must be 12 digits, got %q", c.STS.AccountID)
	}
	if !stsRegionRE.MatchString(c.STS.Region) {
		bad("sts.region", "must be a region name such as us-east-1, got %q", c.STS.Region)
	}
	if d := c.STS.DefaultSessionDuration; d < 15*time.Minute || d > 12*time.Hour || d%time.Second != 0 {
		bad("sts.default_session_duration", "must be whole seconds between 15m and 12h, got %s", d)
	}
	if c.STS.SAMLClockSkew <= 0 || c.STS.SAMLClockSkew > 5*time.Minute {
		bad("sts.saml_clock_skew", "must be in (0s, 5m], got %s", c.STS.SAMLClockSkew)
	}
	if c.STS.KeyRotation < time.Hour || c.STS.KeyRotation > 90*24*time.Hour {
		bad("sts.key_rotation", "must be between 1h and 2160h, got %s", c.STS.KeyRotation)
	}
	if _, err := clientip.New(c.TrustedProxies, c.TrustedProxyHeader); err != nil {
		bad("trusted_proxies", "%v", err)
	}
	if c.S3.Listen != "" {
		checkAddr("s3.listen", c.S3.Listen)
		if c.S3.PublicURL != "" {
			if u, err := url.Parse(c.S3.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("s3.public_url", "must be an absolute http(s) URL, got %q", c.S3.PublicURL)
			}
		}
		if (c.S3.TLS.CertFile == "") != (c.S3.TLS.KeyFile == "") {
			bad("s3.tls.key_file", "cert_file and key_file must be set together")
		}
		if c.S3.Listen == c.API.Listen || c.S3.Listen == c.Admin.Listen {
			if !strings.HasSuffix(c.S3.Listen, ":0") {
				bad("s3.listen", "must differ from api.listen and admin.listen (%q)", c.S3.Listen)
			}
		}
		if c.S3.Region == "" {
			bad("s3.region", "must not be empty")
		}
		if c.S3.MaxObjectSize < 1 || c.S3.MaxObjectSize > 5<<40 {
			bad("s3.max_object_size", "must be between 1 and 5 TiB, got %d", c.S3.MaxObjectSize)
		}
		if c.S3.ReadHeaderTimeout <= 0 {
			bad("s3.read_header_timeout", "must be positive, got %s", c.S3.ReadHeaderTimeout)
		}
		if c.S3.IdleTimeout <= 0 {
			bad("s3.idle_timeout", "must be positive, got %s", c.S3.IdleTimeout)
		}
		switch c.S3.Backend {
		case "local":
			if c.S3.LocalDir == "" {
				bad("s3.local_dir", "must be set for backend local")
			}
		case "s3":
			if u, err := url.Parse(c.S3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("s3.endpoint", "must be an absolute http(s) URL for backend s3, got %q", c.S3.Endpoint)
			}
			if c.S3.AccessKeyID == "" || c.S3.SecretAccessKey == "" {
				bad("s3.access_key_id", "access_key_id and secret_access_key are required for backend s3")
			}
		default:
			bad("s3.backend", "must be local or s3, got %q", c.S3.Backend)
		}
	}
	if strings.TrimSpace(c.STS.SAMLAudience) == "" {
		bad("sts.saml_audience", "must not be empty")
	}
	if u, err := url.Parse(c.STS.ACSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("sts.acs_url", "must be an absolute http(s) URL, got %q", c.STS.ACSURL)
	}
	return errs
}

// validateLogin checks the sign-in throttle (login.*).
func (c *Config) validateLogin(bad func(path, format string, a ...any)) {
	l := c.Login
	for _, b := range []struct {
		path string
		n    int
	}{{"login.user_burst", l.UserBurst}, {"login.source_burst", l.SourceBurst}, {"login.max_tracked", l.MaxTracked}} {
		if b.n < 1 {
			bad(b.path, "must be at least 1, got %d", b.n)
		}
	}
	for _, d := range []struct {
		path string
		d    time.Duration
	}{{"login.user_refill", l.UserRefill}, {"login.source_refill", l.SourceRefill}} {
		if d.d <= 0 || d.d > 24*time.Hour {
			bad(d.path, "must be between 1ns and 24h, got %s", d.d)
		}
	}
	if l.MaxConcurrentHashes < 0 {
		bad("login.max_concurrent_hashes", "must not be negative, got %d", l.MaxConcurrentHashes)
	}
	if l.HashWait < 0 || l.HashWait > time.Minute {
		bad("login.hash_wait", "must be between 0 and 1m, got %s", l.HashWait)
	}
}
