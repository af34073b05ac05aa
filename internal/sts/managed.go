package sts

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// StoreManagedPolicies resolves PolicyArns from a store.ManagedPolicyStore:
// arn:aws:iam::<account>:policy<path><name> names the customer-managed
// policy called name (case-insensitively, as IAM names are) whose path is
// exactly path, in this gatehouse's account. Any other ARN — another
// account, an AWS-managed policy (account "aws"), a path that does not
// match — is unknown (store.ErrNotFound), never aliased onto a local policy.
type StoreManagedPolicies struct {
	st      store.ManagedPolicyStore
	account string
}

var _ ManagedPolicyResolver = (*StoreManagedPolicies)(nil)

// NewStoreManagedPolicies returns a resolver over st for accountID (empty
// means DefaultAccountID). A nil st yields nil, which the Service treats as
// "managed policies not configured".
func NewStoreManagedPolicies(st store.ManagedPolicyStore, accountID string) ManagedPolicyResolver {
	if st == nil {
		return nil
	}
	if accountID == "" {
		accountID = DefaultAccountID
	}
	return &StoreManagedPolicies{st: st, account: accountID}
}

// ManagedPolicy implements ManagedPolicyResolver.
func (m *StoreManagedPolicies) ManagedPolicy(ctx context.Context, arn string) (string, error) {
	prefix := "arn:aws:iam::" + m.account + ":policy/"
	if !strings.HasPrefix(arn, prefix) {
		return "", fmt.Errorf("managed policy %s: not in account %s: %w", arn, m.account, store.ErrNotFound)
	}
	rest := arn[len(prefix)-1:] // "/path/.../name"
	i := strings.LastIndexByte(rest, '/')
	path, name := rest[:i+1], rest[i+1:]
	if name == "" {
		return "", fmt.Errorf("managed policy %s: no name: %w", arn, store.ErrNotFound)
	}
	p, err := m.st.GetManagedPolicyByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("managed policy %s: %w", arn, err)
	}
	if p.Path != path {
		return "", fmt.Errorf("managed policy %s: path is %s: %w", arn, p.Path, store.ErrNotFound)
	}
	return p.Document, nil
}
