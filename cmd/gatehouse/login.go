package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/internal/api/apiclient"
)

// credentials is the file written by `gatehouse login`: one session token
// per server base URL. It is created with mode 0600 in a 0700 directory.
type credentials struct {
	Servers map[string]credentialEntry `json:"servers"`
}

type credentialEntry struct {
	Token     string    `json:"token"`
	UserName  string    `json:"userName,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// configDir is where the CLI keeps its files: $GATEHOUSE_CONFIG_DIR, else
// $XDG_CONFIG_HOME/gatehouse, else ~/.config/gatehouse.
func configDir() (string, error) {
	if d := os.Getenv("GATEHOUSE_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "gatehouse"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate the config directory: %w", err)
	}
	return filepath.Join(home, ".config", "gatehouse"), nil
}

// credentialsPath is <config dir>/credentials.
func credentialsPath() (string, error) {
	d, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "credentials"), nil
}

func loadCredentials() (*credentials, error) {
	p, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	return &c, nil
}

// saveCredentials writes c atomically (temp file + rename), mode 0600.
func saveCredentials(c *credentials) (string, error) {
	p, err := credentialsPath()
	if err != nil {
		return "", err
	}
	return p, writePrivateJSON(p, c)
}

// writePrivateJSON writes v as JSON to p atomically with mode 0600, in a
// 0700 directory.
func writePrivateJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// ---- profiles (<config dir>/config) ----

// cliConfig is <config dir>/config: named profiles.
type cliConfig struct {
	Profiles map[string]*profile `json:"profiles"`
}

// profile is one named set of CLI defaults.
type profile struct {
	Server string `json:"server,omitempty"`
	// Role is the default role (ARN or name) for credential-process and env.
	Role string `json:"role,omitempty"`
	IdP  string `json:"idp,omitempty"`
}

func configPath() (string, error) {
	d, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config"), nil
}

func loadConfig() (*cliConfig, error) {
	p, err := configPath()
	if err != nil {
		return nil, err
	}
	c := &cliConfig{Profiles: map[string]*profile{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	if c.Profiles == nil {
		c.Profiles = map[string]*profile{}
	}
	return c, nil
}

func saveConfig(c *cliConfig) error {
	p, err := configPath()
	if err != nil {
		return err
	}
	return writePrivateJSON(p, c)
}

// profileFlags are the flags every end-user command shares.
type profileFlags struct {
	server  string
	profile string
}

func (f *profileFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "server base URL (env GATEHOUSE_SERVER; default: the profile's, else http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "CLI profile (env GATEHOUSE_PROFILE; default \"default\")")
}

func (f *profileFlags) name() string {
	switch {
	case f.profile != "":
		return f.profile
	case os.Getenv("GATEHOUSE_PROFILE") != "":
		return os.Getenv("GATEHOUSE_PROFILE")
	}
	return "default"
}

// resolve returns the profile name, the profile (never nil) and the server
// base URL: --server, $GATEHOUSE_SERVER, the profile's, or the default.
func (f *profileFlags) resolve() (string, *profile, string, error) {
	cfg, err := loadConfig()
	if err != nil {
		return "", nil, "", err
	}
	name := f.name()
	p := cfg.Profiles[name]
	if p == nil {
		p = &profile{}
	}
	server := f.server
	if server == "" {
		server = os.Getenv("GATEHOUSE_SERVER")
	}
	if server == "" {
		server = p.Server
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	base, err := serverBase(server)
	return name, p, base, err
}

// updateProfile applies edit to the named profile and saves the config.
func updateProfile(name string, edit func(p *profile)) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	p := cfg.Profiles[name]
	if p == nil {
		p = &profile{}
		cfg.Profiles[name] = p
	}
	edit(p)
	return saveConfig(cfg)
}

// ---- login ----

// openBrowser opens url in the user's browser ($BROWSER, else the
// platform's opener). Tests replace it.
var openBrowser = func(u string) error {
	if b := os.Getenv("BROWSER"); b != "" {
		return exec.Command(b, u).Start()
	}
	switch runtime.GOOS {
	case "darwin":
		return exec.Command("open", u).Start()
	case "windows":
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", u).Start()
	}
	return exec.Command("xdg-open", u).Start()
}

// newLoginCmd returns `gatehouse login`.
func newLoginCmd() *cobra.Command {
	var pf profileFlags
	var idp, username string
	var passwordStdin, noBrowser bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in (SSO through the browser, or a local password) and store the session",
		Long: `Sign in to a gatehouse server and store the session token in
<config dir>/credentials (mode 0600), where the other commands find it.

With --username (or --idp password) the local password is read without echo
from the terminal, or from the first line of stdin (--password-stdin, or
whenever stdin is not a terminal). Otherwise the browser flow runs: a
loopback listener on 127.0.0.1 receives a one-time code when the sign-in at
the server's /login page (SAML or OIDC IdP, or password) succeeds, and the
CLI exchanges it, with its PKCE verifier, for the session.

The config dir is $GATEHOUSE_CONFIG_DIR, else $XDG_CONFIG_HOME/gatehouse,
else ~/.config/gatehouse. The server is remembered in the profile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			name, _, base, err := pf.resolve()
			if err != nil {
				return err
			}
			switch idp {
			case "", "password", "saml", "oidc":
			default:
				return fmt.Errorf("--idp must be password, saml or oidc, not %q", idp)
			}
			if idp == "" && username != "" {
				idp = "password"
			}
			var out loginResult
			if idp == "password" {
				if username == "" {
					return errors.New("--username is required with --idp password")
				}
				pw, err := readLoginPassword(cmd, username, passwordStdin)
				if err != nil {
					return err
				}
				c := newAdminClient(base, "")
				res, err := c.api.Login(cmd.Context(), apiclient.LoginRequest{Username: username, Password: &pw})
				var sess apiclient.LoginSession
				if _, err := c.read(res, err, &sess); err != nil {
					return err
				}
				out = loginResult{Token: sess.Token, ExpiresAt: sess.ExpiresAt, UserName: username}
			} else {
				if out, err = browserLogin(cmd, base, idp, noBrowser, timeout); err != nil {
					return err
				}
			}
			creds, err := loadCredentials()
			if err != nil {
				creds = &credentials{}
			}
			if creds.Servers == nil {
				creds.Servers = map[string]credentialEntry{}
			}
			creds.Servers[base] = credentialEntry{Token: out.Token, UserName: out.UserName, ExpiresAt: out.ExpiresAt}
			p, err := saveCredentials(creds)
			if err != nil {
				return fmt.Errorf("store credentials: %w", err)
			}
			if err := updateProfile(name, func(p *profile) {
				p.Server = base
				if idp != "" {
					p.IdP = idp
				}
			}); err != nil {
				return fmt.Errorf("store profile: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s until %s; session stored in %s\n",
				base, oneLine(out.UserName), fmtTime(&out.ExpiresAt), p)
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&idp, "idp", "", "how to sign in: password, saml or oidc (default: password with --username, else the browser)")
	cmd.Flags().StringVarP(&username, "username", "u", "", "local user name (password login)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the sign-in URL instead of opening a browser")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the browser sign-in")
	return cmd
}

type loginResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	UserName  string    `json:"userName"`
}

// readLoginPassword asks once, without echo, on a terminal; otherwise it
// reads the first line of stdin.
func readLoginPassword(cmd *cobra.Command, username string, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		errw := cmd.ErrOrStderr()
		fmt.Fprintf(errw, "Password for %s: ", oneLine(username))
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(errw)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return readPasswordLine(in)
}

func randomURLString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// browserLogin runs the loopback flow (RFC 8252 §7.3 with PKCE, RFC 7636):
// listen on 127.0.0.1:0, open <server>/login with the port, a random state
// and the S256 challenge, wait for /callback?code&state, check the state,
// then exchange the code and verifier at POST /sso/cli/token.
func browserLogin(cmd *cobra.Command, base, idp string, noBrowser bool, timeout time.Duration) (loginResult, error) {
	var out loginResult
	state, err := randomURLString(24)
	if err != nil {
		return out, err
	}
	verifier, err := randomURLString(32)
	if err != nil {
		return out, err
	}
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return out, fmt.Errorf("loopback listener: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	type cb struct {
		code string
		err  error
	}
	got := make(chan cb, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res cb
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			res.err = errors.New("sign-in callback refused: state mismatch (the callback did not come from the sign-in this command started)")
			http.Error(w, "gatehouse login: state mismatch; this callback is not for the sign-in in progress.", http.StatusBadRequest)
		case q.Get("code") == "":
			res.err = errors.New("sign-in callback carried no code")
			http.Error(w, "gatehouse login: no code.", http.StatusBadRequest)
		default:
			res.code = q.Get("code")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html><title>gatehouse</title><p>Signed in. You can close this window and return to the terminal.</p>")
		}
		select {
		case got <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	v := url.Values{"cli_port": {fmt.Sprint(port)}, "state": {state}, "code_challenge": {challenge}}
	if idp != "" {
		v.Set("idp", idp)
	}
	loginURL := base + "/login?" + v.Encode()
	errw := cmd.ErrOrStderr()
	if noBrowser {
		fmt.Fprintf(errw, "Open this URL in a browser to sign in:\n\n  %s\n\n", loginURL)
	} else {
		fmt.Fprintf(errw, "Opening the browser to sign in. If it does not open, visit:\n\n  %s\n\n", loginURL)
		if err := openBrowser(loginURL); err != nil {
			fmt.Fprintf(errw, "(could not open a browser: %v)\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	var res cb
	select {
	case res = <-got:
	case <-ctx.Done():
		return out, fmt.Errorf("no sign-in within %s", timeout)
	}
	if res.err != nil {
		return out, res.err
	}
	c := newAdminClient(base, "")
	if _, err := c.do(cmd.Context(), "POST", "/sso/cli/token",
		map[string]string{"code": res.code, "code_verifier": verifier}, &out); err != nil {
		return out, err
	}
	return out, nil
}
