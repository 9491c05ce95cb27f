package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"peftbench/dashboard"
)

func init() {
	register(command{
		Name:    "serve",
		Order:   56,
		Summary: "serve results folders as a live web dashboard: run table, filters, groups, curves, tags",
		Run:     runServe,
	})
}

// serveShutdown bounds the graceful shutdown after Ctrl-C or SIGTERM.
const serveShutdown = 5 * time.Second

// runServe is `bench serve DIR... [--addr 127.0.0.1:8080]`: the dashboard
// package's web app over the results folders, until interrupted (then it
// exits 0: ending it is how a server is used).
func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one); the default answers this machine only")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench serve DIR... [--addr 127.0.0.1:8080]")
		fmt.Fprintln(stderr, "\nServes the results folders DIR... (sweep 0, 1, … in that order) as a web app")
		fmt.Fprintln(stderr, "that follows them live while a sweep writes them: a run table over every config")
		fmt.Fprintln(stderr, "key and metric with filter, sort and group-by (mean ± 95% CI across seeds),")
		fmt.Fprintln(stderr, "per-step curves, parallel coordinates, Pareto, spectra, and tags and notes stored")
		fmt.Fprintln(stderr, "in DIR/annotations.json. Ctrl-C stops it.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageErrorf("bench serve: want one or more results folders")
	}
	srv, err := dashboard.New(fs.Args())
	if err != nil {
		return fmt.Errorf("bench serve: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("bench serve: %w", err)
	}
	var h http.Handler = srv
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsLoopback() {
		h = dashboard.LoopbackOnly(h)
	} else {
		fmt.Fprintf(stderr, "bench serve: listening on %s: anyone who can reach this address can read these results and edit their tags and notes\n", ln.Addr())
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(stdout, "bench serve: http://%s/\n", pageHost(ln.Addr().(*net.TCPAddr)))

	ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("bench serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdown)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("bench serve: %w", err)
	}
	hs.Close()
	fmt.Fprintln(stderr, "bench serve: stopped")
	return nil
}

// pageHost is the host:port to print for a listening address: an
// unspecified address (0.0.0.0, ::) as localhost.
func pageHost(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", fmt.Sprint(a.Port))
	}
	return a.String()
}
