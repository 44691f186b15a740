package forward

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// The portforward.k8s.io protocol, as the CRI streaming server speaks it:
// per forwarded connection, an error stream and a data stream, both
// naming the port and a request ID.
const (
	portForwardProtocol = "portforward.k8s.io"
	headerStreamType    = "streamType"
	headerPort          = "port"
	headerRequestID     = "requestID"
)

var requestIDs atomic.Int64

// dialCRI opens a connection to port through a CRI streaming URL.
func dialCRI(ctx context.Context, url string, port int) (io.ReadWriteCloser, error) {
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, portForwardProtocol)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("open the runtime's stream: %w", err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("upgrade the runtime's stream: %w", err)
	}

	headers := http.Header{}
	headers.Set(headerPort, strconv.Itoa(port))
	headers.Set(headerRequestID, strconv.FormatInt(requestIDs.Add(1), 10))
	headers.Set(headerStreamType, "error")
	errStream, err := conn.CreateStream(headers)
	if err != nil {
		conn.Close()
		return nil, err
	}
	errStream.Close() // nothing to send on it
	headers.Set(headerStreamType, "data")
	data, err := conn.CreateStream(headers)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &criStream{conn: conn, data: data, errStream: errStream}, nil
}

// criStream is one forwarded connection over a streaming connection.
type criStream struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
}

func (s *criStream) Read(p []byte) (int, error)  { return s.data.Read(p) }
func (s *criStream) Write(p []byte) (int, error) { return s.data.Write(p) }

// criFrame is the most one write to the stream carries: each write is one
// SPDY data frame, and the runtime's cost goes by frames more than by
// bytes (io.Copy's 32 KiB made it the bottleneck of a bulk transfer).
const criFrame = 512 << 10

var frameBuffers = sync.Pool{New: func() any { b := make([]byte, criFrame); return &b }}

// ReadFrom copies r to the stream in frames of up to criFrame: as much
// as each read returns.
func (s *criStream) ReadFrom(r io.Reader) (int64, error) {
	buf := frameBuffers.Get().(*[]byte)
	defer frameBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{s.data}, readerOnly{r}, *buf)
}

// readerOnly and writerOnly hide WriteTo and ReadFrom, which would pick
// their own buffers.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// CloseWrite passes a half-close on.
func (s *criStream) CloseWrite() error { return s.data.Close() }

func (s *criStream) Close() error {
	s.data.Reset()
	s.errStream.Reset()
	return s.conn.Close()
}
