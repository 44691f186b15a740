package main

// The network benchmark (-net): bytes and connections from the host into a
// pod's TCP port, by the ways berth offers to reach one, against the pod's
// own IP address.
//
// One stack, applied with the real berth binary, holds one pod running a
// TCP sink on port 5001, with a port block (a host port on 127.0.0.1,
// through CNI's portmap: DNAT in the kernel) and a forward block (a
// listener that `berth forward` holds open in user space). In rounds, and
// in an order that is reversed from one round to the next, every path
// carries one bulk transfer of -net-mb MiB, host to pod, then -net-conns
// sequential short connections:
//
//   - host port: 127.0.0.1:HOSTPORT, DNATed by portmap to the pod
//   - forward:   berth forward (netns path) listening on 127.0.0.1:PORT,
//     dialling the pod's port inside the pod's network namespace
//   - direct:    the pod's IP from `berth status --json`, over the CNI bridge
//   - cri:       berth forward --via cri, through containerd's streaming
//     PortForward (SPDY), from a second configuration directory that
//     declares the same stack and pod with another listen address
//
// The sink needs no half-close, which containerd's PortForward does not
// pass on: the client sends a line with a count K of MiB, then K MiB; the
// pod's dd reads exactly that (iflag=fullblock), reports "K+0 records in"
// on the connection and exits. A transfer is timed from the dial until
// that report is read, so it ends when the pod has every byte, not when
// the client's socket buffer took the last one; the report proves that
// the pod read them all. A short connection sends "0" and reads dd's
// "0+0 records" report: a round trip through the whole path to the pod's
// program and back. The client closes every connection with a reset, so
// that it leaves no TIME_WAIT on the host.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/syncbuf"
)

// netPort is where the pod's sink listens.
const netPort = 5001

// netSink is the pod's container command: busybox nc accepting for ever
// (-ll) and running the shell per connection, with the connection as its
// stdin and stdout. Busybox runs its applets (sh, dd) without an exec of a
// new binary, so a connection costs the pod a fork and little more.
var netSink = []string{"nc", "-ll", "-p", strconv.Itoa(netPort), "-e",
	"sh", "-c", "read n; exec dd of=/dev/null bs=1M count=$n iflag=fullblock 2>&1"}

// The paths, in the order of odd rounds; even rounds reverse it.
const (
	pathHostPort = "hostport"
	pathForward  = "forward"
	pathDirect   = "direct"
	pathCRI      = "cri"
)

var pathTitles = map[string]string{
	pathHostPort: "host port",
	pathForward:  "forward",
	pathDirect:   "direct",
	pathCRI:      "forward --via cri",
}

type netBench struct {
	o       options
	b       *berth
	dir     string // the applied configuration
	criDir  string // the same stack and pod, another listen address: for berth forward --via cri
	addrs   map[string]string
	paths   []string
	podIP   string
	payload []byte // 1 MiB of random bytes, sent K times

	fwd, criFwd   *forwardProc
	containerdPID int // 0 when unknown
}

// netSample is one path's figures in one round.
type netSample struct {
	bulk     time.Duration // dial until the pod's report of the last MiB
	bulkCPU  cpuUse
	conns    time.Duration // -net-conns sequential round trips, dial to close
	connP50  time.Duration
	connsCPU cpuUse
}

// cpuUse is CPU time spent during one measurement.
type cpuUse struct {
	forward    time.Duration // the berth forward process serving the path; zero for host port and direct
	containerd time.Duration // the whole daemon: shared with others' tests, so noisy
	self       time.Duration // this benchmark: the client side of every path
	busy       float64       // of all the machine's CPUs over the wall time, 0-1
}

type netRound struct {
	order   []string
	samples map[string]*netSample
}

func runNet(o options) (err error) {
	if o.pairs < 1 || o.netMB < 1 || o.netConns < 1 {
		return errors.New("-pairs (the rounds), -net-mb and -net-conns must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := openEnv(ctx)
	if err != nil {
		return err
	}
	defer e.rt.close()
	bin, rt := e.bin, e.rt

	tmp, runID, err := scratch("net-")
	if err != nil {
		return err
	}
	stack := "bench-net-" + runID
	nb := &netBench{
		o:       o,
		dir:     filepath.Join(tmp, stack),
		criDir:  filepath.Join(tmp, "cri", stack),
		payload: make([]byte, 1<<20),
	}
	_, _ = rand.Read(nb.payload)
	// berth's lock file goes to the temporary directory, and with it.
	nb.b = &berth{bin: bin, stack: stack, dir: nb.dir, lockDir: filepath.Join(tmp, "locks")}
	// The sweep after berth's destroy also removes what carries this run's
	// baseline label: nothing does, but an empty label would match too much.
	rt.runID = runID
	nb.containerdPID = containerdPID()
	defer func() {
		// A context of its own: ctx may be cancelled (Ctrl-C).
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err = errors.Join(err, nb.cleanup(cctx, rt))
		os.RemoveAll(tmp)
	}()

	started := time.Now()
	if err := nb.setUp(ctx); err != nil {
		return err
	}
	rep := &netReport{opts: o, facts: e.facts, started: started, nb: nb}
	fmt.Fprintf(os.Stderr, "bench: %d network rounds, %d MiB and %d connections per path, stack %s, pod IP %s\n", o.pairs, o.netMB, o.netConns, stack, nb.podIP)
	for i := range o.pairs {
		r, err := nb.runRound(ctx, i)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		rep.rounds = append(rep.rounds, r)
	}
	rep.finished = time.Now()
	return emit(o.markdown, rep.text, rep.markdown)
}

// setUp applies the stack, finds the pod's IP, starts the forwards and
// waits until every path answers.
func (nb *netBench) setUp(ctx context.Context) error {
	hostPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	fwdPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	nb.addrs = map[string]string{
		pathHostPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)),
		pathForward:  net.JoinHostPort("127.0.0.1", strconv.Itoa(fwdPort)),
	}
	nb.paths = []string{pathHostPort, pathForward, pathDirect}
	if err := nb.writeConfig(nb.dir, hostPort, nb.addrs[pathForward]); err != nil {
		return err
	}
	if nb.o.netCRI {
		criPort, err := freeLoopbackPort()
		if err != nil {
			return err
		}
		nb.addrs[pathCRI] = net.JoinHostPort("127.0.0.1", strconv.Itoa(criPort))
		nb.paths = append(nb.paths, pathCRI)
		if err := nb.writeConfig(nb.criDir, hostPort, nb.addrs[pathCRI]); err != nil {
			return err
		}
	}

	res, err := nb.b.mustRun(ctx, 0, "apply", "--auto-approve", nb.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  applied in %s\n", fmtDur(res.wall))
	if nb.podIP, err = nb.findPodIP(ctx); err != nil {
		return err
	}
	nb.addrs[pathDirect] = net.JoinHostPort(nb.podIP, strconv.Itoa(netPort))
	// The sink answers directly before anything is put in front of it.
	if err := probe(ctx, nb.addrs[pathDirect]); err != nil {
		return fmt.Errorf("the pod's sink at %s: %w", nb.addrs[pathDirect], err)
	}
	if nb.fwd, err = nb.startForward(ctx, "netns", nb.dir, nb.addrs[pathForward]); err != nil {
		return err
	}
	if nb.o.netCRI {
		if nb.criFwd, err = nb.startForward(ctx, "cri", nb.criDir, nb.addrs[pathCRI]); err != nil {
			return err
		}
	}
	for _, p := range nb.paths {
		if err := probe(ctx, nb.addrs[p]); err != nil {
			return fmt.Errorf("%s at %s: %w", pathTitles[p], nb.addrs[p], err)
		}
	}
	return nil
}

// writeConfig writes the stack: one pod, its sink, a host port and a
// forward listening on listen.
func (nb *netBench) writeConfig(dir string, hostPort int, listen string) error {
	quoted := make([]string, len(netSink))
	for i, arg := range netSink {
		quoted[i] = strconv.Quote(arg) // Go and HCL quote these strings alike; "$n" is no template
	}
	cfg := fmt.Sprintf(`berth {
  stack = %q
}

pod "sink" {
  port "sink" {
    container = %d
    host      = %d
    host_ip   = "127.0.0.1"
  }
  forward "sink" {
    port   = %d
    listen = %q
  }
  container "sink" {
    image        = %q
    command      = [%s]
    stop_timeout = %q
  }
}
`, nb.b.stack, netPort, hostPort, netPort, listen, image, strings.Join(quoted, ", "), grace.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg), 0o644)
}

// findPodIP reads the pod's address from berth status --json.
func (nb *netBench) findPodIP(ctx context.Context) (string, error) {
	res, err := nb.b.mustRun(ctx, 0, "status", "--json", nb.dir)
	if err != nil {
		return "", err
	}
	var st struct {
		Pods []struct {
			Pod, State, IP string
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		return "", fmt.Errorf("berth status --json: %w\n%s", err, res.stdout)
	}
	for _, p := range st.Pods {
		if p.Pod == "sink" && p.IP != "" {
			return p.IP, nil
		}
	}
	return "", fmt.Errorf("berth status --json shows no IP for pod sink:\n%s", res.stdout)
}

// freeLoopbackPort finds a port on 127.0.0.1 that nothing is bound to,
// below the usual ephemeral range (32768-60999) where it can: a port the
// kernel hands out for outgoing connections may be held, after they
// close, by a TIME_WAIT that makes berth forward's listen fail with
// "address already in use", SO_REUSEADDR or not.
func freeLoopbackPort() (int, error) {
	for range 50 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		port := 20000 + (int(b[0])<<8|int(b[1]))%12000
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ---------------------------------------------------------------- berth forward

// forwardProc is a running berth forward.
type forwardProc struct {
	via    string
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	exited chan struct{}
}

// startForward starts berth forward --via via DIR and waits until a round
// trip through its listen address reaches the pod.
func (nb *netBench) startForward(ctx context.Context, via, dir, listen string) (*forwardProc, error) {
	return startForward(ctx, nb.b, via, dir, listen, func(ctx context.Context) error { return exchange(ctx, listen, nil, 0, 5*time.Second) })
}

// startForward starts berth forward --via via DIR and waits until
// reachable, a round trip through its listen address, reaches the pod.
// (It prints "Ctrl-C stops." before it opens its listeners, so that line
// alone says little.)
func startForward(ctx context.Context, b *berth, via, dir, listen string, reachable func(context.Context) error) (*forwardProc, error) {
	f := &forwardProc{via: via, exited: make(chan struct{})}
	f.cmd = exec.Command(b.bin, "forward", "--via", via, dir)
	f.cmd.Env = append(os.Environ(), "NO_COLOR=1", "BERTH_LOCK_DIR="+b.lockDir) // BERTH_ADDRESS passes through
	f.cmd.Stderr = &f.stderr
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("berth forward --via %s: %w", via, err)
	}
	ready := make(chan struct{})
	var out strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "Ctrl-C stops." && !signalled {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = f.cmd.Wait()
		close(f.exited)
	}()
	deadline := time.After(30 * time.Second)
	exitErr := func() error {
		return fmt.Errorf("berth forward --via %s exited: %s\n--- stdout\n%s--- stderr\n%s", via, f.cmd.ProcessState, out.String(), tail(f.stderr.String()))
	}
	select {
	case <-ready:
	case <-f.exited:
		err = exitErr()
	case <-deadline:
		err = fmt.Errorf("berth forward --via %s did not start in 30s\n--- stderr\n%s", via, tail(f.stderr.String()))
	case <-ctx.Done():
		err = ctx.Err()
	}
	for err == nil {
		perr := reachable(ctx)
		if perr == nil {
			fmt.Fprintf(os.Stderr, "  berth forward --via %s: pid %d, on %s\n", via, f.cmd.Process.Pid, listen)
			return f, nil
		}
		select {
		case <-f.exited:
			err = exitErr()
		case <-deadline:
			err = fmt.Errorf("berth forward --via %s: no round trip through %s in 30s: %w\n--- stderr\n%s", via, listen, perr, tail(f.stderr.String()))
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.stop()
	return nil, err
}

// stop interrupts berth forward as Ctrl-C would, and kills it if it does
// not exit. It reports what the forward logged if it did not exit cleanly.
func (f *forwardProc) stop() error {
	select {
	case <-f.exited:
	default:
		_ = f.cmd.Process.Signal(os.Interrupt)
		select {
		case <-f.exited:
		case <-time.After(10 * time.Second):
			_ = f.cmd.Process.Kill()
			<-f.exited
			return fmt.Errorf("berth forward --via %s (pid %d) did not stop on SIGINT; killed", f.via, f.cmd.Process.Pid)
		}
	}
	if st := f.cmd.ProcessState; st != nil && !st.Success() {
		// A terminal's Ctrl-C reaches it too; that is a clean stop.
		if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			return fmt.Errorf("berth forward --via %s: %s\n%s", f.via, st, tail(f.stderr.String()))
		}
	}
	return nil
}

func (f *forwardProc) pid() int {
	if f == nil {
		return 0
	}
	return f.cmd.Process.Pid
}

// cleanup stops the forwards, destroys the stack with berth, then sweeps
// whatever of the stack is left through CRI (cleanup in main.go), with the
// log directory and the lock file.
func (nb *netBench) cleanup(ctx context.Context, rt *raw) error {
	var err error
	for _, f := range []*forwardProc{nb.fwd, nb.criFwd} {
		if f != nil {
			err = errors.Join(err, f.stop())
		}
	}
	if readable(filepath.Join(nb.dir, "main.hcl")) {
		if _, derr := nb.b.mustRun(ctx, 0, "destroy", "--auto-approve", nb.dir); derr != nil {
			err = errors.Join(err, fmt.Errorf("berth destroy: %w", derr))
		}
	}
	if cerr := cleanup(ctx, rt, nb.b); cerr != nil {
		err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
	}
	return err
}

// ---------------------------------------------------------------- measuring

// runRound measures every path once: the bulk transfers first, then the
// short connections, each in the round's order.
func (nb *netBench) runRound(ctx context.Context, i int) (*netRound, error) {
	r := &netRound{order: append([]string(nil), nb.paths...), samples: map[string]*netSample{}}
	if i%2 == 1 {
		for a, b := 0, len(r.order)-1; a < b; a, b = a+1, b-1 {
			r.order[a], r.order[b] = r.order[b], r.order[a]
		}
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "  round %d/%d: %s\n", i+1, nb.o.pairs, fmt.Sprintf(format, args...))
	}
	for _, p := range r.order {
		s := &netSample{}
		r.samples[p] = s
		before := nb.cpuSnapshot()
		d, err := nb.bulk(ctx, nb.addrs[p])
		if err != nil {
			return nil, fmt.Errorf("%s: %d MiB to %s: %w", pathTitles[p], nb.o.netMB, nb.addrs[p], err)
		}
		s.bulk, s.bulkCPU = d, nb.cpuSnapshot().since(before, p)
		logf("%-17s %d MiB in %s: %.0f MB/s (berth forward CPU %s)", pathTitles[p], nb.o.netMB, fmtDur(d), nb.mbps(d), fmtDur(s.bulkCPU.forward))
	}
	for _, p := range r.order {
		s := r.samples[p]
		before := nb.cpuSnapshot()
		total, p50, err := nb.connections(ctx, nb.addrs[p], nb.o.netConns)
		if err != nil {
			return nil, fmt.Errorf("%s: connections to %s: %w", pathTitles[p], nb.addrs[p], err)
		}
		s.conns, s.connP50, s.connsCPU = total, p50, nb.cpuSnapshot().since(before, p)
		logf("%-17s %d connections in %s: %.0f/s (p50 %s)", pathTitles[p], nb.o.netConns, fmtDur(total), float64(nb.o.netConns)/total.Seconds(), fmtDur(p50))
	}
	return r, nil
}

func (nb *netBench) mbps(d time.Duration) float64 {
	return mb(int64(nb.o.netMB)<<20) / d.Seconds()
}

// dialTimeout bounds every connection's dial; an exchange has a timeout of
// its own.
const dialTimeout = 10 * time.Second

// exchange opens a connection to addr, asks the sink to read mib MiB,
// sends them (payload, 1 MiB, mib times), and reads the sink's report, which must count them all.
func exchange(ctx context.Context, addr string, payload []byte, mib int, timeout time.Duration) error {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	// Closed with a reset once the report is in, so that the client leaves
	// no TIME_WAIT: thousands of them would hold the host's ephemeral ports
	// for a minute, on a machine where others' tests pick free ports to
	// listen on.
	defer func() {
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}()
	// Ctrl-C ends a transfer in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte(strconv.Itoa(mib) + "\n")); err != nil {
		return err
	}
	for range mib {
		if _, err := conn.Write(payload); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	reply, err := readReport(conn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("the sink's report: %w (got %q)", err, reply)
	}
	if want := fmt.Sprintf("%d+0 records in\n", mib); !strings.HasPrefix(reply, want) {
		return fmt.Errorf("the sink reports %q, want %q: the connection ended early", reply, want)
	}
	return nil
}

// readReport reads dd's report, up to its "records out" line. It does not
// wait for the end of the stream: containerd's PortForward keeps a
// connection open for up to a second after the pod closed its side.
func readReport(conn net.Conn) (string, error) {
	var got strings.Builder
	r := bufio.NewReader(io.LimitReader(conn, 4096))
	for {
		line, err := r.ReadString('\n')
		got.WriteString(line)
		if strings.Contains(line, "records out") {
			return got.String(), nil
		}
		if err != nil {
			return got.String(), err
		}
	}
}

// bulk times one transfer of -net-mb MiB to addr.
func (nb *netBench) bulk(ctx context.Context, addr string) (time.Duration, error) {
	start := time.Now()
	// A generous bound: 5 MB/s would be a finding of its own.
	err := exchange(ctx, addr, nb.payload, nb.o.netMB, 30*time.Second+time.Duration(nb.o.netMB)*200*time.Millisecond)
	return time.Since(start), err
}

// connections times n sequential round trips to addr: dial, a line to
// the sink, its report back, close.
func (nb *netBench) connections(ctx context.Context, addr string, n int) (total, p50 time.Duration, err error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if err := exchange(ctx, addr, nil, 0, 10*time.Second); err != nil {
			return 0, 0, fmt.Errorf("connection %d: %w", i+1, err)
		}
		lat[i] = time.Since(t0)
	}
	return time.Since(start), median(lat), nil
}

// probe makes one round trip to addr, retrying for a while: a sink that is
// starting, a host port whose rules are not in place yet.
func probe(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exchange(ctx, addr, nil, 0, 5*time.Second)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- CPU

// cpuSnapshot is the CPU time used so far by the processes of interest and
// by the machine.
type cpuSnapshot struct {
	at                           time.Time
	fwd, criFwd, containerd, own time.Duration
	busy, total                  uint64 // jiffies of /proc/stat's cpu line
}

func (nb *netBench) cpuSnapshot() cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), fwd: procCPU(nb.fwd.pid()), criFwd: procCPU(nb.criFwd.pid()),
		containerd: procCPU(nb.containerdPID), own: procCPU(os.Getpid())}
	s.busy, s.total = machineCPU()
	return s
}

// since is the CPU used between before and s, by the forward that serves
// path (if any), containerd, this process, and the machine.
func (s cpuSnapshot) since(before cpuSnapshot, path string) cpuUse {
	// A thread that exits in between takes its time out of the sum.
	delta := func(a, b time.Duration) time.Duration { return max(0, a-b) }
	u := cpuUse{containerd: delta(s.containerd, before.containerd), self: delta(s.own, before.own)}
	switch path {
	case pathForward:
		u.forward = delta(s.fwd, before.fwd)
	case pathCRI:
		u.forward = delta(s.criFwd, before.criFwd)
	}
	if dt := s.total - before.total; dt > 0 {
		u.busy = float64(s.busy-before.busy) / float64(dt)
	}
	return u
}

// procCPU is the CPU time a process has used, in nanoseconds: the sum of
// its threads' run times (/proc/PID/task/*/schedstat), or, where that is
// missing, its user and system time from /proc/PID/stat (10 ms ticks).
// Threads that have exited no longer count in the sum, so only the
// difference over a short window means anything; 0 if unknown.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		sum += time.Duration(ns)
	}
	if sum > 0 {
		return sum
	}
	return statCPU(pid)
}

// statCPU is a process's user and system time from /proc/PID/stat, in
// clock ticks of 10ms (USER_HZ is 100); 0 if unknown.
func statCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseUint(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// machineCPU is the busy and total jiffies of all CPUs (/proc/stat).
func machineCPU() (busy, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		total += v[i]
	}
	return total - v[3] - v[4], total
}
