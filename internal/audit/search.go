package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Query selects event records. Zero fields match everything.
type Query struct {
	// User matches the actor's user name or id, or the impersonator.
	User string
	// Action matches exactly, or as a dotted prefix ("scim.user" matches
	// "scim.user.create"); a trailing "*" makes it a plain prefix.
	Action       string
	ResourceType string
	// Resource matches the resource's id or name.
	Resource string
	// RequestID matches our request id or the one the client sent.
	RequestID string
	// Since (inclusive) and Until (exclusive) bound the event time.
	Since, Until time.Time
	// Limit stops after this many matches (0: no limit).
	Limit int
}

// Match reports whether e satisfies q.
func (q *Query) Match(e *Event) bool {
	if q.User != "" && e.Actor.User != q.User && e.Actor.UserID != q.User && e.Actor.Impersonator != q.User {
		return false
	}
	if q.Action != "" {
		if p, ok := strings.CutSuffix(q.Action, "*"); ok {
			if !strings.HasPrefix(e.Action, p) {
				return false
			}
		} else if e.Action != q.Action && !strings.HasPrefix(e.Action, q.Action+".") {
			return false
		}
	}
	if q.RequestID != "" && e.RequestID != q.RequestID && e.ClientRequestID != q.RequestID {
		return false
	}
	if q.ResourceType != "" && e.Resource.Type != q.ResourceType {
		return false
	}
	if q.Resource != "" && e.Resource.ID != q.Resource && e.Resource.Name != q.Resource {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	return true
}

// Search streams the event records in dir matching q, in log order. It
// reads the log as it is, without verifying the chain (use Verify), and
// skips an incomplete final line, so it can run against a live log.
// Iteration stops at the first error, which is yielded once.
func Search(dir string, q Query) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		_ = scanMatches(dir, q, func(r *Record, _ []byte) error {
			if !yield(*r, nil) {
				return errStop
			}
			return nil
		}, func(err error) { yield(Record{}, err) })
	}
}

// Export writes the matching event records in dir to w as JSON Lines,
// byte for byte as stored (so each keeps its seq, prev and hash), and
// returns how many it wrote.
func Export(dir string, w io.Writer, q Query) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	var werr error
	err := scanMatches(dir, q, func(_ *Record, line []byte) error {
		if _, err := bw.Write(line); err != nil {
			werr = err
			return errStop
		}
		n++
		return nil
	}, func(error) {})
	if werr != nil {
		return n, fmt.Errorf("audit: export: %w", werr)
	}
	if err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

var errStop = errors.New("stop")

func scanMatches(dir string, q Query, fn func(*Record, []byte) error, onErr func(error)) error {
	f, err := os.Open(filepath.Join(dir, LogFile))
	if err != nil {
		err = fmt.Errorf("audit: search: %w", err)
		onErr(err)
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	matches, lineNo := 0, 0
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			err = fmt.Errorf("audit: search: %w", err)
			onErr(err)
			return err
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			return nil // end, or an incomplete final line
		}
		lineNo++
		// Cheap pre-filter: only event records can match.
		if !strings.Contains(string(line[:min(len(line), 160)]), `"type":"event"`) {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.Event == nil {
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				return nil // torn final line
			}
			err = fmt.Errorf("audit: search: line %d is not an audit record", lineNo)
			onErr(err)
			return err
		}
		if !q.Match(r.Event) {
			continue
		}
		if err := fn(&r, line); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		matches++
		if q.Limit > 0 && matches >= q.Limit {
			return nil
		}
	}
}
