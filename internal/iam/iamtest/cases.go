package iamtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CaseFile is one internal/iam/testdata/cases/*.json file: data-driven
// cases in the spirit of OPA's test/cases. Each case gives policies, a
// request and the wanted decision and reason substring, or a wanted parse
// error substring.
type CaseFile struct {
	Cases []PolicyCase `json:"cases"`
}

// PolicyCase is one data-driven case.
type PolicyCase struct {
	Name     string        `json:"name"`
	Policies []LayerPolicy `json:"policies"`
	Request  struct {
		Action     string              `json:"action"`
		Resource   string              `json:"resource"`
		Context    map[string][]string `json:"context"`
		Principal  string              `json:"principal"`
		Principals []Principal         `json:"principals"`
	} `json:"request"`
	Want       string `json:"want"`
	WantReason string `json:"want_reason"`
	WantError  string `json:"want_error"`
}

// LayerPolicy is a named policy document in one layer: "identity" (or
// empty), "session" or "boundary".
type LayerPolicy struct {
	Name   string          `json:"name"`
	Layer  string          `json:"layer"`
	Policy json.RawMessage `json:"policy"`
}

// Principal is a typed caller identity, as iam.Identity.
type Principal struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// NamedCase is a PolicyCase with its name qualified by its file:
// "variables/default value".
type NamedCase struct {
	ID string
	PolicyCase
}

// LoadCases reads every case file matching pattern, strictly (unknown
// fields are errors), in file-name order.
func LoadCases(pattern string) ([]NamedCase, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no case files match %s", pattern)
	}
	sort.Strings(files)
	var out []NamedCase
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var cf CaseFile
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cf); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		base := strings.TrimSuffix(filepath.Base(file), ".json")
		for _, c := range cf.Cases {
			out = append(out, NamedCase{ID: base + "/" + c.Name, PolicyCase: c})
		}
	}
	return out, nil
}

// DefaultPrincipal is the caller an oracle case gets when the data-driven
// case names none.
const DefaultPrincipal = "arn:aws:sts::123456789012:assumed-role/data-role/alice"

// OracleCase converts c to the generator's Case, for the oracle. It
// reports false for cases the oracle cannot take: parse-error cases and
// cases with typed principals. Context keys with other than one value are
// sent as lists.
func (c PolicyCase) OracleCase() (Case, bool) {
	if c.WantError != "" || len(c.Request.Principals) > 0 {
		return Case{}, false
	}
	oc := Case{Action: c.Request.Action, Resource: c.Request.Resource, Principal: c.Request.Principal, Context: c.Request.Context}
	if oc.Principal == "" {
		oc.Principal = DefaultPrincipal
	}
	for k, v := range oc.Context {
		if len(v) != 1 {
			oc.Multi = append(oc.Multi, k)
		}
	}
	sort.Strings(oc.Multi)
	for _, p := range c.Policies {
		var doc map[string]any
		if err := json.Unmarshal(p.Policy, &doc); err != nil {
			return Case{}, false
		}
		switch p.Layer {
		case "", "identity":
			oc.Identity = append(oc.Identity, Doc{Name: p.Name, Policy: doc})
		case "session":
			if oc.Session != nil {
				return Case{}, false
			}
			oc.Session = doc
		case "boundary":
			oc.Boundary = append(oc.Boundary, Doc{Name: p.Name, Policy: doc})
		default:
			return Case{}, false
		}
	}
	return oc, true
}
