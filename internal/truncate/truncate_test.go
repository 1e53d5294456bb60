package truncate_test

import (
	"fmt"
	"testing"

	"github.com/envelopecodec/envelope/internal/truncate"
)

func TestToCutsOnlyWhatIsLongerThanTheLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"a string shorter than the limit is kept", "abc", 4, "abc"},
		{"a string as long as the limit is kept", "abcd", 4, "abcd"},
		{"a string longer than the limit is cut and marked", "abcde", 4, "abcd..."},
		{"the empty string stays empty", "", 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := truncate.To(tt.in, tt.n); got != tt.want {
				t.Errorf("To(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if got := truncate.To([]byte(tt.in), tt.n); got != tt.want {
				t.Errorf("To([]byte(%q), %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func ExampleTo() {
	// Never a real key: a static key pasted where its ID belongs.
	fmt.Println(truncate.To("c2VjcmV0LWtleS1ieXRlcy1uZXZlci1yZWFs", 16))
	fmt.Println(truncate.To([]byte("test-key"), 16))
	// Output:
	// c2VjcmV0LWtleS1i...
	// test-key
}
