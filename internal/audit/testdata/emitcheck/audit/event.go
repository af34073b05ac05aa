package audit

type Code string

const (
	CodeUsed    Code = "X1"
	CodeInAudit Code = "X2"
	CodeOrphan  Code = "X3"
)

type Event struct{ Code Code }
