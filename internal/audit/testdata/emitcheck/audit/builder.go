package audit

// NewEvent is the fixture's builder: its literal is allowed.
func NewEvent(c Code) Event { return Event{Code: c} }
