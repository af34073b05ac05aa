package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
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

// credentialsPath is $XDG_CONFIG_HOME/gatehouse/credentials, by default
// ~/.config/gatehouse/credentials.
func credentialsPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "gatehouse", "credentials"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate credentials: %w", err)
	}
	return filepath.Join(home, ".config", "gatehouse", "credentials"), nil
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
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".credentials-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return p, os.Rename(f.Name(), p)
}

// newLoginCmd returns `gatehouse login`: exchange a local user's password
// for a session token and store it for the admin commands.
func newLoginCmd() *cobra.Command {
	var server, username string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with a local user's password and store the session token",
		Long: `Log in with a local user's password. The password is read without echo from
the terminal, or from the first line of stdin when it is not a terminal. The
session token is stored in ~/.config/gatehouse/credentials (mode 0600), where
'gatehouse admin' finds it when no --token is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			if username == "" {
				return errors.New("--username is required")
			}
			base, err := serverBase(server)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, "Password for "+username+": ")
			if err != nil {
				return err
			}
			c := &adminClient{base: base, hc: &http.Client{Timeout: 60 * time.Second}}
			var out struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expiresAt"`
			}
			if _, err := c.do(cmd.Context(), "POST", "/api/v1/login",
				map[string]string{"username": username, "password": pw}, &out); err != nil {
				return err
			}
			creds, err := loadCredentials()
			if err != nil {
				creds = &credentials{}
			}
			if creds.Servers == nil {
				creds.Servers = map[string]credentialEntry{}
			}
			creds.Servers[base] = credentialEntry{Token: out.Token, UserName: username, ExpiresAt: out.ExpiresAt}
			p, err := saveCredentials(creds)
			if err != nil {
				return fmt.Errorf("store credentials: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s until %s; session stored in %s\n",
				base, oneLine(username), fmtTime(&out.ExpiresAt), p)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", envOr("GATEHOUSE_SERVER", "http://127.0.0.1:8080"), "server base URL (env GATEHOUSE_SERVER)")
	cmd.Flags().StringVarP(&username, "username", "u", "", "local user name")
	return cmd
}
