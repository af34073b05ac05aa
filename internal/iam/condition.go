package iam

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// baseOp is a condition operator without its negation, IfExists suffix or
// set prefix.
type baseOp uint8

const (
	opStringEquals baseOp = iota
	opStringEqualsIgnoreCase
	opStringLike
	opNumericEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opBinaryEquals
	opIPAddress
	opArnEquals
	opArnLike
	opNull
)

type setMode uint8

const (
	setNone setMode = iota
	setForAnyValue
	setForAllValues
)

// operator is a parsed condition operator name such as
// "ForAllValues:StringNotLikeIfExists".
type operator struct {
	base     baseOp
	negated  bool
	ifExists bool
	set      setMode
}

var baseOperators = map[string]struct {
	op  baseOp
	neg bool
}{
	"StringEquals":              {opStringEquals, false},
	"StringNotEquals":           {opStringEquals, true},
	"StringEqualsIgnoreCase":    {opStringEqualsIgnoreCase, false},
	"StringNotEqualsIgnoreCase": {opStringEqualsIgnoreCase, true},
	"StringLike":                {opStringLike, false},
	"StringNotLike":             {opStringLike, true},
	"NumericEquals":             {opNumericEquals, false},
	"NumericNotEquals":          {opNumericEquals, true},
	"NumericLessThan":           {opNumericLessThan, false},
	"NumericLessThanEquals":     {opNumericLessThanEquals, false},
	"NumericGreaterThan":        {opNumericGreaterThan, false},
	"NumericGreaterThanEquals":  {opNumericGreaterThanEquals, false},
	"DateEquals":                {opDateEquals, false},
	"DateNotEquals":             {opDateEquals, true},
	"DateLessThan":              {opDateLessThan, false},
	"DateLessThanEquals":        {opDateLessThanEquals, false},
	"DateGreaterThan":           {opDateGreaterThan, false},
	"DateGreaterThanEquals":     {opDateGreaterThanEquals, false},
	"Bool":                      {opBool, false},
	"BinaryEquals":              {opBinaryEquals, false},
	"IpAddress":                 {opIPAddress, false},
	"NotIpAddress":              {opIPAddress, true},
	"ArnEquals":                 {opArnEquals, false},
	"ArnNotEquals":              {opArnEquals, true},
	"ArnLike":                   {opArnLike, false},
	"ArnNotLike":                {opArnLike, true},
	"Null":                      {opNull, false},
}

func parseOperator(name string) (operator, error) {
	var o operator
	rest := name
	switch {
	case strings.HasPrefix(rest, "ForAnyValue:"):
		o.set, rest = setForAnyValue, rest[len("ForAnyValue:"):]
	case strings.HasPrefix(rest, "ForAllValues:"):
		o.set, rest = setForAllValues, rest[len("ForAllValues:"):]
	}
	if r, ok := strings.CutSuffix(rest, "IfExists"); ok {
		o.ifExists, rest = true, r
	}
	b, ok := baseOperators[rest]
	if !ok {
		return o, fmt.Errorf("unknown condition operator %q", name)
	}
	if b.op == opNull && (o.ifExists || o.set != setNone) {
		return o, fmt.Errorf("condition operator %q: Null takes neither IfExists nor a set prefix", name)
	}
	o.base, o.negated = b.op, b.neg
	return o, nil
}

// condValue is one policy value of a condition, pre-parsed for its operator.
type condValue struct {
	pat  pattern    // string operators, Bool, Binary
	arn  arnPattern // Arn operators
	num  float64
	t    time.Time
	pfx  netip.Prefix
	bool bool
}

func (o operator) isString() bool {
	return o.base == opStringEquals || o.base == opStringEqualsIgnoreCase || o.base == opStringLike
}

func (o operator) isNumeric() bool {
	return o.base >= opNumericEquals && o.base <= opNumericGreaterThanEquals
}

func (o operator) isDate() bool {
	return o.base >= opDateEquals && o.base <= opDateGreaterThanEquals
}

// compileValue parses one policy value for this operator. Policy variables
// are recognised (when vars is set) in the string, Bool and ARN operators,
// as the AWS operator tables say; elsewhere the value must be a literal of
// the operator's type.
func (o operator) compileValue(s string, vars bool) (condValue, error) {
	var v condValue
	var err error
	switch {
	case o.isString():
		v.pat, err = parsePattern(s, parseOptions{glob: o.base == opStringLike, vars: vars})
	case o.isNumeric():
		v.num, err = strconv.ParseFloat(s, 64)
		if err != nil {
			err = fmt.Errorf("%q is not a number", s)
		}
	case o.isDate():
		v.t, err = parseDate(s)
	case o.base == opBool:
		v.pat, err = parsePattern(s, parseOptions{vars: vars})
		if err == nil && v.pat.plain {
			switch strings.ToLower(s) {
			case "true", "false":
			default:
				err = fmt.Errorf("%q is not a boolean", s)
			}
		}
	case o.base == opBinaryEquals:
		if _, e := base64.StdEncoding.DecodeString(s); e != nil {
			err = fmt.Errorf("%q is not base64", s)
		}
		v.pat = pattern{raw: s, plain: true, toks: []token{{kind: tLit, lit: s}}}
	case o.base == opIPAddress:
		v.pfx, err = parseCIDR(s)
	case o.base == opArnEquals || o.base == opArnLike:
		v.arn, err = parseARNPattern(s, parseOptions{glob: true, vars: vars})
	case o.base == opNull:
		switch strings.ToLower(s) {
		case "true":
			v.bool = true
		case "false":
		default:
			err = fmt.Errorf("Null takes \"true\" or \"false\", not %q", s)
		}
	}
	return v, err
}

func parseCIDR(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an IP address or CIDR block", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseDate reads an ISO 8601 date or date-time, or a Unix epoch in seconds.
func parseDate(s string) (time.Time, error) {
	if s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '-') && strings.IndexAny(s, "-T:") <= 0 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC(), nil
		}
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date or epoch seconds", s)
}

var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// compiledCond is one (operator, key, values) triple ready to evaluate.
type compiledCond struct {
	op     operator
	key    string
	keyLow string
	vals   []condValue
}

func compileCondition(c Condition, vars bool) (compiledCond, error) {
	op, err := parseOperator(c.Operator)
	if err != nil {
		return compiledCond{}, err
	}
	cc := compiledCond{op: op, key: c.Key, keyLow: strings.ToLower(c.Key)}
	for _, s := range c.Values {
		v, err := op.compileValue(s, vars)
		if err != nil {
			return compiledCond{}, err
		}
		cc.vals = append(cc.vals, v)
	}
	return cc, nil
}

// eval evaluates the condition against the request, with AWS semantics:
//   - Null: true when the key's presence is as the value says;
//   - a missing key: ForAllValues → true; ForAnyValue → false (even with
//     IfExists); IfExists → true; otherwise negated operators → true, the others → false;
//   - several policy values are ORed; a negated operator is the negation of
//     its positive form, so its values are effectively ANDed;
//   - without a set prefix, several context values are ORed too;
//   - a policy value whose variable has no value (no default; key missing,
//     multivalued or empty) is a null value that no context value equals or is like
//     (Variables and tags, "Policy variables with no value"): it never
//     matches the positive form, so a negated operator is true against it.
//     A Deny guarded by StringNotEquals/ArnNotLike/... therefore fires.
func (c *compiledCond) eval(r *Request) bool {
	ctx, present := r.lookup(c.key, c.keyLow)
	if c.op.base == opNull {
		// Null asks whether the key is in the context at all: a key with
		// an empty list of values is present.
		exists := present || r.has(c.key, c.keyLow)
		for i := range c.vals {
			if c.vals[i].bool != exists {
				return true
			}
		}
		return false
	}
	if !present {
		// The set prefix is the outer operator: ForAnyValue on a missing
		// key is false even with IfExists.
		switch {
		case c.op.set == setForAllValues:
			return true
		case c.op.set == setForAnyValue:
			return false
		case c.op.ifExists:
			return true
		}
		return c.op.negated
	}
	switch c.op.set {
	case setForAnyValue:
		for _, cv := range ctx {
			if c.matchAny(cv, r) != c.op.negated {
				return true
			}
		}
		return false
	case setForAllValues:
		for _, cv := range ctx {
			if c.matchAny(cv, r) == c.op.negated {
				return false
			}
		}
		return true
	}
	for _, cv := range ctx {
		if c.matchAny(cv, r) {
			return !c.op.negated
		}
	}
	return c.op.negated
}

// matchAny reports whether the context value cv matches any policy value
// under the positive form of the operator.
func (c *compiledCond) matchAny(cv string, r *Request) bool {
	switch {
	case c.op.isNumeric():
		n, err := strconv.ParseFloat(cv, 64)
		if err != nil {
			return false
		}
		for i := range c.vals {
			if compareNum(c.op.base, n, c.vals[i].num) {
				return true
			}
		}
		return false
	case c.op.isDate():
		t, err := parseDate(cv)
		if err != nil {
			return false
		}
		for i := range c.vals {
			if compareDate(c.op.base, t, c.vals[i].t) {
				return true
			}
		}
		return false
	case c.op.base == opIPAddress:
		a, err := netip.ParseAddr(cv)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for i := range c.vals {
			if c.vals[i].pfx.Contains(a) {
				return true
			}
		}
		return false
	}
	for i := range c.vals {
		v := &c.vals[i]
		var ok bool
		switch c.op.base {
		case opStringEquals, opStringLike, opBinaryEquals:
			ok = v.pat.matches(cv, false, r)
		case opStringEqualsIgnoreCase:
			if v.pat.plain {
				ok = strings.EqualFold(v.pat.literal(), cv)
			} else {
				ok = v.pat.matches(cv, true, r)
			}
		case opBool:
			ok = v.pat.matches(cv, true, r)
		case opArnEquals, opArnLike:
			ok = v.arn.matches(cv, r)
		}
		if ok {
			return true
		}
	}
	return false
}

func compareNum(op baseOp, ctx, pol float64) bool {
	switch op {
	case opNumericEquals:
		return ctx == pol
	case opNumericLessThan:
		return ctx < pol
	case opNumericLessThanEquals:
		return ctx <= pol
	case opNumericGreaterThan:
		return ctx > pol
	case opNumericGreaterThanEquals:
		return ctx >= pol
	}
	return false
}

func compareDate(op baseOp, ctx, pol time.Time) bool {
	switch op {
	case opDateEquals:
		return ctx.Equal(pol)
	case opDateLessThan:
		return ctx.Before(pol)
	case opDateLessThanEquals:
		return !ctx.After(pol)
	case opDateGreaterThan:
		return ctx.After(pol)
	case opDateGreaterThanEquals:
		return !ctx.Before(pol)
	}
	return false
}
