package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

type imageReport struct {
	opts              options
	facts             facts
	ctrVersion        string
	started, finished time.Time
	ib                *imageBench
	pairs             []*imagePair
}

// imageSummary holds the medians the report is judged on.
type imageSummary struct {
	berthPull, ctrPull, berthImport, ctrImport time.Duration
	localPull, localImport                     time.Duration
	berthServe, ctrServe, localServe           time.Duration // the registry's time to send the layer
	pull, imp                                  float64       // medians of per-pair ratios berth/ctr
	pullLocal, importLocal                     float64       // medians of per-pair ratios berth/(ctr --local)
	pullLead, importLead                       time.Duration
	pullStep, importStep                       time.Duration
	pullStepRatio, importStepRatio             float64 // berth's image step / ctr's whole run, medians of per-pair ratios
}

func (r *imageReport) summarize() imageSummary {
	var s imageSummary
	var bp, cp, bi, ci, lp, li, pl, il, ps, is, bs, cs, ls []time.Duration
	var pull, imp, pullL, impL, psr, isr []float64
	for _, p := range r.pairs {
		bp, cp, bi, ci = append(bp, p.berthPull), append(cp, p.ctrPull), append(bi, p.berthImport), append(ci, p.ctrImport)
		lp, li = append(lp, p.localPull), append(li, p.localImport)
		bs, cs, ls = append(bs, p.berthServe), append(cs, p.ctrServe), append(ls, p.localServe)
		pull, imp = append(pull, ratio(p.berthPull, p.ctrPull)), append(imp, ratio(p.berthImport, p.ctrImport))
		pullL, impL = append(pullL, ratio(p.berthPull, p.localPull)), append(impL, ratio(p.berthImport, p.localImport))
		pl, il = append(pl, p.pullLead), append(il, p.importLead)
		ps, is = append(ps, p.pullStep), append(is, p.importStep)
		psr, isr = append(psr, ratio(p.pullStep, p.ctrPull)), append(isr, ratio(p.importStep, p.ctrImport))
	}
	s.berthPull, s.ctrPull, s.berthImport, s.ctrImport = median(bp), median(cp), median(bi), median(ci)
	s.localPull, s.localImport = median(lp), median(li)
	s.berthServe, s.ctrServe, s.localServe = median(bs), median(cs), median(ls)
	s.pull, s.imp = median(pull), median(imp)
	s.pullLocal, s.importLocal = median(pullL), median(impL)
	s.pullLead, s.importLead, s.pullStep, s.importStep = median(pl), median(il), median(ps), median(is)
	s.pullStepRatio, s.importStepRatio = median(psr), median(isr)
	return s
}

func (r *imageReport) factLines() []string {
	f, ib, o := r.facts, r.ib, r.opts
	fetched := "every pull fetched the layer from the registry (one more complete GET of it in the mirror's log)"
	if ib.registryLog == "" {
		fetched = "the mirror's log was not readable, so downloads were not confirmed there (set BERTH_REGISTRY_DIR)"
	}
	onDisk := ", nor on disk"
	if ib.blobDir == "" {
		onDisk = " (the blob directory on disk was not found, so not checked there)"
	}
	name := strings.TrimSuffix(ib.importRef, ":v1")
	return []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("ctr: %s (%s)", ib.ctr, r.ctrVersion),
		fmt.Sprintf("image: one layer, a file of %d MiB of random bytes, gzip level 1: %.1f MB of blobs (manifest, config, layer of %.1f MB), manifest %s, shared with no other image; built once per run with hack/ociimage and pushed to the plain-HTTP mirror %s from a scratch namespace, which was then removed",
			o.imageMB, mb(ib.size), mb(ib.layerSize), shortDigest(ib.manifest), ib.mirror),
		fmt.Sprintf("pull: berth apply --auto-approve DIR, DIR holding only `image %q {}`; against `ctr -n k8s.io images pull --plain-http REF` (the daemon's transfer service, which unpacks: ctr 2.x's pull has no flag to skip it)", ib.pullRef),
		fmt.Sprintf("import: berth apply of `image %q { source = ARCHIVE }`; against `ctr -n k8s.io images import --base-name %s ARCHIVE` (the transfer service again; it unpacks unless --no-unpack)", ib.importRef, name),
		fmt.Sprintf("checks: before every side, no name, blob or snapshot of the image in k8s.io%s; after it, the name, every blob, and the layer unpacked (committed) in %s; %s; then every name of the image (the tag, berth's repo@digest, the CRI plugin's sha256:<config>) removed with `ctr images rm --sync`", onDisk, imageSnapshotter, fetched),
		"reference: the same ctr commands with --local, the containerd client's own pull or import in ctr's process (the path berth's import takes in its own, and its pull on a runtime without the transfer service), instead of the daemon's transfer service; it unpacks too",
		fmt.Sprintf("pairs: %d, each a pull pair then an import pair, berth first in odd pairs and ctr first in even ones, the ctr --local reference last; every side is the wall time of the whole process", o.pairs),
	}
}

func (r *imageReport) pairTable() [][]string {
	rows := [][]string{{"pair", "first", "berth pull", "ctr pull", "ratio", "ctr --local", "ratio",
		"berth import", "ctr import", "ratio", "ctr --local", "ratio"}}
	for i, p := range r.pairs {
		first := "ctr"
		if p.berthFirst {
			first = "berth"
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), first,
			fmtDur(p.berthPull), fmtDur(p.ctrPull), fmtRatio(ratio(p.berthPull, p.ctrPull)),
			fmtDur(p.localPull), fmtRatio(ratio(p.berthPull, p.localPull)),
			fmtDur(p.berthImport), fmtDur(p.ctrImport), fmtRatio(ratio(p.berthImport, p.ctrImport)),
			fmtDur(p.localImport), fmtRatio(ratio(p.berthImport, p.localImport))})
	}
	s := r.summarize()
	rows = append(rows, []string{"median", "",
		fmtDur(s.berthPull), fmtDur(s.ctrPull), fmtRatio(s.pull), fmtDur(s.localPull), fmtRatio(s.pullLocal),
		fmtDur(s.berthImport), fmtDur(s.ctrImport), fmtRatio(s.imp), fmtDur(s.localImport), fmtRatio(s.importLocal)})
	return rows
}

// rateTable gives the medians as throughput of the image's bytes.
func (r *imageReport) rateTable() [][]string {
	s, size := r.summarize(), r.ib.size
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%s (%.0f MB/s)", fmtDur(d), mb(size)/d.Seconds())
	}
	return [][]string{
		{"", "berth", "ctr", "berth / ctr", "ctr --local", "berth / ctr --local"},
		{"pull", rate(s.berthPull), rate(s.ctrPull), fmtRatio(s.pull), rate(s.localPull), fmtRatio(s.pullLocal)},
		{"import", rate(s.berthImport), rate(s.ctrImport), fmtRatio(s.imp), rate(s.localImport), fmtRatio(s.importLocal)},
	}
}

func (r *imageReport) notes() []string {
	s := r.summarize()
	return []string{
		fmt.Sprintf("times are medians, ratios medians of per-pair ratios; MB/s: the image's %.1f MB of blobs over the median wall time of the whole process", mb(r.ib.size)),
		fmt.Sprintf("berth's fixed cost, until it prints its image step (process start, configuration, dial, lock, observe, plan text): pull %s, import %s (medians)",
			fmtDur(s.pullLead), fmtDur(s.importLead)),
		fmt.Sprintf("berth's image step, from its \"Creating...\" line to \"Creation complete\": pull %s, import %s (medians); that is %s and %s of ctr's whole run (medians of per-pair ratios)",
			fmtDur(s.pullStep), fmtDur(s.importStep), fmtRatio(s.pullStepRatio), fmtRatio(s.importStepRatio)),
		serveNote(r.ib, s),
		"the removal between sides is not timed; the mirror keeps the run's repository (distribution frees blobs only in its offline garbage collection; hack/registry.sh down removes it all)",
	}
}

func (r *imageReport) text(w io.Writer) {
	fmt.Fprintln(w, "berth image benchmark: berth vs ctr, pull and import")
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	writeTab(w, r.pairTable())
	fmt.Fprintln(w)
	writeTab(w, r.rateTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *imageReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s: -images -pairs %d -image-mb %d\n\n", r.facts.date, r.opts.pairs, r.opts.imageMB)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.pairTable())
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.rateTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}

// serveNote says how fast the registry sent the layer to each pull.
func serveNote(ib *imageBench, s imageSummary) string {
	if ib.registryLog == "" || s.ctrServe == 0 {
		return "the registry's time to send the layer: unknown (its log was not readable)"
	}
	return fmt.Sprintf("the registry sent the %.1f MB layer in %s to berth, %s to ctr and %s to ctr --local (medians of http.response.duration of the layer's GET in the mirror's log; a registry sends as fast as its client reads)",
		mb(ib.layerSize), fmtDur(s.berthServe), fmtDur(s.ctrServe), fmtDur(s.localServe))
}
