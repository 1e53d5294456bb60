// Package codecserver serves the envelope codec over HTTP for the Temporal
// Web UI, the temporal CLI and remote SDK clients.
package codecserver
