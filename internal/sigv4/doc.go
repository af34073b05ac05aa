// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256)
// requests for the STS endpoint and the S3 gateway, written from the AWS
// documentation ("Signing AWS API requests", IAM User Guide; "Authenticating
// Requests (AWS Signature Version 4)", Amazon S3 API Reference).
//
// A Verifier checks the Authorization header form and the presigned query
// form; it resolves credentials through a CredentialLookup that the front end
// provides (temporary credentials: the session token is verified there and
// yields the secret). The body is covered according to x-amz-content-sha256:
// a hex SHA-256 (checked eagerly for STS, at EOF for S3 via Result.Body),
// UNSIGNED-PAYLOAD (S3), or an aws-chunked stream whose every chunk and
// trailer signature, checksum trailer and decoded length Result.Body checks.
//
// Only AWS4-HMAC-SHA256 is accepted; SigV2 and SigV4a are refused. See
// docs/design/0007-sigv4-verifier.md.
package sigv4
