package ufs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/ufs"
)

func TestCheckPath(t *testing.T) {
	cases := []struct {
		path string
		ok   bool
	}{
		{"", true},
		{"a", true},
		{"a/b/c", true},
		{"with space/é 日本語", true},
		{"...", true},
		{".hidden/x", true},
		{strings.Repeat("x", 255), true},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"./a", false},
		{"a/..", false},
		{"..", false},
		{"a\x00b", false},
		{"\xff", false},
		{strings.Repeat("x", 256), false},
		{"ok/" + strings.Repeat("é", 128), false},
	}
	for _, c := range cases {
		err := ufs.CheckPath(c.path)
		if (err == nil) != c.ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", c.path, err, c.ok)
		}
		if err != nil && !errors.Is(err, ufs.ErrInvalidPath) {
			t.Errorf("CheckPath(%q) = %v, not ErrInvalidPath", c.path, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x00\n") {
			t.Errorf("CheckPath(%q) message has control characters: %q", c.path, err)
		}
	}
}

func TestPathHelpers(t *testing.T) {
	cases := []struct {
		fn   string
		got  any
		want any
	}{
		{"Join", ufs.Join("", "a"), "a"},
		{"Join", ufs.Join("a", ""), "a"},
		{"Join", ufs.Join("a/b", "c"), "a/b/c"},
		{"Base", ufs.Base("a/b/c"), "c"},
		{"Base", ufs.Base("c"), "c"},
		{"Base", ufs.Base(""), ""},
		{"Dir", ufs.Dir("a/b/c"), "a/b"},
		{"Dir", ufs.Dir("c"), ""},
		{"IsWithin", ufs.IsWithin("a/b", "a"), true},
		{"IsWithin", ufs.IsWithin("a", "a"), true},
		{"IsWithin", ufs.IsWithin("ab", "a"), false},
		{"IsWithin", ufs.IsWithin("x", ""), true},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.fn, c.got, c.want)
		}
	}
}

func TestIsSecret(t *testing.T) {
	cases := map[string]bool{
		"s3.secretAccessKey": true,
		"s3.sessionToken":    true,
		"hdfs.password":      true,
		"x.apiKey":           true,
		"s3.sseCustomerKey":  true,
		"s3.accessKeyId":     false,
		"s3.endpoint":        false,
		"s3.region":          false,
		"hdfs.user":          false,
	}
	for k, want := range cases {
		if got := ufs.IsSecret(k); got != want {
			t.Errorf("IsSecret(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestOptionsRedaction(t *testing.T) {
	opts := ufs.Options{
		"s3.accessKeyId":     "AKIDEXAMPLE",
		"s3.secretAccessKey": "s3cr3t-value",
		"s3.sessionToken":    "tok-value",
		"s3.endpoint":        "http://127.0.0.1:9000",
	}
	s := opts.String()
	for _, secret := range []string{"s3cr3t-value", "tok-value"} {
		if strings.Contains(s, secret) {
			t.Fatalf("String() shows a secret: %s", s)
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v %s", opts, opts, opts, opts), secret) {
			t.Fatalf("formatting shows a secret")
		}
	}
	if !strings.Contains(s, "AKIDEXAMPLE") || !strings.Contains(s, "s3.secretAccessKey="+ufs.Redacted) {
		t.Fatalf("String() = %s", s)
	}
	if opts["s3.secretAccessKey"] != "s3cr3t-value" {
		t.Fatalf("Redacted changed the original")
	}

	base := fmt.Errorf("signing with s3cr3t-value failed: %w", fs.ErrPermission)
	err := opts.Scrub(base)
	if strings.Contains(err.Error(), "s3cr3t-value") || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Scrub: %v (is permission: %v)", err, errors.Is(err, fs.ErrPermission))
	}
	if opts.Scrub(nil) != nil {
		t.Fatalf("Scrub(nil) != nil")
	}
}

type fakeFS struct{ ufs.FileSystem }

func TestRegistry(t *testing.T) {
	var gotURL *url.URL
	ufs.Register("faketest", func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		gotURL = u
		if opts["fail"] != "" {
			return nil, fmt.Errorf("cannot log in with %s: %w", opts["fake.password"], ufs.ErrPermission)
		}
		return fakeFS{}, nil
	})
	ctx := context.Background()
	if _, err := ufs.Open(ctx, "FakeTest://host/some/prefix", nil); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if gotURL.Host != "host" || gotURL.Path != "/some/prefix" {
		t.Fatalf("factory got %v", gotURL)
	}
	cases := []struct {
		name string
		uri  string
		opts map[string]string
		want error
	}{
		{"UnknownScheme", "nope://x/y", nil, ufs.ErrUnknownScheme},
		{"UserInfo", "faketest://user:pa55word@host/p", nil, ufs.ErrInvalid},
		{"BadURI", "faketest://host/%zz", nil, ufs.ErrInvalid},
		{"FactoryError", "faketest://host/p", map[string]string{"fail": "1", "fake.password": "pa55word"}, ufs.ErrPermission},
	}
	for _, c := range cases {
		_, err := ufs.Open(ctx, c.uri, c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pa55word") {
			t.Errorf("%s: error shows the password: %v", c.name, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatalf("registering a scheme twice did not panic")
		}
	}()
	ufs.Register("faketest", func(context.Context, *url.URL, ufs.Options) (ufs.FileSystem, error) { return nil, nil })
}

func TestErrorMessage(t *testing.T) {
	err := &ufs.Error{FS: "s3://b/p", Op: "stat", Path: "a\nb", Err: fmt.Errorf("two\nlines: %w", fs.ErrNotExist)}
	if strings.ContainsAny(err.Error(), "\n") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Error() = %q", err.Error())
	}
	k := &ufs.KindError{Kind: ufs.ErrNotEmpty, Err: fs.ErrExist}
	if !errors.Is(k, ufs.ErrNotEmpty) || !errors.Is(k, fs.ErrExist) {
		t.Fatalf("KindError does not match both")
	}
}
