package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
)

// refreshBefore is how long before expiry cached credentials are replaced.
const refreshBefore = 5 * time.Minute

// credentialCheckEvery is how often cached credentials are confirmed with
// the server before they are handed out again: a revocation (user
// disabled, session revoked) stops them being handed out within this time.
const credentialCheckEvery = time.Minute

// cliClock is the CLI's clock; tests replace it.
var cliClock = time.Now

// userSession is a signed-in CLI user: the server and its session token.
type userSession struct {
	profile string
	prof    *profile
	base    string
	entry   credentialEntry
	client  *adminClient
	now     func() time.Time
}

func (f *profileFlags) session() (*userSession, error) {
	name, p, base, err := f.resolve()
	if err != nil {
		return nil, err
	}
	creds, err := loadCredentials()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var e credentialEntry
	if creds != nil {
		e = creds.Servers[base]
	}
	if e.Token == "" {
		return nil, fmt.Errorf("not signed in to %s: run 'gatehouse login --server %s'", base, base)
	}
	if !e.ExpiresAt.IsZero() && time.Now().After(e.ExpiresAt) {
		return nil, fmt.Errorf("the session for %s expired at %s: run 'gatehouse login --server %s'", base,
			e.ExpiresAt.Format(time.RFC3339), base)
	}
	return &userSession{profile: name, prof: p, base: base, entry: e, now: cliClock,
		client: newAdminClient(base, e.Token)}, nil
}

// loginHint turns an authentication failure into advice.
func (us *userSession) loginHint(err error) error {
	var se *serverError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		return fmt.Errorf("%w; sign in again with 'gatehouse login --server %s'", err, us.base)
	}
	return err
}

type roleList struct {
	Roles []websso.Entitlement `json:"roles"`
	IdP   string               `json:"idp"`
	// S3 is the server's S3 gateway, absent when it has none.
	S3 *struct {
		Endpoint string `json:"endpoint"`
		Region   string `json:"region"`
	} `json:"s3,omitempty"`
}

func (us *userSession) roles(ctx context.Context) (*roleList, error) {
	var rl roleList
	if _, err := us.client.do(ctx, "GET", "/api/v1/me/roles", nil, &rl); err != nil {
		return nil, us.loginHint(err)
	}
	return &rl, nil
}

// matchRole finds ref (ARN or name, case-insensitively) in roles.
func matchRole(roles []websso.Entitlement, ref string) (websso.Entitlement, bool) {
	for _, r := range roles {
		if r.ARN == ref || strings.EqualFold(r.Name, ref) {
			return r, true
		}
	}
	return websso.Entitlement{}, false
}

// ---- credentials and their cache ----

// processCredentials is the AWS credential_process output (version 1):
// https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html
type processCredentials struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

type cachedCredentials struct {
	Server   string             `json:"server"`
	Role     string             `json:"role"`
	RoleARN  string             `json:"roleArn"`
	UserName string             `json:"userName"`
	Session  string             `json:"session"` // hash of the gatehouse session it came from
	Creds    websso.Credentials `json:"credentials"`
	// CheckedAt is when the server last confirmed the credentials (or
	// issued them).
	CheckedAt time.Time            `json:"checkedAt"`
	Entitled  []websso.Entitlement `json:"-"`
}

// cacheDir is $GATEHOUSE_CACHE_DIR, else <$GATEHOUSE_CONFIG_DIR>/cache when
// that is set, else $XDG_CACHE_HOME/gatehouse, else ~/.cache/gatehouse.
func cacheDir() (string, error) {
	if d := os.Getenv("GATEHOUSE_CACHE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("GATEHOUSE_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "cache"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "gatehouse"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "gatehouse"), nil
}

func hashHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (us *userSession) cachePath(role string) (string, error) {
	d, err := cacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "credentials-"+hashHex(us.base, us.profile, role)+".json"), nil
}

// credentialsFor returns credentials for role ("" = the profile's default,
// else the server's default), from the cache while they have more than
// refreshBefore left, else fresh: a web-identity token minted by the
// server, exchanged at the server's STS endpoint with
// AssumeRoleWithWebIdentity over HTTP, exactly as an AWS SDK would.
// Cached credentials not confirmed by the server for credentialCheckEvery
// are checked first (confirmCached); revoked ones are dropped and replaced.
func (us *userSession) credentialsFor(ctx context.Context, role string, force bool) (*cachedCredentials, error) {
	if role == "" {
		role = us.prof.Role
	}
	path, err := us.cachePath(role)
	if err != nil {
		return nil, err
	}
	sessHash := hashHex(us.entry.Token)
	if !force {
		cc, err := us.confirmCached(ctx, path, sessHash)
		if cc != nil || err != nil {
			return cc, err
		}
	}
	var tok websso.WebIdentityToken
	if _, err := us.client.do(ctx, "POST", "/api/v1/me/web-identity-token", map[string]any{}, &tok); err != nil {
		return nil, us.loginHint(err)
	}
	var arn string
	switch {
	case role == "" && len(tok.Roles) > 0:
		arn = tok.Roles[0]
	case role == "":
		return nil, errors.New("you are not entitled to any role: ask an administrator to add the gatehouse issuer to a role's trust policy, or your IdP to grant you a role")
	case strings.HasPrefix(role, "arn:"):
		arn = role
	default:
		rl, err := us.roles(ctx)
		if err != nil {
			return nil, err
		}
		e, ok := matchRole(rl.Roles, role)
		if !ok {
			return nil, fmt.Errorf("you are not entitled to role %q; 'gatehouse roles' lists the roles you may use", role)
		}
		arn = e.ARN
	}
	creds, err := websso.AssumeRoleWithWebIdentity(ctx, &http.Client{Timeout: 60 * time.Second}, us.base+"/sts",
		websso.AssumeInput{RoleARN: arn, SessionName: awsname.SessionNameFrom(tok.UserName), Token: tok.Token})
	if err != nil {
		var se *websso.STSError
		if errors.As(err, &se) && se.Passthrough != "" {
			return nil, fmt.Errorf("%w [%s: %s]", err, websso.PassthroughHeader, se.Passthrough)
		}
		return nil, err
	}
	cc := &cachedCredentials{Server: us.base, Role: role, RoleARN: arn, UserName: tok.UserName, Session: sessHash, Creds: *creds,
		CheckedAt: us.now()}
	if err := writePrivateJSON(path, cc); err != nil {
		return nil, fmt.Errorf("cache credentials: %w", err)
	}
	return cc, nil
}

// confirmCached returns the credentials cached at path if they belong to
// the session sessHash, have more than refreshBefore left, and the server
// confirmed them within credentialCheckEvery; if that was longer ago it
// asks the server now (STS GetCallerIdentity signed with them). It returns
// nil, nil when there is nothing usable in the cache (none, stale, or
// refused by the server: the file is then removed), so the caller mints
// new credentials. If the server cannot be asked, that is the error: the
// cache is not trusted unconfirmed (fail closed).
func (us *userSession) confirmCached(ctx context.Context, path, sessHash string) (*cachedCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	var cc cachedCredentials
	now := us.now()
	if json.Unmarshal(b, &cc) != nil || cc.Session != sessHash || cc.Creds.SessionToken == "" ||
		cc.Creds.Expiration.Sub(now) <= refreshBefore {
		return nil, nil
	}
	if d := now.Sub(cc.CheckedAt); d >= 0 && d < credentialCheckEvery {
		return &cc, nil
	}
	refused, err := us.checkWithServer(ctx, cc.Creds)
	if err != nil {
		return nil, fmt.Errorf("cannot confirm the cached credentials with %s: %w", us.base, err)
	}
	if refused != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("drop refused credentials: %w", err)
		}
		fmt.Fprintf(os.Stderr, "gatehouse: the server refused the cached credentials (%s); getting new ones\n", refused)
		return nil, nil
	}
	cc.CheckedAt = now
	if err := writePrivateJSON(path, &cc); err != nil {
		return nil, fmt.Errorf("cache credentials: %w", err)
	}
	return &cc, nil
}

// checkWithServer calls STS GetCallerIdentity at the server, signed with c.
// refused is the server's error ("AccessDenied: credentials revoked: …")
// when it refuses the credentials (any 4xx answer); err is set when there
// is no such answer (network, server error).
func (us *userSession) checkWithServer(ctx context.Context, c websso.Credentials) (refused string, err error) {
	client := awssts.New(awssts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(us.base + "/sts"),
		HTTPClient:   &http.Client{Timeout: 30 * time.Second},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
		}),
		RetryMaxAttempts: 1,
	})
	_, err = client.GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	if err == nil {
		return "", nil
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode() + ": " + ae.ErrorMessage(), nil
		}
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode()), nil
	}
	return "", err
}

// ---- commands ----

func newRolesCmd() *cobra.Command {
	var pf profileFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "List the roles you may use; * marks the profile's default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			us, err := pf.session()
			if err != nil {
				return err
			}
			rl, err := us.roles(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rl)
			}
			if len(rl.Roles) == 0 {
				fmt.Fprintln(w, "You are not entitled to any role.")
				return nil
			}
			def := 0
			if us.prof.Role != "" {
				def = -1
				for i, r := range rl.Roles {
					if r.ARN == us.prof.Role || strings.EqualFold(r.Name, us.prof.Role) {
						def = i
					}
				}
			}
			rows := make([][]string, 0, len(rl.Roles))
			for i, r := range rl.Roles {
				mark := ""
				if i == def {
					mark = "*"
				}
				rows = append(rows, []string{mark, oneLine(r.Name), r.ARN, fmt.Sprint(r.MaxSessionDuration), r.Source, oneLine(r.Description)})
			}
			table(w, []string{"", "NAME", "ARN", "MAX SESSION (s)", "SOURCE", "DESCRIPTION"}, rows)
			if def < 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: the profile's default role %q is not among your roles\n", us.prof.Role)
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAssumeRoleCmd() *cobra.Command {
	var pf profileFlags
	cmd := &cobra.Command{
		Use:   "assume-role ROLE",
		Short: "Make ROLE (name or ARN) the profile's default role and fetch its credentials",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			us, err := pf.session()
			if err != nil {
				return err
			}
			rl, err := us.roles(cmd.Context())
			if err != nil {
				return err
			}
			e, ok := matchRole(rl.Roles, args[0])
			if !ok {
				return fmt.Errorf("you are not entitled to role %q; 'gatehouse roles' lists the roles you may use", args[0])
			}
			if err := updateProfile(us.profile, func(p *profile) { p.Role = e.ARN; p.Server = us.base }); err != nil {
				return fmt.Errorf("store profile: %w", err)
			}
			us.prof.Role = e.ARN
			cc, err := us.credentialsFor(cmd.Context(), e.ARN, true)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "default role of profile %s is now %s (%s)\ncredentials for %s expire at %s\n",
				us.profile, e.Name, e.ARN, cc.Creds.AssumedRoleARN, cc.Creds.Expiration.Local().Format(time.RFC3339))
			return nil
		},
	}
	pf.register(cmd)
	return cmd
}

func newCredentialProcessCmd() *cobra.Command {
	var pf profileFlags
	var role string
	cmd := &cobra.Command{
		Use:   "credential-process",
		Short: "Print AWS credential_process JSON for the profile's role (cached, refreshed 5 minutes before expiry)",
		Long: `Print temporary credentials in the AWS credential_process format (Version 1):

  [profile gatehouse]
  credential_process = gatehouse credential-process --role analyst

Credentials are cached in ~/.cache/gatehouse (mode 0600) and refreshed 5
minutes before they expire. Cached credentials are confirmed with the
server (STS GetCallerIdentity) at least once a minute; credentials the
server refuses (revoked, user disabled) are dropped and replaced. They are
obtained like an AWS SDK would: a
web-identity token from the server, then AssumeRoleWithWebIdentity at the
server's STS endpoint (<server>/sts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			us, err := pf.session()
			if err != nil {
				return err
			}
			cc, err := us.credentialsFor(cmd.Context(), role, false)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return enc.Encode(processCredentials{Version: 1, AccessKeyID: cc.Creds.AccessKeyID,
				SecretAccessKey: cc.Creds.SecretAccessKey, SessionToken: cc.Creds.SessionToken,
				Expiration: cc.Creds.Expiration.UTC().Format(time.RFC3339)})
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&role, "role", "", "role name or ARN (default: the profile's, else your first role)")
	return cmd
}

func newEnvCmd() *cobra.Command {
	var pf profileFlags
	var role string
	var noFunction bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print the shell set-up of any AWS client for the profile's role: eval \"$(gatehouse env)\"",
		Long: `Print POSIX shell lines that set up AWS clients for the profile's role:
the temporary credentials, AWS_REGION and AWS_DEFAULT_REGION (the S3
gateway's region), AWS_ENDPOINT_URL_S3 (the S3 gateway, as the server
advertises it) and AWS_ENDPOINT_URL_STS (<server>/sts). Current aws cli
releases (2.13 and later) and SDKs read those endpoint variables.

Older aws cli releases (Debian's 2.9, for one) ignore them, so the output
also defines a shell function aws that adds --endpoint-url for the s3,
s3api and sts commands, unless the command line already names one.
--no-aws-function leaves it out.

  eval "$(gatehouse env)"
  aws s3 ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			us, err := pf.session()
			if err != nil {
				return err
			}
			cc, err := us.credentialsFor(cmd.Context(), role, false)
			if err != nil {
				return err
			}
			rl, err := us.roles(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printExports(w, envExports(us.base, cc.Creds, rl))
			if !noFunction {
				fmt.Fprint(w, awsEndpointFunction)
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&role, "role", "", "role name or ARN (default: the profile's, else your first role)")
	cmd.Flags().BoolVar(&noFunction, "no-aws-function", false, "do not define the aws shell function (for aws cli 2.13 and later only)")
	return cmd
}

// envExports lists what `gatehouse env` exports: the credentials, the STS
// endpoint, and the S3 endpoint and region when the server has a gateway.
func envExports(base string, c websso.Credentials, rl *roleList) [][2]string {
	kv := [][2]string{
		{"AWS_ACCESS_KEY_ID", c.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", c.SecretAccessKey},
		{"AWS_SESSION_TOKEN", c.SessionToken},
		{"AWS_CREDENTIAL_EXPIRATION", c.Expiration.UTC().Format(time.RFC3339)},
		{"AWS_ENDPOINT_URL_STS", base + "/sts"},
	}
	region := "us-east-1"
	if rl.S3 != nil {
		kv = append(kv, [2]string{"AWS_ENDPOINT_URL_S3", rl.S3.Endpoint})
		if rl.S3.Region != "" {
			region = rl.S3.Region
		}
	}
	return append(kv, [2]string{"AWS_REGION", region}, [2]string{"AWS_DEFAULT_REGION", region})
}

// awsEndpointFunction gives aws cli releases before 2.13, which ignore
// AWS_ENDPOINT_URL_*, the endpoints `gatehouse env` exported. An explicit
// --endpoint-url on the command line wins.
const awsEndpointFunction = `# aws cli before 2.13 ignores AWS_ENDPOINT_URL_*: pass them as --endpoint-url
aws() {
  case " $* " in *" --endpoint-url"*) command aws "$@"; return ;; esac
  case "$1" in
    s3|s3api) command aws --endpoint-url "${AWS_ENDPOINT_URL_S3:?no S3 endpoint: run gatehouse env again}" "$@" ;;
    sts) command aws --endpoint-url "$AWS_ENDPOINT_URL_STS" "$@" ;;
    *) command aws "$@" ;;
  esac
}
`

// printExports writes POSIX shell export lines with single-quoted values.
func printExports(w io.Writer, kv [][2]string) {
	for _, p := range kv {
		fmt.Fprintf(w, "export %s='%s'\n", p[0], strings.ReplaceAll(p[1], "'", `'\''`))
	}
}
