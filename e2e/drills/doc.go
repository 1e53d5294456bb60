// Package drills holds the failure drills: the codec server under a steady
// load of encodes and decodes while its Vault cluster or key file fails
// (a three-node Vault with integrated storage, the real codec-server
// binary). They are slow and run only with the build tag:
//
//	make drill                      # go test -tags drill -count=1 -v -run '^TestDrill' ./e2e/drills (make test runs it)
//	DRILL_FAULT=30s DRILL_AFTER=15s DRILL_RATE=1 make drill
//
// docs/OPERATIONS.md "Failure drills" has the figures of a run and what an
// operator sees in each drill.
package drills
