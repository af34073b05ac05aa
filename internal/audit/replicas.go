package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sort"
)

// Replica is the audit log of one gatehouse replica. Every replica keeps its
// own chain and its own signing key in its own directory; several replicas
// share a store, never an audit log.
type Replica struct {
	Name string // for reports: the data directory's base name, or the path
	Dir  string // the audit directory (holding audit.log, audit.pub)
}

// FindReplicas resolves paths to the replicas' audit directories. Each path
// is one of:
//   - an audit directory (it holds audit.log or audit.pub);
//   - a data directory (it holds audit/);
//   - a directory of replicas: every subdirectory that is one of the above
//     is a replica.
//
// A path that is none of these is an error, as are two paths naming one
// directory: a log read twice would look like two replicas.
func FindReplicas(paths []string) ([]Replica, error) {
	var out []Replica
	seen := map[string]bool{}
	add := func(r Replica) error {
		abs, err := filepath.Abs(r.Dir)
		if err != nil {
			return err
		}
		if seen[abs] {
			return fmt.Errorf("audit: %s is named twice", r.Dir)
		}
		seen[abs] = true
		out = append(out, r)
		return nil
	}
	for _, p := range paths {
		if r, ok := asReplica(p); ok {
			if err := add(r); err != nil {
				return nil, err
			}
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		n := 0
		for _, e := range ents {
			if r, ok := asReplica(filepath.Join(p, e.Name())); ok && e.IsDir() {
				if err := add(r); err != nil {
					return nil, err
				}
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("audit: %s is neither an audit directory, a data directory, nor a directory of them", p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("audit: no replica named")
	}
	return out, nil
}

// asReplica reports whether p is an audit directory or a data directory.
func asReplica(p string) (Replica, bool) {
	isFile := func(name string) bool {
		st, err := os.Stat(filepath.Join(p, name))
		return err == nil && st.Mode().IsRegular()
	}
	if isFile(LogFile) || isFile(PubFile) {
		return Replica{Name: filepath.Clean(p), Dir: p}, true
	}
	sub := filepath.Join(p, "audit")
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		return Replica{Name: filepath.Base(filepath.Clean(p)), Dir: sub}, true
	}
	return Replica{}, false
}

// ReplicaReport is the verification of one replica's log.
type ReplicaReport struct {
	Replica string        `json:"replica"`
	Dir     string        `json:"dir"`
	Report  *VerifyReport `json:"report,omitempty"`
	Error   string        `json:"error,omitempty"`
	// Err is the error behind Error (a *Problem for a broken chain).
	Err error `json:"-"`
}

// VerifyReplicas verifies each replica's log with that replica's own key:
// pubs[i] for replica i when pubs is given (pinned keys, one per replica),
// else the audit.pub beside each log. It also refuses two replicas signing
// with one key, since then one replica's records could be passed off as the
// other's. It returns every report, and an error naming each replica that
// failed (nil when all verified).
func VerifyReplicas(rs []Replica, pubs []ed25519.PublicKey) ([]ReplicaReport, error) {
	if len(pubs) > 0 && len(pubs) != len(rs) {
		return nil, fmt.Errorf("audit: %d pinned keys for %d replicas: give one per replica, in order", len(pubs), len(rs))
	}
	out := make([]ReplicaReport, len(rs))
	var errs []error
	keyOwner := map[string]string{}
	for i, r := range rs {
		var pub ed25519.PublicKey
		if len(pubs) > 0 {
			pub = pubs[i]
		}
		rep, err := Verify(r.Dir, pub)
		out[i] = ReplicaReport{Replica: r.Name, Dir: r.Dir, Report: rep}
		if err == nil {
			if other, dup := keyOwner[rep.KeyID]; dup {
				err = fmt.Errorf("audit: signs with the key of replica %s (key %s): each replica must keep its own key", other, rep.KeyID)
			}
			keyOwner[rep.KeyID] = r.Name
		}
		if err != nil {
			out[i].Error, out[i].Err = err.Error(), err
			errs = append(errs, fmt.Errorf("replica %s: %w", r.Name, err))
		}
	}
	return out, errors.Join(errs...)
}

// ReplicaRecord is an event record and the replica whose log holds it.
type ReplicaRecord struct {
	Replica string
	Record
}

// SearchReplicas streams the event records matching q from every replica,
// merged in event-time order (ties in replica order), so that one request id
// can be followed across replicas. Each log is read as Search reads it;
// q.Limit bounds the merged result. Iteration stops at the first error, which
// is yielded once, naming its replica.
func SearchReplicas(rs []Replica, q Query) iter.Seq2[ReplicaRecord, error] {
	return func(yield func(ReplicaRecord, error) bool) {
		type head struct {
			i    int
			rec  Record
			next func() (Record, error, bool)
			stop func()
		}
		var heads []*head
		defer func() {
			for _, h := range heads {
				h.stop()
			}
		}()
		advance := func(h *head) (bool, error) {
			rec, err, ok := h.next()
			if !ok {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("replica %s: %w", rs[h.i].Name, err)
			}
			h.rec = rec
			return true, nil
		}
		for i, r := range rs {
			next, stop := iter.Pull2(Search(r.Dir, q))
			h := &head{i: i, next: next, stop: stop}
			heads = append(heads, h)
		}
		live := heads[:0:0]
		for _, h := range heads {
			ok, err := advance(h)
			if err != nil {
				yield(ReplicaRecord{}, err)
				return
			}
			if ok {
				live = append(live, h)
			}
		}
		for n := 0; len(live) > 0 && (q.Limit == 0 || n < q.Limit); n++ {
			sort.SliceStable(live, func(a, b int) bool {
				ta, tb := live[a].rec.Event.Time, live[b].rec.Event.Time
				return ta.Before(tb) || (ta.Equal(tb) && live[a].i < live[b].i)
			})
			h := live[0]
			if !yield(ReplicaRecord{Replica: rs[h.i].Name, Record: h.rec}, nil) {
				return
			}
			ok, err := advance(h)
			if err != nil {
				yield(ReplicaRecord{}, err)
				return
			}
			if !ok {
				live = live[1:]
			}
		}
	}
}
