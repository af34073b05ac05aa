package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// envDataDir names the data directory when --data-dir is not given.
const envDataDir = "GATEHOUSE_DATA_DIR"

// Data directories of `gatehouse serve` and `gatehouse demo` by default.
const (
	serveDataDir = "./gatehouse-data"
	demoDataDir  = "./gatehouse-demo"
)

// defaultDataDir is the data directory the audit commands read without
// --data-dir: $GATEHOUSE_DATA_DIR, else the one a server started in this
// directory wrote: ./gatehouse-data (gatehouse serve), or, when only it
// exists, ./gatehouse-demo (gatehouse demo). Without either it is
// ./gatehouse-data, and the command reports that no log is there.
func defaultDataDir() string {
	if d := os.Getenv(envDataDir); d != "" {
		return d
	}
	if _, err := os.Stat(serveDataDir); err != nil {
		if fi, err := os.Stat(demoDataDir); err == nil && fi.IsDir() {
			return demoDataDir
		}
	}
	return serveDataDir
}

// newAuditCmd returns `gatehouse audit` with verify, search and export.
// They read <data-dir>/audit directly and need no running server.
func newAuditCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, search and export the tamper-evident audit log",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "data directory (env "+envDataDir+"; default "+serveDataDir+
		", or "+demoDataDir+" when only the demo's exists); the audit log is in <data-dir>/audit")
	auditDir := func() string {
		if dataDir == "" {
			dataDir = defaultDataDir()
			fmt.Fprintf(os.Stderr, "reading the audit log in %s\n", filepath.Join(dataDir, "audit"))
		}
		return filepath.Join(dataDir, "audit")
	}
	cmd.AddCommand(newAuditVerifyCmd(auditDir), newAuditSearchCmd(auditDir), newAuditExportCmd(auditDir))
	return cmd
}

func newAuditVerifyCmd(auditDir func() string) *cobra.Command {
	var pubFlag string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain, checkpoint signatures and signed head",
		Long: `Verify reads the whole audit log and reports the first record where the
chain breaks: an edited record, a deleted or reordered one, a bad checkpoint
signature, or a log that ends before its signed head. It exits non-zero if
anything is wrong. Pin the public key with --pubkey to not trust audit.pub.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pub ed25519.PublicKey
			if pubFlag != "" {
				s := pubFlag
				if rest, ok := strings.CutPrefix(s, "@"); ok {
					b, err := os.ReadFile(rest)
					if err != nil {
						return fmt.Errorf("read --pubkey file: %w", err)
					}
					s = string(b)
				}
				var err error
				if pub, err = audit.ParsePublicKey(s); err != nil {
					return err
				}
			}
			rep, err := audit.Verify(auditDir(), pub)
			if asJSON && rep != nil {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
			}
			var p *audit.Problem
			if errors.As(err, &p) {
				if p.Line > 0 {
					return fmt.Errorf("FAILED: first bad record at line %d (seq %d): %s: %s", p.Line, p.Seq, p.Kind, p.Detail)
				}
				return fmt.Errorf("FAILED: %s: %s", p.Kind, p.Detail)
			}
			if err != nil {
				return err
			}
			if rep.TornBytes > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: incomplete final line (%d bytes) not verified: a write in progress, or a crash that the next start will recover\n", rep.TornBytes)
			}
			if !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "OK: %d records, %d checkpoints, head seq %d\n", rep.Records, rep.Checkpoints, rep.HeadSeq)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubFlag, "pubkey", "", "pinned Ed25519 public key: base64, or @file (default: <audit dir>/audit.pub)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// queryFlags are the filters shared by search and export.
type queryFlags struct {
	user, action, resource, resourceType, since, until string
	limit                                              int
}

func (f *queryFlags) register(cmd *cobra.Command, defaultLimit int) {
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "actor user name or id, or impersonator")
	fl.StringVar(&f.action, "action", "", `action, exact or dotted prefix ("scim.user"), or "prefix*"`)
	fl.StringVar(&f.resource, "resource", "", "resource id or name")
	fl.StringVar(&f.resourceType, "resource-type", "", `resource type ("user", "group", "token", ...)`)
	fl.StringVar(&f.since, "since", "", "events at or after: RFC3339 time or a duration ago (24h)")
	fl.StringVar(&f.until, "until", "", "events before: RFC3339 time or a duration ago")
	fl.IntVar(&f.limit, "limit", defaultLimit, "stop after this many matches (0: no limit)")
}

func (f *queryFlags) query(now time.Time) (audit.Query, error) {
	q := audit.Query{User: f.user, Action: f.action, Resource: f.resource, ResourceType: f.resourceType, Limit: f.limit}
	var err error
	if q.Since, err = parseWhen(f.since, now); err != nil {
		return q, fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = parseWhen(f.until, now); err != nil {
		return q, fmt.Errorf("--until: %w", err)
	}
	if f.limit < 0 {
		return q, errors.New("--limit must not be negative")
	}
	return q, nil
}

// parseWhen accepts an RFC3339 time, a date (2006-01-02), or a duration
// meaning that long before now ("24h", "90m").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d.Abs()), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC3339 time nor a duration like 24h", s)
}

func newAuditSearchCmd(auditDir func() string) *cobra.Command {
	var qf queryFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:          "search",
		Short:        "Find audit events by user, action, resource and time",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query(time.Now())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_, err := audit.Export(auditDir(), out, q)
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tSEQ\tCODE\tACTION\tUSER\tDECISION\tRESOURCE\tREASON")
			n := 0
			for r, err := range audit.Search(auditDir(), q) {
				if err != nil {
					tw.Flush()
					return err
				}
				e := r.Event
				user := e.Actor.User
				if user == "" {
					user = e.Actor.UserID
				}
				if e.Actor.Impersonator != "" {
					user += " (by " + e.Actor.Impersonator + ")"
				}
				res := e.Resource.Type
				if id := firstNonEmpty(e.Resource.Name, e.Resource.ID); id != "" {
					res += ":" + id
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339),
					r.Seq, e.Code, e.Action, clean(user), e.Decision, clean(res), clean(e.Reason))
				n++
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d events\n", n)
			return nil
		},
	}
	qf.register(cmd, 100)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print matching records as JSON Lines")
	return cmd
}

func newAuditExportCmd(auditDir func() string) *cobra.Command {
	var qf queryFlags
	var outPath string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export matching audit records as JSON Lines",
		Long: `Export writes the matching event records byte for byte as stored, each with
its seq, prev and hash, so every exported line can be checked against the log.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query(time.Now())
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if outPath != "" && outPath != "-" {
				if f, err = os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					return err
				}
				w = f
			}
			n, err := audit.Export(auditDir(), w, q)
			if f != nil {
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d events\n", n)
			return nil
		},
	}
	qf.register(cmd, 0)
	cmd.Flags().StringVar(&outPath, "out", "", "output file (default stdout)")
	return cmd
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// clean keeps a table cell on one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
