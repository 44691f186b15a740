package logs

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

const sample = `2026-11-22T10:00:00.000000001Z stdout F one
2026-11-22T10:00:01.000000000Z stderr F err one
2026-11-22T10:00:02.000000000Z stdout P par
2026-11-22T10:00:02.100000000Z stdout P ti
2026-11-22T10:00:02.200000000Z stdout F al
not a record
2026-11-22T10:00:03.000000000Z stdout F three
2026-11-22T10:00:04.000000000Z stdout P unfinished
`

func TestSelect(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"all", Options{Tail: -1}, []string{"one", "err one", "partial", "three"}},
		{"tail", Options{Tail: 2}, []string{"partial", "three"}},
		{"tail of three", Options{Tail: 3}, []string{"err one", "partial", "three"}},
		{"tail beyond the log", Options{Tail: 10}, []string{"one", "err one", "partial", "three"}},
		{"tail zero", Options{Tail: 0}, nil},
		{"since", Options{Tail: -1, Since: time.Date(2026, 11, 22, 10, 0, 2, 0, time.UTC)}, []string{"partial", "three"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			if err := Select(NewReader(strings.NewReader(sample)), tc.opts, func(l Line) { got = append(got, l.Message) }); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A partial line at the end waits for the rest, as a follower reads on.
func TestPartialAcrossReads(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("2026-11-22T10:00:00Z stdout P hel\n2026-11-22T10:00:01Z std")
	r := NewReader(&buf)
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("a partial line came out alone: %v", err)
	}
	buf.WriteString("out F lo\n") // the rest of the half-written record
	l, err := r.Next()
	if err != nil || l.Message != "hello" {
		t.Fatalf("got %+v, %v", l, err)
	}
}

func TestFormat(t *testing.T) {
	var b strings.Builder
	l := Line{Time: time.Date(2026, 11, 22, 10, 0, 0, 5, time.UTC), Message: "hi"}
	Options{Prefix: "app | "}.Format(&b, l)
	Options{Timestamps: true}.Format(&b, l)
	if b.String() != "app | hi\n2026-11-22T10:00:00.000000005Z hi\n" {
		t.Fatalf("%q", b.String())
	}
}

// A container that never ends its line gets it in lines of MaxLine, and a
// run of bytes without a newline is no record: neither grows without end.
func TestReaderBounds(t *testing.T) {
	piece := strings.Repeat("x", 16<<10)
	var log strings.Builder
	for range 2*MaxLine/len(piece) + 1 {
		log.WriteString("2026-11-22T10:00:00Z stdout P " + piece + "\n")
	}
	log.WriteString("2026-11-22T10:00:01Z stdout F end\n")
	log.WriteString(strings.Repeat("y", 3*maxRecord) + "\n") // no record
	log.WriteString("2026-11-22T10:00:02Z stdout F after\n")

	var lens []int
	var last string
	if err := Select(NewReader(strings.NewReader(log.String())), Options{Tail: -1}, func(l Line) {
		lens = append(lens, len(l.Message))
		last = l.Message
	}); err != nil {
		t.Fatal(err)
	}
	if len(lens) != 4 || lens[0] != MaxLine || lens[1] != MaxLine || last != "after" {
		t.Fatalf("line lengths %v, last %q; want two of %d, the rest with \"end\", then \"after\"", lens, last, MaxLine)
	}
}
