package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Style controls colour: on a terminal only.
type Style struct{ Color bool }

const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

func (s Style) paint(code, text string) string {
	if !s.Color || text == "" {
		return text
	}
	return code + text + reset
}

// WriteJSON writes a report as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteStatus writes the status as one table, a row per container (a pod
// without containers gets a row of its own). PORTS and FORWARDS appear when
// some pod has them. Failed and crash-looping containers stand out in the
// NOTE column, and on a terminal their rows are red (rows with other notes
// yellow); colour goes on whole lines, after alignment, so that escape
// codes cannot skew the columns.
func WriteStatus(w io.Writer, s *Status, st Style, now time.Time) error {
	if len(s.Pods) == 0 {
		_, err := fmt.Fprintf(w, "Stack %q has no pods on this runtime.\n", s.Stack)
		return err
	}
	hasPorts, hasForwards, hasRevision := false, false, false
	for _, p := range s.Pods {
		hasPorts = hasPorts || len(p.Ports) > 0
		hasForwards = hasForwards || len(p.Forwards) > 0
		hasRevision = hasRevision || p.Revision != ""
	}
	cols := []string{"POD", "CONTAINER", "STATE", "RESTARTS", "AGE", "IMAGE", "DIGEST", "IP"}
	if hasPorts {
		cols = append(cols, "PORTS")
	}
	if hasForwards {
		cols = append(cols, "FORWARDS")
	}
	if hasRevision {
		cols = append(cols, "REVISION")
	}
	cols = append(cols, "NOTE")
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	colours := []string{""} // per line; the header has none
	for _, p := range s.Pods {
		row := func(cells []string, notes []string, alarm bool) {
			if hasPorts {
				cells = append(cells, joinOr(p.Ports, "-"))
			}
			if hasForwards {
				cells = append(cells, joinOr(p.Forwards, "-"))
			}
			if hasRevision {
				cells = append(cells, or(p.Revision[:min(12, len(p.Revision))], "-"))
			}
			notes = append(append([]string(nil), p.Notes...), notes...)
			cells = append(cells, strings.Join(notes, "; "))
			for i := range cells {
				cells[i] = printable(cells[i])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
			switch {
			case alarm || len(p.Notes) > 0:
				colours = append(colours, red)
			case len(notes) > 0:
				colours = append(colours, yellow)
			default:
				colours = append(colours, "")
			}
		}
		if len(p.Containers) == 0 {
			row([]string{p.Pod, "-", p.State, "-", Age(now, p.Created), "-", "-", or(p.IP, "-")}, nil, false)
		}
		for _, c := range p.Containers {
			state := c.State
			if c.ExitCode != nil {
				state = fmt.Sprintf("exited (%d)", *c.ExitCode)
			}
			row([]string{p.Pod, c.Name, state, fmt.Sprint(c.Restarts), Age(now, c.Created), c.Image,
				or(ShortDigest(c.ImageDigest), "-"), or(p.IP, "-")}, c.Notes, c.Failed || c.CrashLoop)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, line := range lines {
		line = strings.TrimRight(line, " ")
		if i < len(colours) && colours[i] != "" {
			line = st.paint(colours[i], line)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func joinOr[T fmt.Stringer](items []T, empty string) string {
	if len(items) == 0 {
		return empty
	}
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = it.String()
	}
	return strings.Join(s, ",")
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// ShortDigest abbreviates "sha256:<64 hex>" to its first 12 hex digits, as
// other container tools print image IDs.
func ShortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok {
		hex = d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// Age is how long ago t was, in one unit: 42s, 5m, 3h, 2d.
func Age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// WriteResource writes a resource as two sections, "applied spec" and
// "runtime", each a list of `path = value` lines (the JSON of the same
// struct, flattened); file contents are shown as indented blocks.
func WriteResource(w io.Writer, r *Resource, st Style) error {
	fmt.Fprintf(w, "%s (stack %q)", st.paint(bold, r.Address), r.Stack)
	if r.Configuration != "" {
		fmt.Fprintf(w, ": %s", r.Configuration)
	}
	fmt.Fprintln(w)
	for _, sec := range []struct {
		title string
		v     any
	}{{"applied spec", r.Applied}, {"runtime", r.Runtime}} {
		fmt.Fprintf(w, "\n%s\n", st.paint(bold, sec.title))
		raw, err := json.Marshal(sec.v)
		if err != nil {
			return err
		}
		var lines []string
		if err := flatten(raw, "", &lines); err != nil {
			return err
		}
		if len(lines) == 0 {
			lines = []string{"(nothing)"}
		}
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	return nil
}

// flatten turns a JSON value into `path = value` lines, keeping the order
// of the struct's fields; maps come sorted, as encoding/json writes them.
func flatten(raw json.RawMessage, path string, out *[]string) error {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) > 0 && raw[0] == '{' {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		if _, err := dec.Token(); err != nil {
			return err
		}
		empty := true
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return err
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return err
			}
			empty = false
			if err := flatten(v, joinPath(path, t.(string)), out); err != nil {
				return err
			}
		}
		if empty && path != "" {
			*out = append(*out, path+" = {}")
		}
		return nil
	}
	if string(raw) == "null" {
		if path != "" {
			*out = append(*out, path+" = null")
		}
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && strings.Contains(strings.TrimSuffix(s, "\n"), "\n") {
		*out = append(*out, path+" =")
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			*out = append(*out, "    "+printable(l))
		}
		return nil
	}
	*out = append(*out, path+" = "+string(raw))
	return nil
}

// joinPath appends a key: dotted when it is a plain name, else quoted in
// brackets (mount paths, image names).
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	}
	return path + "." + key
}

// printable is s with the control characters a runtime answer or a
// container's message may hold (a terminal's escape sequences among them)
// written as \x1b and the like: they are shown, never obeyed.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
