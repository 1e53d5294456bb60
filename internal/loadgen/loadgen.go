// Package loadgen sends HTTP load for the benchmarks and load tests: the
// same client loop everywhere, so their figures compare.
package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Post sends one POST of body with headers and returns its latency. Any
// status but 200 is an error.
func Post(client *http.Client, url string, body []byte, headers map[string]string) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadgen: %s answered %d", url, resp.StatusCode)
	}
	return time.Since(t0), nil
}

// Run posts body to url from clients goroutines for d and returns the
// latencies of the requests that finished, sorted, and the first error.
func Run(url string, body []byte, headers map[string]string, clients int, d time.Duration) ([]time.Duration, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients * 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var err error
			for time.Now().Before(deadline) {
				var lat time.Duration
				if lat, err = Post(client, url, body, headers); err != nil {
					break
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, mine...)
			if first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	slices.Sort(all)
	return all, first
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted latencies,
// or 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p/100), len(sorted)-1)]
}
