package codec

import "time"

// SealKeysCached is sealKeysCached for the external tests.
var SealKeysCached = (*Codec).sealKeysCached

// WithNow returns opts with the clock now, a test hook not in Options.
func WithNow(opts Options, now func() time.Time) Options {
	opts.Now = now
	return opts
}

// DecodeKeysCached is decodeKeysCached for the external tests.
var DecodeKeysCached = (*Codec).decodeKeysCached
