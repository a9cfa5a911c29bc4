package s3

import "testing"

// Parts grow so that the largest object S3 takes fits in MaxParts, from the
// smallest part size allowed and from the default; 100 GiB at the default
// takes under 4,000 parts.
func TestPartSizesFitMaxParts(t *testing.T) {
	for _, ps := range []int{MinPartSize, defaultPartSize} {
		f := &FS{partSize: ps}
		var total int64
		parts := int32(0)
		for total < MaxObjectSize && parts < MaxParts {
			parts++
			size := f.partSizeOf(parts)
			if size < MinPartSize || size > MaxPartSize {
				t.Fatalf("part size %d: part %d is %d bytes", ps, parts, size)
			}
			total += int64(size)
			if ps == defaultPartSize && total >= 100<<30 && total-int64(size) < 100<<30 && parts > 4000 {
				t.Fatalf("100 GiB takes %d parts", parts)
			}
		}
		if total < MaxObjectSize {
			t.Fatalf("part size %d: %d parts carry %d bytes, less than %d", ps, parts, total, int64(MaxObjectSize))
		}
	}
	if (&FS{partSize: defaultPartSize}).partSizeOf(1) != defaultPartSize {
		t.Fatal("a small file's parts are not the configured size")
	}
}
