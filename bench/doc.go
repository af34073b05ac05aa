// Package bench compares gatehouse's IAM evaluator with cedar-go on the same
// authorization scenario. It is a separate module so that the peer's
// dependencies never enter the gatehouse binary. minio/pkg (AGPL-3.0) is
// deliberately left out: AGPL code may not be linked into this repository.
package bench
