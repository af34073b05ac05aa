// Package simulate is the logic of `gatehouse policy simulate`: it turns
// command-line options into an iam.SimulateInput, runs it and prints the
// decision. File reading and the clock are injected, so it is testable
// without the binary.
package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
)

// Exit codes of the simulate command.
const (
	ExitAllow   = 0
	ExitDeny    = 1
	ExitInvalid = 2
)

// Options are the command-line options.
type Options struct {
	Policies        []string // each a file name or inline JSON
	SessionPolicies []string
	Boundaries      []string
	Action          string
	Resource        string
	// Principal is the caller: "Type:value" with Type one of AWS,
	// Federated, Service or CanonicalUser (Federated:arn:aws:iam::…:saml-provider/x),
	// or a bare value whose type iam.IdentityOf infers.
	Principal string
	Context   []string // "key=value", repeated for several values
	JSON      bool
	// Now, when set, supplies aws:CurrentTime and aws:EpochTime unless the
	// context already has them.
	Now time.Time
}

// ReadFileFunc reads a named file (os.ReadFile in the binary).
type ReadFileFunc func(name string) ([]byte, error)

// Run evaluates the options, prints the result to stdout (errors to stderr)
// and returns the exit code: 0 allow, 1 deny, 2 invalid input.
func Run(o Options, readFile ReadFileFunc, stdout, stderr io.Writer) int {
	in, err := Input(o, readFile)
	if err == nil {
		var out iam.SimulateOutput
		out, err = iam.Simulate(in)
		if err == nil {
			if o.JSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				_ = enc.Encode(out)
			} else {
				fmt.Fprintf(stdout, "decision: %s\n", out.Decision)
				for _, s := range out.Statements {
					fmt.Fprintf(stdout, "statement: %s (index %d)\n", s, s.Index)
				}
				if out.BoundaryStatement != nil {
					fmt.Fprintf(stdout, "boundary: %s\n", out.BoundaryStatement)
				}
				if out.SessionStatement != nil {
					fmt.Fprintf(stdout, "session: %s\n", out.SessionStatement)
				}
				fmt.Fprintf(stdout, "reason: %s\n", out.Reason)
			}
			if out.Allowed {
				return ExitAllow
			}
			return ExitDeny
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"decision": "Invalid", "error": err.Error()})
	}
	fmt.Fprintf(stderr, "policy simulate: %v\n", err)
	return ExitInvalid
}

// Input builds the simulation input from the options.
func Input(o Options, readFile ReadFileFunc) (iam.SimulateInput, error) {
	in := iam.SimulateInput{Action: o.Action, Resource: o.Resource}
	if p := strings.TrimSpace(o.Principal); p != "" {
		in.Principals = []iam.Identity{ParsePrincipal(p)}
	}
	var errs []error
	load := func(args []string, kind string) []iam.PolicyDocument {
		var docs []iam.PolicyDocument
		for i, a := range args {
			t := strings.TrimSpace(a)
			if strings.HasPrefix(t, "{") {
				docs = append(docs, iam.PolicyDocument{Name: fmt.Sprintf("%s%d", kind, i+1), JSON: []byte(t)})
				continue
			}
			b, err := readFile(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("read %s policy: %w", kind, err))
				continue
			}
			docs = append(docs, iam.PolicyDocument{Name: strings.TrimSuffix(filepath.Base(a), filepath.Ext(a)), JSON: b})
		}
		return docs
	}
	in.Policies = load(o.Policies, "policy")
	in.SessionPolicies = load(o.SessionPolicies, "session")
	in.Boundaries = load(o.Boundaries, "boundary")
	if len(o.Policies) == 0 {
		errs = append(errs, errors.New("at least one --policy is required"))
	}
	ctx := map[string][]string{}
	for _, kv := range o.Context {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("--context %q: want key=value", kv))
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		ctx[k] = append(ctx[k], v)
	}
	if !o.Now.IsZero() {
		if _, ok := ctx["aws:currenttime"]; !ok {
			ctx["aws:currenttime"] = []string{o.Now.UTC().Format(time.RFC3339)}
		}
		if _, ok := ctx["aws:epochtime"]; !ok {
			ctx["aws:epochtime"] = []string{strconv.FormatInt(o.Now.Unix(), 10)}
		}
	}
	in.Context = ctx
	if len(errs) > 0 {
		return in, errors.Join(append([]error{iam.ErrInvalidInput}, errs...)...)
	}
	return in, nil
}

// ParsePrincipal reads a --principal value: "Type:value" with a principal
// type prefix (AWS:, Federated:, Service:, CanonicalUser:), else a bare
// value typed by iam.IdentityOf.
func ParsePrincipal(s string) iam.Identity {
	for _, t := range []string{iam.PrincipalAWS, iam.PrincipalFederated, iam.PrincipalService, iam.PrincipalCanonicalUser} {
		if v, ok := strings.CutPrefix(s, t+":"); ok {
			return iam.Identity{Type: t, ID: v}
		}
	}
	return iam.IdentityOf(s)
}
