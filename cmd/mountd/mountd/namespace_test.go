package mountd

import (
	"reflect"
	"testing"

	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

func TestAttrConversion(t *testing.T) {
	fp := meta.Fingerprint{Size: 5, ETag: "e", Version: "v", MtimeNs: 7}
	a := &pb.Attr{
		Ino: 9, Type: pb.FileType_SYMLINK, Mode: 0o4755, Uid: 1, Gid: 2, Size: 5, Nlink: 3,
		AtimeNs: 10, MtimeNs: 11, CtimeNs: 12, SymlinkTarget: []byte("t"), MountId: 4,
		Ufs: fingerprintPB(fp), Pending: true,
	}
	want := &meta.Attr{
		Ino: 9, Type: meta.TypeSymlink, Mode: 0o4755, UID: 1, GID: 2, Size: 5, Nlink: 3,
		Atime: 10, Mtime: 11, Ctime: 12, Target: []byte("t"), MountID: 4, UFS: fp, Pending: true,
	}
	if got := attrMeta(a); !reflect.DeepEqual(got, want) {
		t.Fatalf("attrMeta = %+v\nwant %+v", got, want)
	}
	if attrMeta(nil) != nil || fingerprintPB(meta.Fingerprint{}) != nil || fingerprintMeta(nil) != (meta.Fingerprint{}) {
		t.Fatal("zero values do not convert to zero values")
	}
}
