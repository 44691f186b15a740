package forward

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// recordingStream is a stream that keeps what is written, write by write.
type recordingStream struct {
	got    bytes.Buffer
	writes []int
}

func (s *recordingStream) Read([]byte) (int, error) { return 0, io.EOF }
func (s *recordingStream) Write(p []byte) (int, error) {
	s.writes = append(s.writes, len(p))
	return s.got.Write(p)
}
func (s *recordingStream) Close() error         { return nil }
func (s *recordingStream) Reset() error         { return nil }
func (s *recordingStream) Headers() http.Header { return nil }
func (s *recordingStream) Identifier() uint32   { return 1 }

// chunkReader returns n bytes a read, as a TCP connection returns what
// has arrived.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}

// Copying into a CRI stream writes each read as one frame, up to criFrame,
// not io.Copy's 32 KiB: the runtime's cost goes by frames.
func TestCRIStreamWritesLargeFrames(t *testing.T) {
	data := bytes.Repeat([]byte("berth"), 1<<20) // 5 MiB
	rec := &recordingStream{}
	s := &criStream{data: rec}
	n, err := io.Copy(s, &chunkReader{data: data, n: 1 << 20})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d bytes, %v; want %d", n, err, len(data))
	}
	if !bytes.Equal(rec.got.Bytes(), data) {
		t.Fatal("the stream holds other bytes than were copied")
	}
	for i, w := range rec.writes[:len(rec.writes)-1] {
		if w != criFrame {
			t.Fatalf("write %d carried %d bytes, want %d (writes %v)", i, w, criFrame, rec.writes)
		}
	}
}
