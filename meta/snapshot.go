package meta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// snapMagic starts every snapshot stream; the digit is the format version.
const snapMagic = "skyfs-meta-snapshot 1\n"

// maxSnapKey and maxSnapValue bound one record of a snapshot stream.
const (
	maxSnapKey   = 64 << 10
	maxSnapValue = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot streams every key of rp to w: the magic line, then records of
// (uvarint key length, key, uvarint value length, value) in key order, then a
// zero key length, the record count and a CRC-32C of the records and the zero.
func WriteSnapshot(rp ReadPoint, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	crc := crc32.New(castagnoli)
	out := io.MultiWriter(bw, crc)
	if _, err := bw.WriteString(snapMagic); err != nil {
		return err
	}
	var count uint64
	var hdr [binary.MaxVarintLen64]byte
	err := rp.Scan(nil, nil, func(k, v []byte) (bool, error) {
		if string(k) == string(keyRestoring) {
			return true, nil
		}
		for _, b := range [][]byte{k, v} {
			n := binary.PutUvarint(hdr[:], uint64(len(b)))
			if _, err := out.Write(hdr[:n]); err != nil {
				return false, err
			}
			if _, err := out.Write(b); err != nil {
				return false, err
			}
		}
		count++
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("meta: snapshot: %w", err)
	}
	if _, err := out.Write([]byte{0}); err != nil { // a zero key length ends the records
		return err
	}
	trailer := binary.BigEndian.AppendUint64(nil, count)
	trailer = binary.BigEndian.AppendUint32(trailer, crc.Sum32())
	if _, err := bw.Write(trailer); err != nil {
		return err
	}
	return bw.Flush()
}

// RestoreSnapshot replaces the whole content of s with a stream written by
// WriteSnapshot. A damaged stream fails with ErrCorruptSnapshot and leaves the
// store marked as restoring (see Restoring), never silently partial.
func RestoreSnapshot(s Store, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		return fmt.Errorf("%w: bad header", ErrCorruptSnapshot)
	}
	crc := crc32.New(castagnoli)
	tr := &teeByteReader{r: br, crc: crc}
	err := s.ReplaceAll(func(put func(k, v []byte) error) error {
		if err := put(keyRestoring, []byte{1}); err != nil {
			return err
		}
		var count uint64
		for {
			k, err := readChunk(tr, maxSnapKey)
			if err != nil {
				return err
			}
			if len(k) == 0 {
				break
			}
			v, err := readChunk(tr, maxSnapValue)
			if err != nil {
				return err
			}
			if err := put(k, v); err != nil {
				return err
			}
			count++
		}
		sum := crc.Sum32()
		var tail [12]byte
		if _, err := io.ReadFull(br, tail[:]); err != nil {
			return fmt.Errorf("%w: truncated trailer", ErrCorruptSnapshot)
		}
		if binary.BigEndian.Uint64(tail[:8]) != count || binary.BigEndian.Uint32(tail[8:]) != sum {
			return fmt.Errorf("%w: count or checksum mismatch", ErrCorruptSnapshot)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.Update(func(tx Txn) error { return tx.Delete(keyRestoring) })
}

// Restoring reports whether a restore began and did not finish: the store's
// content is partial and must be restored again before use.
func Restoring(tx Txn) (bool, error) {
	_, err := tx.Get(keyRestoring)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// teeByteReader feeds what it reads into a checksum.
type teeByteReader struct {
	r   *bufio.Reader
	crc io.Writer
}

func (t *teeByteReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.crc.Write([]byte{b})
	}
	return b, err
}

func (t *teeByteReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.crc.Write(p[:n])
	return n, err
}

// readChunk reads one length-prefixed byte string of at most limit bytes.
func readChunk(r *teeByteReader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrCorruptSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	return b, nil
}
