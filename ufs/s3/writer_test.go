package s3_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfs/skyfs/internal/miniotest"
	"github.com/skyfs/skyfs/ufs"
	ufss3 "github.com/skyfs/skyfs/ufs/s3"
)

// fakeMultipart is an S3 endpoint on loopback that accepts a multipart upload but
// holds every UploadPart until released, counting the parts in flight.
type fakeMultipart struct {
	release     chan struct{}
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	received    atomic.Int64
}

func (f *fakeMultipart) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/xml")
	switch {
	case r.Method == http.MethodGet && q.Get("list-type") == "2":
		w.Write([]byte(emptyListing))
	case r.Method == http.MethodPost && q.Has("uploads"):
		w.Write([]byte(`<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up1</UploadId></InitiateMultipartUploadResult>`))
	case r.Method == http.MethodPut && q.Has("partNumber"):
		n := f.inFlight.Add(1)
		for {
			m := f.maxInFlight.Load()
			if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		io.Copy(io.Discard, r.Body)
		size, _ := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if size == 0 {
			size = r.ContentLength
		}
		<-f.release
		f.received.Add(size)
		f.inFlight.Add(-1)
		w.Header().Set("ETag", `"part-`+q.Get("partNumber")+`"`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"done-7"</ETag></CompleteMultipartUploadResult>`))
	case r.Method == http.MethodHead:
		w.Header().Set("Content-Length", strconv.FormatInt(f.received.Load(), 10))
		w.Header().Set("ETag", `"done-7"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
	}
}

// TestWriterBoundedMemory checks that a Writer uploads parts in the background,
// never has more than s3.uploadConcurrency parts in flight, and blocks the writer
// once every buffer is taken, so that memory stays bounded whatever the file size.
func TestWriterBoundedMemory(t *testing.T) {
	fake := &fakeMultipart{release: make(chan struct{})}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	const concurrency = 2
	fsys, err := ufs.Open(t.Context(), "s3://b", map[string]string{
		ufss3.OptEndpoint: srv.URL, ufss3.OptPathStyle: "true",
		ufss3.OptAccessKeyID: "id", ufss3.OptSecretAccessKey: "fake-secret-value",
		ufss3.OptPartSize:          strconv.Itoa(ufss3.MinPartSize),
		ufss3.OptUploadConcurrency: strconv.Itoa(concurrency),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	w, err := fsys.Create(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}

	const total = 7*ufss3.MinPartSize - 100 // 7 parts, the last one short
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for written.Load() < total {
			n := min(int64(len(chunk)), total-written.Load())
			if _, err := w.Write(chunk[:n]); err != nil {
				done <- err
				return
			}
			written.Add(n)
		}
		done <- nil
	}()

	// With every upload held, the writer must stop after filling the buffers:
	// `concurrency` parts in flight plus the one being filled.
	deadline := time.Now().Add(20 * time.Second)
	for fake.inFlight.Load() < concurrency {
		if time.Now().After(deadline) {
			t.Fatalf("only %d parts in flight", fake.inFlight.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	limit := int64(concurrency+1) * ufss3.MinPartSize
	stable := 0
	last := int64(-1)
	for stable < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not block: %d bytes written", written.Load())
		}
		if n := written.Load(); n == last {
			stable++
		} else {
			stable, last = 0, n
		}
		time.Sleep(5 * time.Millisecond)
	}
	if last > limit || last >= total {
		t.Fatalf("writer went on to %d bytes with every upload held (limit %d)", last, limit)
	}

	close(fake.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fp, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if fp.Size != total || fake.received.Load() != total {
		t.Fatalf("fingerprint size %d, server received %d, want %d", fp.Size, fake.received.Load(), total)
	}
	if m := fake.maxInFlight.Load(); m > concurrency {
		t.Fatalf("%d parts in flight at once, limit %d", m, concurrency)
	}
	t.Logf("blocked after %d bytes (%d parts in flight + one filling)", last, concurrency)
}

// A part whose upload fails is sent again from the writer's memory, and the
// object MinIO then holds is the bytes written: a proxy in front of MinIO
// answers the first attempt of part 2 with a 500.
func TestStreamPartRetried(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.Bucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var part2 atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && part2.Add(1) == 1 {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("<Error><Code>InternalError</Code><Message>injected</Message></Error>"))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	o := options(srv, ufss3.OptEndpoint, proxy.URL, ufss3.OptMaxBackoff, "20ms")
	fsys, err := ufs.Open(t.Context(), "s3://"+bucket, o)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	data := make([]byte, 3*ufss3.MinPartSize+12345)
	rand.NewChaCha8([32]byte{3, 4}).Read(data)
	w, err := fsys.Create(t.Context(), "retried")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := w.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	fp, err := w.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fp.Size != int64(len(data)) || part2.Load() != 2 {
		t.Fatalf("size %d, part 2 sent %d times; want %d bytes, twice", fp.Size, part2.Load(), len(data))
	}
	r, err := fsys.Open(t.Context(), "retried", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object differs from what was written (%d bytes, %v)", len(got), err)
	}
}
