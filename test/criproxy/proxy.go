// Package criproxy is a gRPC proxy in front of a runtime's socket that
// counts the calls going through it, by method: tests and benchmarks read
// berth's runtime calls from it, not from berth's own account of them.
// With Hide, it answers the transfer and streaming services as a
// containerd without them does.
package criproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TransferServices are the services a containerd before 1.7 lacks.
var TransferServices = []string{"/containerd.services.transfer.v1.Transfer/", "/containerd.services.streaming.v1.Streaming/"}

// Proxy relays every call to the upstream runtime and counts it.
type Proxy struct {
	// Address is the proxy's socket, as berth's --address takes it.
	Address string
	// Hide refuses the TransferServices; set it before the first call.
	Hide bool

	dir      string
	srv      *grpc.Server
	upstream *grpc.ClientConn

	mu      sync.Mutex
	counts  map[string]int
	refusal int
}

// Start listens on a socket in a new temporary directory and relays to
// upstream ("unix:///path").
func Start(upstream string) (*Proxy, error) {
	dir, err := os.MkdirTemp("", "berth-proxy-") // short: a socket path has 108 bytes
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	conn, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Proxy{Address: "unix://" + sock, dir: dir, upstream: conn, counts: map[string]int{}}
	p.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(p.forward))
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy and removes its socket.
func (p *Proxy) Close() {
	p.srv.Stop()
	p.upstream.Close()
	os.RemoveAll(p.dir)
}

// Calls counts the calls of one full method name
// ("/runtime.v1.RuntimeService/ListPodSandbox").
func (p *Proxy) Calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

// Counts are the calls so far by short name: the method alone for CRI
// ("ListPodSandbox"), service and method for containerd's own services
// ("containerd.Introspection/Server").
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for method, n := range p.counts {
		out[ShortName(method)] += n
	}
	return out
}

// Reset forgets the calls counted so far.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.counts)
	p.refusal = 0
}

// Refused counts the calls Hide refused.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusal
}

// ShortName is the name Counts uses for a full method name.
func ShortName(method string) string {
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if strings.HasPrefix(service, "runtime.v1.") {
		return name
	}
	parts := strings.Split(service, ".") // containerd.services.introspection.v1.Introspection
	return "containerd." + parts[len(parts)-1] + "/" + name
}

// forward relays one call, of any kind, to the runtime.
func (p *Proxy) forward(_ any, in grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(in)
	p.mu.Lock()
	p.counts[method]++
	hidden := false
	for _, prefix := range TransferServices {
		hidden = hidden || (p.Hide && strings.HasPrefix(method, prefix))
	}
	if hidden {
		p.refusal++
	}
	p.mu.Unlock()
	if hidden {
		service := strings.Trim(method[:strings.LastIndex(method, "/")], "/")
		return status.Errorf(codes.Unimplemented, "unknown service %s", service)
	}

	md, _ := metadata.FromIncomingContext(in.Context())
	out := metadata.MD{}
	for k, v := range md {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" {
			out[k] = v
		}
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(in.Context(), out))
	defer cancel()
	up, err := p.upstream.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	// Requests: until the client half-closes; a client that goes away
	// cancels in's context, and with it the upstream call.
	go func() {
		for {
			var msg []byte
			if err := in.RecvMsg(&msg); err != nil {
				if errors.Is(err, io.EOF) {
					up.CloseSend()
				}
				return
			}
			if err := up.SendMsg(&msg); err != nil {
				return
			}
		}
	}()
	headerSent := false
	for {
		var msg []byte
		err := up.RecvMsg(&msg)
		if !headerSent {
			if h, herr := up.Header(); herr == nil {
				in.SendHeader(h)
			}
			headerSent = true
		}
		if err != nil {
			in.SetTrailer(up.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := in.SendMsg(&msg); err != nil {
			return err
		}
	}
}

// rawCodec passes messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
