// Package render prints plans for people (text) and programs (JSON). It
// reads the plan's data and decides nothing.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// Style controls colour.
type Style struct{ Color bool }

const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return code + text + reset
}

func (s Style) symbol(a planner.Action) string {
	sym := fmt.Sprintf("%3s", a.Symbol())
	switch a {
	case planner.Create:
		return s.paint(green, sym)
	case planner.Destroy:
		return s.paint(red, sym)
	case planner.Replace:
		return s.paint(yellow, sym)
	case planner.Restart, planner.Update, planner.Stop:
		return s.paint(yellow, sym)
	}
	return sym
}

var verbs = map[planner.Action]string{
	planner.Create:  "will be created",
	planner.Destroy: "will be destroyed",
	planner.Replace: "must be replaced",
	planner.Restart: "will be restarted",
	planner.Update:  "will be updated in place",
	planner.Stop:    "will be stopped",
}

// Text writes the plan as a person reads it: one block per change, the
// reasons, the fields before and after, the warnings and a summary line.
func Text(w io.Writer, plan *planner.Plan, st Style) {
	if !plan.HasChanges() {
		fmt.Fprintf(w, "%s Stack %q matches the configuration; berth would change nothing.\n", st.paint(bold, "No changes."), plan.Stack)
		writeNotes(w, plan, st)
		return
	}
	fmt.Fprintf(w, "berth will perform the following actions on stack %q:\n", plan.Stack)
	for _, fc := range plan.Files {
		if fc.Action.Changes() {
			writeFile(w, fc, st)
		}
	}
	for _, ic := range plan.Images {
		if ic.Action.Changes() {
			writeImage(w, ic, st)
		}
	}
	for _, pc := range plan.Pods {
		if pc.Action.Changes() {
			writePod(w, pc, st)
			continue
		}
		for _, cc := range pc.Containers {
			if cc.Action.Changes() {
				writeContainer(w, pc, cc, st)
			}
		}
	}
	writeNotes(w, plan, st)
	s := plan.Summary()
	fmt.Fprintf(w, "\n%s %d to add, %d to change, %d to destroy.\n", st.paint(bold, "Plan:"), s.Add, s.Change, s.Destroy)
	if b := breakdown(plan); b != "" {
		fmt.Fprintf(w, "      (each pod, container, image and file counts as one: %s)\n", b)
	}
}

// breakdown says what the summary's numbers are made of, by kind of
// resource, when they mix kinds ("1 pod and 1 container to add").
func breakdown(plan *planner.Plan) string {
	kinds := []string{"pod", "container", "image", "mirror", "network"}
	counts := map[string]map[string]int{} // "add"/"change"/"destroy" → kind → n
	seen := map[string]bool{}
	count := func(what, kind string) {
		if counts[what] == nil {
			counts[what] = map[string]int{}
		}
		counts[what][kind]++
		seen[kind] = true
	}
	for c := range plan.Changes() {
		kind := "pod"
		switch {
		case c.Image != nil:
			kind = "image"
		case c.File != nil:
			kind = c.File.Kind
		case c.Container != nil:
			kind = "container"
		}
		switch c.Action {
		case planner.Create:
			count("add", kind)
		case planner.Destroy:
			count("destroy", kind)
		case planner.Replace:
			count("add", kind)
			count("destroy", kind)
		case planner.Restart, planner.Update, planner.Stop:
			count("change", kind)
		}
	}
	if len(seen) < 2 {
		return ""
	}
	var parts []string
	for _, what := range []string{"add", "change", "destroy"} {
		var items []string
		for _, kind := range kinds {
			if n := counts[what][kind]; n > 0 {
				noun := kind
				if n > 1 {
					noun += "s"
				}
				items = append(items, fmt.Sprintf("%d %s", n, noun))
			}
		}
		switch len(items) {
		case 0:
		case 1:
			parts = append(parts, items[0]+" to "+what)
		default:
			parts = append(parts, strings.Join(items[:len(items)-1], ", ")+" and "+items[len(items)-1]+" to "+what)
		}
	}
	return strings.Join(parts, "; ")
}

// writeImage shows an image block's pull, import or pin.
func writeImage(w io.Writer, ic *planner.ImageChange, st Style) {
	verb := "will be pulled"
	switch {
	case ic.Action == planner.Destroy:
		verb = "will be removed"
	case ic.Import != "":
		verb = "will be imported"
	case ic.Action == planner.Update:
		verb = "will be updated in place"
	}
	fmt.Fprintf(w, "\n  # %s %s\n", ic.Address, verb)
	fmt.Fprintf(w, "%s image %q {\n", st.symbol(ic.Action), ic.Ref)
	writeReasons(w, ic.Reasons, "      ")
	if ic.Import != "" {
		fmt.Fprintf(w, "      + source = %s\n", value(ic.Import))
	}
	if ic.Platform != "" {
		fmt.Fprintf(w, "      + platform = %s\n", value(ic.Platform))
	}
	if ic.Pin != nil {
		fmt.Fprintf(w, "      %s pin = %v\n", st.paint(yellow, "~"), *ic.Pin)
	}
	fmt.Fprintf(w, "    }\n")
}

// writeFile shows a host file's change as a unified diff.
func writeFile(w io.Writer, fc *planner.FileChange, st Style) {
	verb := map[planner.Action]string{planner.Create: "will be written", planner.Update: "will be rewritten", planner.Destroy: "will be removed"}[fc.Action]
	fmt.Fprintf(w, "\n  # %s %s\n", fc.Address, verb)
	fmt.Fprintf(w, "%s file %q {\n", st.symbol(fc.Action), fc.Path)
	writeReasons(w, fc.Reasons, "      ")
	for _, line := range strings.Split(strings.TrimRight(fc.Diff, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "+++"), line == "":
			continue
		case strings.HasPrefix(line, "+"):
			line = st.paint(green, line)
		case strings.HasPrefix(line, "-"):
			line = st.paint(red, line)
		}
		fmt.Fprintf(w, "      %s\n", line)
	}
	fmt.Fprintf(w, "    }\n")
}

func writePod(w io.Writer, pc *planner.PodChange, st Style) {
	verb, sym := verbs[pc.Action], st.symbol(pc.Action)
	if pc.StartFirst {
		// Terraform's marker for create_before_destroy.
		verb, sym = verb+" (start first, then stop the old)", st.paint(yellow, "+/-")
	}
	fmt.Fprintf(w, "\n  # %s %s\n", pc.Address, verb)
	fmt.Fprintf(w, "%s pod %q {\n", sym, pc.Name)
	writeReasons(w, pc.Reasons, "      ")
	if pc.StartFirst {
		fmt.Fprintf(w, "      # the old pod serves until the new one is ready, then forwards move to the new one and the old drains\n")
	} else if pc.StopFirstBecause != "" {
		fmt.Fprintf(w, "      # update_order = \"start_first\", but stopped first this time: %s\n", pc.StopFirstBecause)
	}
	for _, dep := range pc.WaitFor {
		fmt.Fprintf(w, "      # starts once %s is ready (its readiness probes pass)\n", spec.PodAddress(dep))
	}
	if pc.Actual != nil {
		if rev := pc.Actual.Sandbox.GetLabels()[spec.LabelRevision]; rev != "" {
			fmt.Fprintf(w, "      # running what commit %s made (berth watch --git)\n", rev[:min(12, len(rev))])
		}
	}
	if pc.MadeOn != "" {
		fmt.Fprintf(w, "      # made on network %q, not the runtime's current one: torn down with that configuration put back\n", pc.MadeOn)
	}
	writeFields(w, pc.Action, pc.Fields, st, "      ")
	for _, cc := range pc.Containers {
		sym := strings.TrimSpace(st.symbol(cc.Action))
		if cc.Action == planner.Destroy {
			fmt.Fprintf(w, "      %s container %q\n", sym, cc.Name)
			continue
		}
		fmt.Fprintf(w, "      %s container %q {\n", sym, cc.Name)
		writeReasons(w, cc.Reasons, "          ")
		writeFields(w, cc.Action, cc.Fields, st, "          ")
		writePull(w, cc, "          ")
		fmt.Fprintf(w, "        }\n")
	}
	fmt.Fprintf(w, "    }\n")
}

func writeContainer(w io.Writer, pc *planner.PodChange, cc *planner.ContainerChange, st Style) {
	fmt.Fprintf(w, "\n  # %s %s\n", cc.Address, verbs[cc.Action])
	fmt.Fprintf(w, "%s container %q in pod %q {\n", st.symbol(cc.Action), cc.Name, pc.Name)
	writeReasons(w, cc.Reasons, "      ")
	if cc.Action != planner.Restart {
		writeFields(w, cc.Action, cc.Fields, st, "      ")
	}
	writePull(w, cc, "      ")
	fmt.Fprintf(w, "    }\n")
}

// writeReasons prints why, except for creates: "will be created" says it.
func writeReasons(w io.Writer, reasons []planner.Reason, indent string) {
	for _, r := range reasons {
		if r.Code != planner.ReasonDeclared {
			fmt.Fprintf(w, "%s# %s\n", indent, r.Text)
		}
	}
}

func writePull(w io.Writer, cc *planner.ContainerChange, indent string) {
	if cc.Pull && cc.Action != planner.Destroy {
		fmt.Fprintf(w, "%s# image %s will be pulled\n", indent, cc.Image)
	}
}

func writeFields(w io.Writer, a planner.Action, fields []planner.FieldChange, st Style, indent string) {
	if a == planner.Destroy {
		return
	}
	for _, f := range fields {
		switch {
		case a == planner.Create:
			fmt.Fprintf(w, "%s%s %s = %s\n", indent, st.paint(green, "+"), f.Path, value(f.After))
		case f.Before == nil:
			fmt.Fprintf(w, "%s%s %s = %s%s\n", indent, st.paint(green, "+"), f.Path, value(f.After), forces(f))
		case f.After == nil:
			fmt.Fprintf(w, "%s%s %s = %s%s\n", indent, st.paint(red, "-"), f.Path, value(f.Before), forces(f))
		default:
			fmt.Fprintf(w, "%s%s %s = %s -> %s%s\n", indent, st.paint(yellow, "~"), f.Path, value(f.Before), value(f.After), forces(f))
		}
	}
}

func forces(f planner.FieldChange) string {
	if f.ForcesReplace {
		return " # forces replacement"
	}
	return ""
}

// value prints a field value as HCL would show it.
func value(v any) string {
	switch t := v.(type) {
	case string:
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(t)
		return strings.TrimSuffix(b.String(), "\n")
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = value(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case float64: // JSON numbers: print 67108864, not 6.7108864e+07
		return strconv.FormatFloat(t, 'f', -1, 64)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func writeNotes(w io.Writer, plan *planner.Plan, st Style) {
	var deferred []string
	for c := range plan.Changes() {
		if c.Action == planner.Defer {
			deferred = append(deferred, fmt.Sprintf("  - %s: %s\n", c.Address, planner.Reasons(c.Reasons)))
		}
	}
	if len(deferred) > 0 {
		fmt.Fprintf(w, "\n%s\n%s", st.paint(bold, "Deferred (decided, held back for now):"), strings.Join(deferred, ""))
	}
	if len(plan.Notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.paint(bold, "On the host:"))
		for _, m := range plan.Notes {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
	if len(plan.Warnings) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.paint(yellow+bold, "Warnings:"))
		for _, m := range plan.Warnings {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
	if len(plan.Errors) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.paint(red+bold, "Errors (the plan cannot be applied):"))
		for _, m := range plan.Errors {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
}

// JSONPlan is the machine-readable form of a plan. Its fields are stable;
// new ones may be added.
type JSONPlan struct {
	FormatVersion string          `json:"format_version"`
	Stack         string          `json:"stack"`
	Changes       []JSONChange    `json:"changes"`
	Warnings      []string        `json:"warnings"`
	Notes         []string        `json:"notes"`
	Errors        []string        `json:"errors"`
	Summary       planner.Summary `json:"summary"`
	Observed      string          `json:"observed"`
}

// JSONChange is one resource's change.
type JSONChange struct {
	Address spec.Address          `json:"address"`
	Type    string                `json:"type"`
	Action  planner.Action        `json:"action"`
	Reasons []planner.Reason      `json:"reasons"`
	Fields  []planner.FieldChange `json:"fields"`
	Pull    bool                  `json:"pull,omitempty"`
	// WaitFor are the pods whose readiness a pod's start waits for.
	WaitFor []string `json:"wait_for,omitempty"`
	// MadeOnNetwork names the network a going pod was made on, when it is
	// not the runtime's current one (its teardown puts that one back).
	MadeOnNetwork string `json:"made_on_network,omitempty"`
	// UpdateOrder is, for a pod's replace, "start_first" (the new pod is
	// started and ready before the old one stops) or "stop_first";
	// StopFirstBecause says why a pod that asks for start_first is not.
	UpdateOrder      string `json:"update_order,omitempty"`
	StopFirstBecause string `json:"stop_first_because,omitempty"`
	// Path and Diff describe a host file's change (type "mirror" or "network").
	Path string `json:"path,omitempty"`
	Diff string `json:"diff,omitempty"`
}

// ToJSON converts a plan to its machine-readable form; only resources with
// an action appear.
func ToJSON(plan *planner.Plan) JSONPlan {
	out := JSONPlan{FormatVersion: "2", Stack: plan.Stack, Summary: plan.Summary(), Observed: plan.Observed(),
		Changes: []JSONChange{}, Warnings: nonNil(plan.Warnings), Notes: nonNil(plan.Notes), Errors: nonNil(plan.Errors)}
	for c := range plan.Changes() {
		if c.Action == planner.NoOp {
			continue
		}
		jc := JSONChange{Address: c.Address, Action: c.Action, Reasons: c.Reasons, Fields: []planner.FieldChange{}}
		if jc.Reasons == nil {
			jc.Reasons = []planner.Reason{}
		}
		switch {
		case c.Image != nil:
			jc.Type, jc.Path, jc.Pull = "image", c.Image.Import, c.Image.Import == "" && c.Action == planner.Create
		case c.File != nil:
			jc.Type, jc.Path, jc.Diff = c.File.Kind, c.File.Path, c.File.Diff
		case c.Container != nil:
			jc.Type, jc.Fields, jc.Pull = "container", nonNilFields(c.Container.Fields), c.Container.Pull
		default:
			jc.Type, jc.Fields, jc.WaitFor, jc.MadeOnNetwork = "pod", nonNilFields(c.Pod.Fields), c.Pod.WaitFor, c.Pod.MadeOn
			if c.Action == planner.Replace {
				jc.UpdateOrder, jc.StopFirstBecause = string(spec.StopFirst), c.Pod.StopFirstBecause
				if c.Pod.StartFirst {
					jc.UpdateOrder = string(spec.StartFirst)
				}
			}
		}
		out.Changes = append(out.Changes, jc)
	}
	return out
}

// JSON writes the plan as indented JSON.
func JSON(w io.Writer, plan *planner.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ToJSON(plan))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilFields(f []planner.FieldChange) []planner.FieldChange {
	if f == nil {
		return []planner.FieldChange{}
	}
	return f
}
