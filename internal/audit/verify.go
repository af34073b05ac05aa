package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ProblemKind classifies the first break found in an audit chain.
type ProblemKind string

const (
	// ProblemEdited: a record's content does not match its own hash.
	ProblemEdited ProblemKind = "edited"
	// ProblemSequence: a record's seq is not the next one: records were
	// deleted, duplicated or reordered.
	ProblemSequence ProblemKind = "sequence"
	// ProblemChain: a record's prev is not the hash of the record before it.
	ProblemChain ProblemKind = "chain"
	// ProblemCheckpoint: a checkpoint's signature is invalid or its statement
	// does not match the record it covers.
	ProblemCheckpoint ProblemKind = "checkpoint"
	// ProblemTruncated: the log ends before the record the signed head covers.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemHead: audit.head is missing, unsigned, or disagrees with the log.
	ProblemHead ProblemKind = "head"
	// ProblemMalformed: a line in the middle of the log is not a record.
	ProblemMalformed ProblemKind = "malformed"
)

// Problem is the first place an audit chain breaks. It is also the error
// Verify returns for a broken chain (use errors.As).
type Problem struct {
	Kind   ProblemKind `json:"kind"`
	Line   int         `json:"line"`   // 1-based line number in audit.log (0: not a line)
	Seq    uint64      `json:"seq"`    // seq written on that line, or the missing seq for truncation
	Offset int64       `json:"offset"` // byte offset of the line
	Detail string      `json:"detail"`
}

func (p *Problem) Error() string {
	if p.Line == 0 {
		return fmt.Sprintf("audit: chain broken (%s): %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("audit: chain broken at line %d, seq %d (%s): %s", p.Line, p.Seq, p.Kind, p.Detail)
}

// VerifyReport summarises a verification run.
type VerifyReport struct {
	Records     uint64        `json:"records"`     // records verified
	Events      uint64        `json:"events"`      // of which events
	Checkpoints uint64        `json:"checkpoints"` // of which checkpoints (signatures checked)
	Recoveries  uint64        `json:"recoveries"`  // of which recovery notes
	LastSeq     uint64        `json:"lastSeq"`
	LastHash    string        `json:"lastHash"`
	HeadSeq     uint64        `json:"headSeq"` // seq covered by audit.head
	HeadTime    time.Time     `json:"headTime"`
	KeyID       string        `json:"keyId"`
	TornBytes   int64         `json:"tornBytes,omitempty"` // incomplete final line ignored (crash or write in progress)
	Problem     *Problem      `json:"problem,omitempty"`
	Duration    time.Duration `json:"duration"`
}

// OK reports whether the chain verified.
func (r *VerifyReport) OK() bool { return r != nil && r.Problem == nil }

// Verify checks the audit log in dir against the public key pub (nil: read
// audit.pub from dir; pass a pinned key to not trust the directory). It reads
// the signed head first and then the log, so it can run while the log is
// being appended to.
//
// For a broken chain it returns the report with Problem set and the same
// *Problem as the error; other errors (unreadable files) return a nil report.
// An incomplete final line (a write in progress, or a crash not yet
// recovered by Open) is not verified and is reported in TornBytes.
func Verify(dir string, pub ed25519.PublicKey) (*VerifyReport, error) {
	start := time.Now()
	if pub == nil {
		var err error
		if pub, err = ReadPublicKey(dir); err != nil {
			return nil, err
		}
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: verify: public key must be 32 bytes")
	}
	rep := &VerifyReport{KeyID: KeyID(pub)}
	head, herr := readHead(dir)
	f, err := os.Open(filepath.Join(dir, LogFile))
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	if herr != nil && !errors.Is(herr, fs.ErrNotExist) {
		rep.Problem = &Problem{Kind: ProblemHead, Detail: herr.Error()}
		return rep, rep.Problem
	}
	if head != nil {
		rep.HeadSeq, rep.HeadTime = head.Seq, head.Time
		if !head.verify(pub) {
			rep.Problem = &Problem{Kind: ProblemHead, Seq: head.Seq, Detail: HeadFile + " signature is invalid for this public key"}
			return rep, rep.Problem
		}
	}
	st, p, err := scan(f, pub, head)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read %s: %w", LogFile, err)
	}
	if p == nil && head == nil && st.records > 0 {
		p = &Problem{Kind: ProblemHead, Detail: HeadFile + " is missing but the log has records (head deleted or tail truncated)"}
	}
	rep.Records, rep.Events, rep.Checkpoints, rep.Recoveries = st.records, st.events, st.checkpoints, st.recoveries
	rep.LastSeq, rep.LastHash, rep.TornBytes = st.lastSeq, hex.EncodeToString(st.lastHash[:]), st.tornBytes
	rep.Problem = p
	rep.Duration = time.Since(start)
	if p != nil {
		return rep, p
	}
	return rep, nil
}

// scanState is what a scan learned about a log: enough for Open to continue
// the chain.
type scanState struct {
	lines        int
	goodOffset   int64 // end of the last verified line
	tornBytes    int64 // bytes after goodOffset forming an incomplete or invalid final line
	records      uint64
	events       uint64
	checkpoints  uint64
	recoveries   uint64
	lastSeq      uint64
	lastHash     [32]byte
	lastCkptTime time.Time
	sinceCkpt    int // records after the last checkpoint record
}

// scan verifies a log stream. It returns the first Problem, or an error for
// I/O failures. A final line that has no newline, or that is not a record at
// all, is treated as torn (tornBytes) rather than as a problem: that is what
// a crash during an unacknowledged append leaves. A final line that parses
// but does not verify is a Problem.
func scan(r io.Reader, pub ed25519.PublicKey, head *Checkpoint) (scanState, *Problem, error) {
	var st scanState
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	var prevHex [64]byte
	hex.Encode(prevHex[:], st.lastHash[:])
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
			return st, nil, err
		}
		if len(line) == 0 {
			break
		}
		st.lines++
		if line[len(line)-1] != '\n' {
			st.tornBytes = int64(len(line))
			break
		}
		body := line[:len(line)-1]
		computed, claimed, ok := splitLine(body)
		var hdr recordHeader
		if ok {
			ok = json.Unmarshal(body, &hdr) == nil && hdr.Seq != nil
		}
		if !ok {
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				st.tornBytes = int64(len(line))
				break
			}
			return st, &Problem{Kind: ProblemMalformed, Line: st.lines, Offset: st.goodOffset, Detail: "line is not an audit record"}, nil
		}
		seq := *hdr.Seq
		bad := func(k ProblemKind, format string, args ...any) (scanState, *Problem, error) {
			return st, &Problem{Kind: k, Line: st.lines, Seq: seq, Offset: st.goodOffset, Detail: fmt.Sprintf(format, args...)}, nil
		}
		want := st.lastSeq + 1
		switch {
		case computed != claimed:
			return bad(ProblemEdited, "record content does not match its hash (record edited)")
		case seq > want:
			return bad(ProblemSequence, "expected seq %d: records deleted or reordered", want)
		case seq < want:
			return bad(ProblemSequence, "expected seq %d: records duplicated or reordered", want)
		case hdr.Prev != string(prevHex[:]):
			return bad(ProblemChain, "prev does not match the hash of the previous record (record inserted, replaced or reordered)")
		}
		switch hdr.Type {
		case TypeEvent:
			if len(hdr.Event) == 0 || hdr.Checkpoint != nil || hdr.Recovery != nil {
				return bad(ProblemMalformed, "event record without a single event payload")
			}
			st.events++
		case TypeCheckpoint:
			c := hdr.Checkpoint
			if c == nil || len(hdr.Event) != 0 || hdr.Recovery != nil {
				return bad(ProblemMalformed, "checkpoint record without a single checkpoint payload")
			}
			if c.Seq != seq-1 {
				return bad(ProblemCheckpoint, "checkpoint covers seq %d, not the previous record", c.Seq)
			}
			if c.Hash != string(prevHex[:]) {
				return bad(ProblemCheckpoint, "checkpoint signs a different hash for seq %d than the chain has (records before it were rewritten)", c.Seq)
			}
			if !c.verify(pub) {
				return bad(ProblemCheckpoint, "checkpoint signature is invalid (forged, or signed by another key than %s)", KeyID(pub))
			}
			st.checkpoints++
			st.lastCkptTime = c.Time
			st.sinceCkpt = -1
		case TypeRecovery:
			if hdr.Recovery == nil || len(hdr.Event) != 0 || hdr.Checkpoint != nil {
				return bad(ProblemMalformed, "recovery record without a single recovery payload")
			}
			st.recoveries++
		default:
			return bad(ProblemMalformed, "unknown record type %q", hdr.Type)
		}
		if head != nil && seq == head.Seq && head.Hash != hex.EncodeToString(claimed[:]) {
			return bad(ProblemHead, "record differs from the one the signed head covers (log rewritten)")
		}
		st.sinceCkpt++
		st.records++
		st.lastSeq, st.lastHash = seq, claimed
		hex.Encode(prevHex[:], claimed[:])
		st.goodOffset += int64(len(line))
	}
	if head != nil {
		if head.Seq > st.lastSeq {
			return st, &Problem{Kind: ProblemTruncated, Line: st.lines + 1, Seq: st.lastSeq + 1, Offset: st.goodOffset,
				Detail: fmt.Sprintf("log ends at seq %d but the signed head covers seq %d: records removed from the end", st.lastSeq, head.Seq)}, nil
		}
		if head.Seq == 0 && head.Hash != GenesisHash {
			return st, &Problem{Kind: ProblemHead, Detail: "genesis head has a non-zero hash"}, nil
		}
	}
	return st, nil, nil
}

// fileSize returns the size of path, 0 when it does not exist.
func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
