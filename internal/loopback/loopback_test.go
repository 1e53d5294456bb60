package loopback_test

import (
	"testing"

	"github.com/envelopecodec/envelope/internal/loopback"
)

func TestHost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST:8081", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.1.2.3:7233", true},
		{"[::1]:8081", true},
		{"::1", true},
		{"[::1]", true},
		{"::ffff:127.0.0.1", true},
		{"0.0.0.0:8081", false},
		{"10.0.0.1", false},
		{"localhost.example.com", false},
		{"fe80::1%lo", false},
		{"", false},
	} {
		if got := loopback.Host(tt.host); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}
