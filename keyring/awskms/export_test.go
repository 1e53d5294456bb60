package awskms

// Exported for the external tests.
var ErrKeyID = errKeyID
