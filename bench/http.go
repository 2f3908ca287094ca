package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// httpOnly runs a row on wharf alone: the peers serve no HTTP, and get no
// line in its table.
func httpOnly(t *target) (bool, string) {
	return t.http != "", ""
}

// runHTTP is the retr row over wharf's HTTP listener ([http]): the same
// file, plan.repeat GETs on one keep-alive connection, each timed from the
// request to its last byte, landing in the arena and checked after the
// window, as the retr row's downloads are.
func runHTTP(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big
	buf := b.arena[:f.size]

	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1, ResponseHeaderTimeout: clientTimeout}
	defer tr.CloseIdleConnections()

	client := &http.Client{Transport: tr}
	u := (&url.URL{Scheme: "http", Host: t.http, Path: f.path}).String()

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		clear(buf) // what a download leaves must not pass the next one's check

		b.win.start()
		n, err := httpGet(ctx, client, u, buf)
		el += b.win.stop()

		if err != nil {
			return result{}, err
		}

		if err := verify(buf[:n], f); err != nil {
			return result{}, err
		}

		total += int64(n)
	}

	return throughput(total, el), nil
}

// httpGet downloads u into buf, which must be the body's size exactly.
func httpGet(ctx context.Context, client *http.Client, u string, buf []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}

	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(buf)) {
		return 0, fmt.Errorf("GET %s: %s, Content-Length %d, want 200 and %d", u, resp.Status, resp.ContentLength, len(buf))
	}

	n, err := io.ReadFull(resp.Body, buf)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", u, err)
	}

	// The body ends there: reading on lets the connection be reused.
	if m, err := resp.Body.Read(make([]byte, 1)); m != 0 || !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("GET %s: more than %d bytes", u, len(buf))
	}

	return n, nil
}
