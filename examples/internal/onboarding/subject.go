package onboarding

import (
	"regexp"
	"strings"

	"go.temporal.io/sdk/converter"
)

var startTimeSuffix = regexp.MustCompile(`-[0-9]{9,}$`)

// DataSubject is the example's codec.Options.Subject (docs/ERASURE.md): the
// payloads of workflow "onboard-<customer id>" or
// "onboard-<customer id>-<unix time>", and of its activities, belong to
// data subject <customer id>; other workflows have none.
func DataSubject(sc converter.SerializationContext) string {
	var id string
	switch s := sc.(type) {
	case converter.WorkflowSerializationContext:
		id = s.WorkflowID
	case converter.ActivitySerializationContext:
		id = s.WorkflowID
	}
	customer, ok := strings.CutPrefix(id, "onboard-")
	if !ok {
		return ""
	}
	return startTimeSuffix.ReplaceAllString(customer, "")
}
