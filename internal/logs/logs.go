// Package logs reads container logs in the CRI log format, the files the
// runtime writes: one line per write, "TIME STREAM TAG MESSAGE", where TAG
// P marks a partial line that the next ones continue and F a full one.
package logs

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// Line is one whole log line, partial pieces joined.
type Line struct {
	Time    time.Time
	Stream  string // stdout or stderr
	Message string
}

// MaxLine is the longest line a Reader joins from partial records: a
// container that never writes a newline gets its output in lines of this
// size, not one line that grows with it.
const MaxLine = 1 << 20

// maxRecord is the longest record read; the runtime writes at most 16 KiB
// of message a record, so anything longer is not one of its records.
const maxRecord = 64 << 10

// Reader turns CRI log records into whole lines. After io.EOF it can be
// called again: a follower of a growing file reads on where it stopped.
type Reader struct {
	br      *bufio.Reader
	pending []byte               // a record whose newline has not been written yet
	partial map[string]*partLine // by stream: a line still being continued
	skip    bool                 // the record being read is too long: drop it to its newline
}

// partLine is a line whose pieces are still arriving.
type partLine struct {
	time time.Time
	msg  strings.Builder
}

// NewReader reads CRI log records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), partial: map[string]*partLine{}}
}

// Next returns the next whole line, or io.EOF when the input has no whole
// line more for now.
func (r *Reader) Next() (Line, error) {
	for {
		rec, err := r.record()
		if err != nil {
			return Line{}, err
		}
		parts := strings.SplitN(rec, " ", 4)
		if len(parts) < 3 {
			continue // not a CRI record
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			continue
		}
		msg := ""
		if len(parts) == 4 {
			msg = parts[3]
		}
		stream, tag := parts[1], parts[2]
		p := r.partial[stream]
		if p == nil {
			if tag != "P" {
				return Line{Time: ts, Stream: stream, Message: msg}, nil
			}
			p = &partLine{time: ts}
			r.partial[stream] = p
		}
		p.msg.WriteString(msg)
		if tag != "P" || p.msg.Len() >= MaxLine {
			delete(r.partial, stream)
			return Line{Time: p.time, Stream: stream, Message: p.msg.String()}, nil
		}
	}
}

// record reads the next whole record, without its newline; io.EOF leaves
// an unfinished one waiting.
func (r *Reader) record() (string, error) {
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !r.skip {
			r.pending = append(r.pending, chunk...)
		}
		switch {
		case err == nil:
			rec, skipped := r.pending, r.skip
			r.pending, r.skip = r.pending[:0], false
			if skipped {
				continue
			}
			return string(rec[:len(rec)-1]), nil
		case err == bufio.ErrBufferFull:
		case err == io.EOF:
			return "", io.EOF
		default:
			return "", err
		}
		if len(r.pending) > maxRecord {
			r.pending, r.skip = r.pending[:0], true
		}
	}
}

// Select reads every whole line of r and passes on, in order, those the
// options ask for; only Tail lines are held at a time.
func Select(r *Reader, o Options, emit func(Line)) error {
	var ring []Line // the last Tail lines; from next on, the oldest first
	next := 0
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch {
		case l.Time.Before(o.Since), o.Tail == 0:
		case o.Tail < 0:
			emit(l)
		case len(ring) < o.Tail:
			ring = append(ring, l)
		default:
			ring[next] = l
			next = (next + 1) % len(ring)
		}
	}
	for i := range ring {
		emit(ring[(next+i)%len(ring)])
	}
	return nil
}

// Options select and shape lines.
type Options struct {
	Tail       int // the last Tail lines; < 0 for all
	Since      time.Time
	Timestamps bool
	Prefix     string // written before every line, e.g. "app | "
}

// Format writes a line as berth prints it.
func (o Options) Format(w io.Writer, l Line) {
	if o.Timestamps {
		fmt.Fprintf(w, "%s%s %s\n", o.Prefix, l.Time.Format(time.RFC3339Nano), l.Message)
		return
	}
	fmt.Fprintf(w, "%s%s\n", o.Prefix, l.Message)
}
