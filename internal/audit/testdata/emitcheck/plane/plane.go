package plane

import (
	au "example.com/fixture/audit"
)

// Each line below bypasses the builder in a different way.
func bypasses() []any {
	ok := au.NewEvent(au.CodeUsed)
	_ = ok

	out := []any{
		au.Event{Code: au.CodeUsed},
		&au.Event{},
		new(au.Event),
	}
	var zero au.Event
	list := []au.Event{{Code: au.CodeUsed}}
	return append(out, zero, list, literal())
}

func literal() au.Event { return au.Event{} }

func mutateParam(ev au.Event) au.Event {
	ev.Code = au.CodeUsed
	return ev
}

func mutateBuilt(b interface{ Event() au.Event }) {
	ev := b.Event()
	ev.Code = au.CodeUsed
	(ev).Code = ""
	other := ev
	_ = other
}
