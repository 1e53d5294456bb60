package vault

// Exported for the external tests.
var (
	Backoff      = backoff
	ErrKeyID     = errKeyID
	MaxRetryWait = maxRetryWait
)
