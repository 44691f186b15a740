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

// Reader turns CRI log records into whole lines. After io.EOF it can be
// called again: a follower of a growing file reads on where it stopped.
type Reader struct {
	br      *bufio.Reader
	pending string           // a record whose newline has not been written yet
	partial map[string]*Line // by stream: a line still being continued
}

// NewReader reads CRI log records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), partial: map[string]*Line{}}
}

// Next returns the next whole line, or io.EOF when the input has no whole
// line more for now.
func (r *Reader) Next() (Line, error) {
	for {
		chunk, err := r.br.ReadString('\n')
		r.pending += chunk
		if err == io.EOF {
			return Line{}, io.EOF // an unfinished record waits in pending
		}
		if err != nil {
			return Line{}, err
		}
		rec := strings.TrimSuffix(r.pending, "\n")
		r.pending = ""
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
		if p := r.partial[stream]; p != nil {
			p.Message += msg
			if tag != "P" {
				delete(r.partial, stream)
				return *p, nil
			}
			continue
		}
		line := Line{Time: ts, Stream: stream, Message: msg}
		if tag == "P" {
			r.partial[stream] = &line
			continue
		}
		return line, nil
	}
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

// Select reads every whole line of r and keeps those the options ask for.
func Select(r *Reader, o Options) ([]Line, error) {
	var out []Line
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if l.Time.Before(o.Since) {
			continue
		}
		out = append(out, l)
		if o.Tail >= 0 && len(out) > o.Tail {
			out = out[1:]
		}
	}
	return out, nil
}
