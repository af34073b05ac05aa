package sts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
)

type decodeResult struct {
	DecodedMessage string
}

// decodeAuthorizationMessage implements DecodeAuthorizationMessage
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_DecodeAuthorizationMessage.html)
// for the messages the S3 gateway seals into its denials. The end user a
// message is about may always decode it: it tells them why they were
// denied. Anyone else needs sts:DecodeAuthorizationMessage, decided by
// Authorize like every permission of a session. The decoded message is
// audited before it is returned.
func (s *Service) decodeAuthorizationMessage(ctx context.Context, r *http.Request, req *request, info *auditInfo) (result, *Error) {
	c, e := s.authenticate(r, info)
	if e != nil {
		return result{}, e
	}
	info.RoleARN = c.RoleARN
	msg, e := req.required("EncodedMessage")
	if e != nil {
		return result{}, e
	}
	if s.o.AuthzMessages == nil {
		return result{}, newErr(CodeInvalidAuthorizationMessage, "no-codec",
			"This server does not decode authorization messages.", "ask an administrator (gatehouse admin decode-authorization-message).")
	}
	ex, err := s.o.AuthzMessages.Decode(msg)
	if err != nil {
		return result{}, newErr(CodeInvalidAuthorizationMessage, "invalid-message",
			"The message is not an authorization message of this deployment (tampered, truncated, or sealed with another master key).",
			"pass the text after \"Encoded authorization failure message: \" unchanged.")
	}
	why := "the message is about the caller"
	if ex.UserID == "" || ex.UserID != c.PrincipalID {
		res, err := s.Authorize(ctx, c, "sts:DecodeAuthorizationMessage", "*", map[string][]string{"aws:sourceip": {remoteIP(r)}})
		if err != nil {
			return result{}, internalErr(err)
		}
		if res.Decision != iam.Allowed {
			return result{}, newErr(CodeAccessDenied, "permission",
				"The message is about another principal, and the caller is not allowed sts:DecodeAuthorizationMessage.",
				"decode messages of your own denials, or ask an administrator.")
		}
		why = "sts:DecodeAuthorizationMessage allowed: " + res.Reason()
	}
	raw, err := json.Marshal(ex)
	if err != nil {
		return result{}, internalErr(errors.Join(errors.New("sts: encode decoded message"), err))
	}
	info.Decoded, info.DecodedBy = ex, why
	return result{Action: ActionDecodeAuthorizationMessage, Body: decodeResult{DecodedMessage: string(raw)}}, nil
}
