package bytesize

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, " 8M ": 8 << 20, "4m": 4 << 20, "4MiB": 4 << 20, "512KB": 512 << 10,
		"2GiB": 2 << 30, "1g": 1 << 30, "1T": 1 << 40,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]error{
		"": ErrSyntax, "G": ErrSyntax, "-1": ErrSyntax, "1X": ErrSyntax, "1.5G": ErrSyntax, "lots": ErrSyntax,
		"99999999999T": ErrRange, "99999999999999999999": ErrRange,
	} {
		if _, err := Parse(in); !errors.Is(err, want) {
			t.Errorf("Parse(%q): %v, want %v", in, err, want)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB", 1 << 62: "4.0 EiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
