package kickstart

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPFetcher returns a Fetcher for http(s) URLs with a timeout and a body
// limit; anything but 200 OK is an error naming the status.
func HTTPFetcher(timeout time.Duration, maxBytes int64) Fetcher {
	client := &http.Client{Timeout: timeout}
	return func(u string) ([]byte, error) {
		resp, err := client.Get(u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %s", u, resp.Status)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		if int64(len(data)) > maxBytes {
			return nil, fmt.Errorf("%s: larger than %d bytes", u, maxBytes)
		}
		return data, nil
	}
}
