// Command codec-server serves the envelope codec over HTTP.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "codec-server: not built yet")
	os.Exit(1)
}
