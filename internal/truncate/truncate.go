// Package truncate holds the project's one way of cutting a caller-supplied
// string (a key ID from a payload, a namespace from a token, a reason from a
// remote service) short before it goes into an error message or a log line.
// Each caller keeps its own limit.
package truncate

// To returns s as a string, cut to its first n bytes with "..." appended
// when it is longer than n bytes. It cuts bytes, not runes: the result is
// for messages, and a key pasted where an ID belongs must never reach a log
// whole.
func To[T string | []byte](s T, n int) string {
	if len(s) > n {
		return string(s[:n]) + "..."
	}
	return string(s)
}
