package master

import (
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

func attrPB(a *meta.Attr) *pb.Attr {
	if a == nil {
		return nil
	}
	return &pb.Attr{
		Ino:           a.Ino,
		Type:          pb.FileType(a.Type),
		Mode:          a.Mode,
		Uid:           a.UID,
		Gid:           a.GID,
		Size:          a.Size,
		Nlink:         a.Nlink,
		AtimeNs:       a.Atime,
		MtimeNs:       a.Mtime,
		CtimeNs:       a.Ctime,
		SymlinkTarget: a.Target,
		MountId:       a.MountID,
		Ufs:           fingerprintPB(a.UFS),
		Pending:       a.Pending,
		Rdev:          a.Rdev,
	}
}

func fingerprintPB(f meta.Fingerprint) *pb.Fingerprint {
	if f == (meta.Fingerprint{}) {
		return nil
	}
	return &pb.Fingerprint{Size: f.Size, Etag: f.ETag, Version: f.Version, MtimeNs: f.MtimeNs}
}

func fingerprintMeta(f *pb.Fingerprint) *metapb.Fingerprint {
	if f == nil {
		return nil
	}
	return &metapb.Fingerprint{Size: f.Size, Etag: f.Etag, Version: f.Version, MtimeNs: f.MtimeNs}
}

func dirEntryPB(e meta.DirEntry) *pb.DirEntry {
	return &pb.DirEntry{Name: e.Name, Ino: e.Ino, Type: pb.FileType(e.Type), Attr: attrPB(e.Attr)}
}
