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
// They read the replicas' audit directories directly and need no running
// server. --data-dir may be repeated (or comma-separated), or name a
// directory of replicas' data directories: verify and search then read every
// replica's log together, each checked with its own key.
func newAuditCmd() *cobra.Command {
	var dataDirs []string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, search and export the tamper-evident audit log",
	}
	cmd.PersistentFlags().StringSliceVar(&dataDirs, "data-dir", nil,
		"data directory (env "+envDataDir+"; default "+serveDataDir+", or "+demoDataDir+" when only the demo's exists); "+
			"the audit log is in <data-dir>/audit. Repeat it, or name a directory of replicas' data directories, to read "+
			"every replica's log together")
	replicas := func() ([]audit.Replica, error) {
		if len(dataDirs) == 0 {
			dataDirs = []string{defaultDataDir()}
			fmt.Fprintf(os.Stderr, "reading the audit log in %s\n", filepath.Join(dataDirs[0], "audit"))
		}
		return audit.FindReplicas(dataDirs)
	}
	cmd.AddCommand(newAuditVerifyCmd(replicas), newAuditSearchCmd(replicas), newAuditExportCmd(replicas))
	return cmd
}

// parsePubKeys parses --pubkey values: base64 keys, or @file.
func parsePubKeys(flags []string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, s := range flags {
		if rest, ok := strings.CutPrefix(s, "@"); ok {
			b, err := os.ReadFile(rest)
			if err != nil {
				return nil, fmt.Errorf("read --pubkey file: %w", err)
			}
			s = string(b)
		}
		pub, err := audit.ParsePublicKey(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	return out, nil
}

// verifyOutcome is the one-line verdict on one log: "OK: …", or an error
// "FAILED: …" naming the first bad record.
func verifyOutcome(rep *audit.VerifyReport, err error) (string, error) {
	var p *audit.Problem
	switch {
	case errors.As(err, &p) && p.Line > 0:
		return "", fmt.Errorf("FAILED: first bad record at line %d (seq %d): %s: %s", p.Line, p.Seq, p.Kind, p.Detail)
	case errors.As(err, &p):
		return "", fmt.Errorf("FAILED: %s: %s", p.Kind, p.Detail)
	case err != nil:
		return "", fmt.Errorf("FAILED: %w", err)
	}
	return fmt.Sprintf("OK: %d records, %d checkpoints, head seq %d", rep.Records, rep.Checkpoints, rep.HeadSeq), nil
}

func newAuditVerifyCmd(replicas func() ([]audit.Replica, error)) *cobra.Command {
	var pubFlags []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain, checkpoint signatures and signed head",
		Long: `Verify reads the whole audit log and reports the first record where the
chain breaks: an edited record, a deleted or reordered one, a bad checkpoint
signature, or a log that ends before its signed head. It exits non-zero if
anything is wrong. Pin the public key with --pubkey to not trust audit.pub.

With several replicas, each log is verified with its own key (one --pubkey
per replica, in order, when pinned), and two replicas signing with one key
are refused; every replica gets its own verdict.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := replicas()
			if err != nil {
				return err
			}
			pubs, err := parsePubKeys(pubFlags)
			if err != nil {
				return err
			}
			reps, err := audit.VerifyReplicas(rs, pubs)
			if reps == nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				var v any = reps
				if len(reps) == 1 {
					v = reps[0].Report
				}
				if err := enc.Encode(v); err != nil {
					return err
				}
			}
			var failed []string
			for i, r := range reps {
				line, ferr := verifyOutcome(r.Report, r.Err)
				if ferr != nil && len(reps) == 1 {
					return ferr
				}
				if ferr != nil {
					failed = append(failed, rs[i].Name)
					line = ferr.Error()
				}
				if r.Report != nil && r.Report.TornBytes > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: %s: incomplete final line (%d bytes) not verified: a write in progress, or a crash that the next start will recover\n", r.Replica, r.Report.TornBytes)
				}
				switch {
				case asJSON:
				case len(reps) == 1:
					fmt.Fprintln(out, line)
				default:
					fmt.Fprintf(out, "replica %s (%s): %s\n", r.Replica, r.Dir, line)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("FAILED: replica(s) %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&pubFlags, "pubkey", nil, "pinned Ed25519 public key: base64, or @file (default: <audit dir>/audit.pub); one per replica, in order")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// queryFlags are the filters shared by search and export.
type queryFlags struct {
	user, action, resource, resourceType, since, until, requestID string
	limit                                                         int
}

func (f *queryFlags) register(cmd *cobra.Command, defaultLimit int) {
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "actor user name or id, or impersonator")
	fl.StringVar(&f.action, "action", "", `action, exact or dotted prefix ("scim.user"), or "prefix*"`)
	fl.StringVar(&f.resource, "resource", "", "resource id or name")
	fl.StringVar(&f.resourceType, "resource-type", "", `resource type ("user", "group", "token", ...)`)
	fl.StringVar(&f.requestID, "request-id", "", "our request id, or the one the client sent (X-Request-Id)")
	fl.StringVar(&f.since, "since", "", "events at or after: RFC3339 time or a duration ago (24h)")
	fl.StringVar(&f.until, "until", "", "events before: RFC3339 time or a duration ago")
	fl.IntVar(&f.limit, "limit", defaultLimit, "stop after this many matches (0: no limit)")
}

func (f *queryFlags) query(now time.Time) (audit.Query, error) {
	q := audit.Query{User: f.user, Action: f.action, Resource: f.resource, ResourceType: f.resourceType,
		RequestID: f.requestID, Limit: f.limit}
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

func newAuditSearchCmd(replicas func() ([]audit.Replica, error)) *cobra.Command {
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
			rs, err := replicas()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON && len(rs) == 1 {
				_, err := audit.Export(rs[0].Dir, out, q)
				return err
			}
			if asJSON {
				return searchJSON(out, rs, q)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			replicaCol := func(name string) string {
				if len(rs) == 1 {
					return ""
				}
				return name + "\t"
			}
			fmt.Fprintln(tw, replicaCol("REPLICA")+"TIME\tSEQ\tCODE\tACTION\tUSER\tDECISION\tRESOURCE\tREASON")
			n := 0
			for r, err := range audit.SearchReplicas(rs, q) {
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
				fmt.Fprintf(tw, "%s%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", replicaCol(clean(r.Replica)), e.Time.UTC().Format(time.RFC3339),
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print matching records as JSON Lines (with several replicas, each with its replica's name)")
	return cmd
}

// searchJSON writes the records of several replicas matching q as JSON
// Lines, merged in time order, each record's fields beside "replica".
func searchJSON(w io.Writer, rs []audit.Replica, q audit.Query) error {
	enc := json.NewEncoder(w)
	for r, err := range audit.SearchReplicas(rs, q) {
		if err != nil {
			return err
		}
		if err := enc.Encode(struct {
			Replica string `json:"replica"`
			audit.Record
		}{r.Replica, r.Record}); err != nil {
			return err
		}
	}
	return nil
}

func newAuditExportCmd(replicas func() ([]audit.Replica, error)) *cobra.Command {
	var qf queryFlags
	var outPath string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export matching audit records as JSON Lines",
		Long: `Export writes the matching event records byte for byte as stored, each with
its seq, prev and hash, so every exported line can be checked against the log.
It reads one replica's log: export each replica on its own.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.query(time.Now())
			if err != nil {
				return err
			}
			rs, err := replicas()
			if err != nil {
				return err
			}
			if len(rs) != 1 {
				return fmt.Errorf("export reads one replica's log, and %d were named: export each on its own", len(rs))
			}
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if outPath != "" && outPath != "-" {
				if f, err = os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					return err
				}
				w = f
			}
			n, err := audit.Export(rs[0].Dir, w, q)
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
