// Command moldau is the Moldau broker and its tools in one binary.
//
//	moldau server [flags]            start a broker (see moldau server -h)
//	moldau topic|produce|consume|group|cluster|storage ...
//	moldau bench produce|consume|e2e [flags]   load generator and latency meter
//	moldau kafka-topics ...          Kafka's tools with Kafka's flags; also when the binary is
//	                                 invoked under that name (a symlink named kafka-topics)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moldau/moldau/internal/bench"
	"github.com/moldau/moldau/internal/broker"
	"github.com/moldau/moldau/internal/cli"
	"github.com/moldau/moldau/internal/config"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Invoked as kafka-topics(.sh) & co through a symlink: run that tool.
	if name, ok := cli.ToolName(args[0]); ok {
		return runTool(name, args[1:], stdin, stdout, stderr)
	}
	if len(args) < 2 {
		usage(stderr)
		return 2
	}
	cmd, rest := strings.TrimSuffix(args[1], ".sh"), args[2:]
	switch cmd {
	case "server":
		return serve(rest, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "moldau", version)
		return 0
	case "tools":
		// The Kafka tool names this binary answers to when linked under them (the Dockerfile and
		// scripts/cluster-local.sh make the links from this list).
		for _, c := range cli.Commands() {
			if strings.HasPrefix(c, "kafka-") {
				fmt.Fprintln(stdout, c)
			}
		}
		return 0
	case "bench":
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		return bench.Run(ctx, rest, stdout, stderr)
	}
	for _, c := range cli.Commands() {
		if c == cmd {
			return runTool(cmd, rest, stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "moldau: unknown command %q\n\n", cmd)
	usage(stderr)
	return 2
}

const version = "0.1.0-dev"

// runTool runs a client command; Ctrl-C stops it cleanly (a group consumer commits first).
func runTool(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return cli.RunContext(ctx, name, args, stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `Moldau %s: a Kafka-compatible event streaming broker in one binary.

Usage:
  moldau server [--config server.properties] [--override key=value ...] [flags]
  moldau <command> [args]

Commands:
  server                  start a broker (moldau server -h lists its flags)
%s

Kafka's tools, with Kafka's flags, also run when the binary is invoked under their name
(ln -s moldau kafka-topics).

Run 'moldau <command> --help' for a command's flags.
`, version, commandList())
}

// summaries describes the client commands for the usage text.
var summaries = map[string]string{
	"topic":                  "create, list, describe, delete, alter-config, add-partitions",
	"produce":                "send lines from stdin to a topic",
	"consume":                "print records: from beginning, an offset or a timestamp",
	"group":                  "list, describe, delete, reset-offsets, delete-offsets",
	"cluster":                "cluster info (nodes, roles, quorum, fenced, metadata lag), health (exit 1 on problem partitions), elect-leaders, rebalance",
	"verify":                 "check that nothing acknowledged is lost, optionally under faults",
	"kafka-topics":           "Kafka's kafka-topics.sh, same flags",
	"kafka-console-producer": "Kafka's kafka-console-producer.sh, same flags",
	"kafka-console-consumer": "Kafka's kafka-console-consumer.sh, same flags",
	"kafka-consumer-groups":  "Kafka's kafka-consumer-groups.sh, same flags",
	"kafka-leader-election":  "Kafka's kafka-leader-election.sh: preferred and unclean leader elections",
	"kafka-storage":          "Kafka's kafka-storage.sh: format, info, random-uuid",
	"kafka-features":         "Kafka's kafka-features.sh: describe, upgrade, downgrade, disable, version-mapping",
	"kafka-transactions":     "Kafka's kafka-transactions.sh: list, describe, describe-producers, abort, find-hanging",
	"transactions":           "list, describe, describe-producers, abort, find-hanging (kafka-transactions' commands and output)",
	"storage":                "format log dirs with a cluster id, show meta.properties, random-uuid",
	"bench":                  "load generator: produce, consume, e2e latency",

	"partition":                 "move replicas to other brokers, with progress; status, cancel",
	"broker":                    "decommission: move every replica off a broker",
	"kafka-reassign-partitions": "Kafka's kafka-reassign-partitions.sh, same flags",
}

func commandList() string {
	var b strings.Builder
	names := cli.Commands()
	if !slices.Contains(names, "bench") {
		names = append(names, "bench")
		slices.Sort(names)
	}
	for _, c := range names {
		fmt.Fprintf(&b, "  %-23s %s\n", c, summaries[c])
	}
	return b.String()
}

// serve runs `moldau server`. Errors from config and broker start-up carry no "moldau server:"
// prefix of their own: it is added here, once.
func serve(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.ParseServerArgs(args, os.Environ())
	if err != nil {
		var help *config.HelpError
		if errors.As(err, &help) {
			fmt.Fprint(stdout, help.Usage)
			return 0
		}
		fmt.Fprintf(stderr, "moldau server: %v\n", err) // config errors do not name the command
		return 2
	}
	level := new(slog.LevelVar) // log.level; the admin API changes it (PUT /api/v1/log/level)
	level.Set(cfg.LogLevel)
	logger := newLogger(stderr, cfg.LogFormat, level)
	say := announcer(stderr, cfg.LogFormat)
	for _, k := range cfg.Ignored {
		logger.Warn("config key has no effect in Moldau and is ignored", "key", k)
	}
	for _, w := range cfg.EnvWarnings {
		if w.Key != "" {
			logger.Warn("environment variable ignored", "variable", w.Var, "taken_for_key", w.Key, "reason", w.Reason)
		} else {
			logger.Warn("environment variable ignored", "variable", w.Var, "reason", w.Reason)
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	b, code := startBroker(ctx, cancel, cfg, logger, level, say)
	if b == nil {
		return code
	}
	dirs, _ := filepath.Abs(cfg.LogDirs[0])
	var listening []string
	for _, l := range b.Listeners() {
		listening = append(listening, fmt.Sprintf("%s (advertised %s)", l.Addr, l.Advertised))
	}
	console := "console off (http.listener=)"
	if a := b.HTTPAddr(); a != nil {
		console = "console http://" + a.String() + "/"
	}
	say("moldau %s: node %d listening on %s, %s, data in %s, ready in %s",
		version, cfg.NodeID, strings.Join(listening, ", "), console, dirs, time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	cancel() // a second Ctrl-C or SIGTERM now ends the process at once
	say("moldau: shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil {
		say("moldau: shutdown: %v", err)
		return 1
	}
	say("moldau: stopped cleanly")
	return 0
}

// startupStopGrace bounds how long an interrupted start-up may take to stop before the process
// exits anyway (what it wrote so far is crash-safe, as after kill -9).
const startupStopGrace = 3 * time.Second

// startBroker runs broker.Start. A SIGINT or SIGTERM during start-up (ctx ends) stops the
// process: Start notices ctx between its phases; if it does not return within startupStopGrace
// the process exits without it. The broker is nil when the process must exit with code.
func startBroker(ctx context.Context, stopSignals context.CancelFunc, cfg *config.Config, logger *slog.Logger, level *slog.LevelVar, say func(string, ...any)) (*broker.Broker, int) {
	type result struct {
		b   *broker.Broker
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := broker.Start(ctx, cfg, logger, broker.WithLogLevel(level), broker.WithVersion(version))
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil {
				say("moldau server: interrupted during start-up; stopped")
				return nil, 1
			}
			say("moldau server: %v", r.err)
			return nil, 1
		}
		return r.b, 0
	case <-ctx.Done():
	}
	stopSignals() // a second signal ends the process at once
	say("moldau server: interrupted during start-up; stopping")
	select {
	case r := <-done:
		if r.err == nil { // Start finished just as the signal came: stop it cleanly
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			if err := r.b.Shutdown(sctx); err != nil {
				say("moldau: shutdown: %v", err)
			}
		}
		say("moldau server: stopped during start-up")
	case <-time.After(startupStopGrace):
		say("moldau server: start-up did not stop within %s of the signal; exiting", startupStopGrace)
	}
	return nil, 1
}

// newLogger is the server's logger on w: log.format text (key=value, slog's TextHandler) or
// json (one object per line), at level.
// announcer prints the server's own lines (ready, shutting down, stopped, start-up errors) on w:
// plain lines, or with log.format=json one JSON object each ({"time","level":"INFO","msg"}), so
// that every line a JSON-logging node writes parses. They are printed whatever log.level says.
func announcer(w io.Writer, format string) func(string, ...any) {
	if format == "json" {
		l := slog.New(slog.NewJSONHandler(w, nil))
		return func(f string, args ...any) { l.Info(fmt.Sprintf(f, args...)) }
	}
	return func(f string, args ...any) { fmt.Fprintf(w, f+"\n", args...) }
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
