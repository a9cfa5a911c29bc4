package ufs

import (
	"errors"
	"slices"
	"strings"
)

// Redacted is what Options.Redacted and Scrub put in place of a secret.
const Redacted = "REDACTED"

// Options are the string options of a mount, such as "s3.endpoint" or
// "s3.secretAccessKey". Keys are matched exactly by backends; IsSecret decides
// which values are secret.
type Options map[string]string

// IsSecret reports whether the value of the option key is a secret: a key whose
// lower-cased form contains "secret", "password", "token" or "key", except an
// access key ID ("...accessKeyId"), which identifies rather than authenticates.
func IsSecret(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "accesskeyid") || strings.HasSuffix(k, "access_key_id") {
		return false
	}
	for _, word := range []string{"secret", "password", "token", "key"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}

// Get returns the value of key, or def when the key is absent or empty.
func (o Options) Get(key, def string) string {
	if v, ok := o[key]; ok && v != "" {
		return v
	}
	return def
}

// Redacted returns a copy of o in which every non-empty secret value is replaced by
// Redacted.
func (o Options) Redacted() Options {
	r := make(Options, len(o))
	for k, v := range o {
		if IsSecret(k) && v != "" {
			v = Redacted
		}
		r[k] = v
	}
	return r
}

// String lists the options as "k=v" pairs sorted by key, secrets redacted.
func (o Options) String() string {
	r := o.Redacted()
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(r[k])
	}
	b.WriteByte('}')
	return b.String()
}

// minScrubLen is the shortest secret value Scrub removes from messages: shorter
// ones would mangle every message and reveal nothing worth hiding.
const minScrubLen = 4

// GoString is String, so that %#v does not show secrets either.
func (o Options) GoString() string { return o.String() }

// Secrets returns the secret values of o worth scrubbing, longest first.
func (o Options) Secrets() []string {
	var s []string
	for k, v := range o {
		if IsSecret(k) && len(v) >= minScrubLen {
			s = append(s, v)
		}
	}
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

// Scrub returns err with every secret value of o removed from its message. The
// returned error still matches the same targets with errors.Is and errors.As.
// Scrub(nil) is nil.
func (o Options) Scrub(err error) error {
	if err == nil {
		return nil
	}
	secrets := o.Secrets()
	msg := err.Error()
	clean := scrubString(msg, secrets)
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

func scrubString(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, Redacted)
	}
	return s
}

// scrubbed is an error whose message had secrets removed.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }

// Is reports whether any error in the wrapped chain matches target; the chain
// itself is hidden so that no message with a secret can be reached by Unwrap.
func (e *scrubbed) Is(target error) bool { return errors.Is(e.err, target) }

// As finds the first error in the wrapped chain that matches target.
func (e *scrubbed) As(target any) bool { return errors.As(e.err, target) }
