package onboarding_test

import (
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/examples/internal/onboarding"
)

func TestDataSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sc   converter.SerializationContext
		want string
	}{
		{"a workflow of a customer", converter.WorkflowSerializationContext{WorkflowID: "onboard-C-1a2b3c"}, "C-1a2b3c"},
		{"the starter's default ID with its start time", converter.WorkflowSerializationContext{WorkflowID: "onboard-C-1a2b3c-1796168396"}, "C-1a2b3c"},
		{"an activity of that workflow", converter.ActivitySerializationContext{WorkflowID: "onboard-C-9"}, "C-9"},
		{"another workflow", converter.WorkflowSerializationContext{WorkflowID: "nightly-report"}, ""},
		{"no context", nil, ""},
	} {
		if got := onboarding.DataSubject(tc.sc); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
