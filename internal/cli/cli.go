// Package cli implements Moldau's user-facing client commands (moldau topic, produce, consume,
// group, cluster, storage) and Kafka-compatible tool entry points (kafka-topics,
// kafka-console-producer, kafka-console-consumer, kafka-consumer-groups, kafka-storage) on top of
// franz-go's kgo and kadm.
//
// Every command is a function of its arguments, standard streams and context; the package keeps
// no global mutable state, so commands can run concurrently in one process (as the tests do).
//
// Exit codes: 0 success, 1 runtime failure or an invalid flag value, 2 usage error (unknown flag,
// missing required argument, wrong number of positional arguments).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBootstrap is used when neither a flag nor MOLDAU_BOOTSTRAP names the brokers.
const DefaultBootstrap = "127.0.0.1:9092"

// BootstrapEnv is the environment variable naming the default bootstrap servers.
const BootstrapEnv = "MOLDAU_BOOTSTRAP"

// commandFunc runs one command; args exclude the command name.
type commandFunc func(e *env, args []string) error

// commands maps every command name to its implementation. It is built per call (no package state
// is mutated after init, and this map is never written after construction).
func commandTable() map[string]commandFunc {
	return map[string]commandFunc{
		"topic":                  runTopic,
		"produce":                runProduce,
		"consume":                runConsume,
		"cluster":                runCluster,
		"group":                  runGroup,
		"verify":                 runVerify,
		"kafka-topics":           runKafkaTopics,
		"kafka-console-producer": runKafkaConsoleProducer,
		"kafka-console-consumer": runKafkaConsoleConsumer,
		"kafka-consumer-groups":  runKafkaConsumerGroups,
		"kafka-leader-election":  runKafkaLeaderElection,
		"kafka-storage":          runKafkaStorage,
		"kafka-features":         runKafkaFeatures,
		"kafka-transactions":     runKafkaTransactions,
		"transactions":           runTransactions,
		"storage":                runKafkaStorage,

		// Moving replicas (move_cmd.go, kafka_reassign_partitions.go).
		"partition":                 runPartition,
		"broker":                    runBroker,
		"kafka-reassign-partitions": runKafkaReassignPartitions,
	}
}

// Commands returns the names Run accepts, sorted: the moldau subcommands (topic, produce, consume,
// cluster, group) and the Kafka tool names (kafka-topics, ...). A binary invoked as one of the
// Kafka tool names (optionally with a ".sh" suffix) should call Run with that name.
func Commands() []string {
	t := commandTable()
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ToolName maps argv[0] to a command name when the binary is invoked under a Kafka tool's name:
// "/usr/bin/kafka-topics.sh" -> ("kafka-topics", true). It returns false for anything else
// (including "moldau"), in which case the caller dispatches on its first argument.
func ToolName(argv0 string) (string, bool) {
	base := strings.TrimSuffix(filepath.Base(argv0), ".sh")
	if !strings.HasPrefix(base, "kafka-") {
		return "", false
	}
	if _, ok := commandTable()[base]; !ok {
		return "", false
	}
	return base, true
}

// Run runs command name (one of Commands(), or a Kafka tool name with a ".sh" suffix) with args
// (not including the command name) and returns the process exit code.
func Run(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunContext(context.Background(), name, args, stdin, stdout, stderr)
}

// RunContext is Run with a context: cancelling it (e.g. on SIGINT) stops a running consumer or
// producer cleanly, committing what a group consumer has processed.
func RunContext(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{
		ctx:          ctx,
		stdin:        stdin,
		stdout:       stdout,
		stderr:       stderr,
		getenv:       os.Getenv,
		adminTimeout: 30 * time.Second,
		now:          time.Now,
	}
	return e.run(name, args)
}

// env carries everything a command may touch: no command reads globals.
type env struct {
	ctx          context.Context
	name         string // the command name as shown in messages ("kafka-topics", "moldau topic")
	stdin        io.Reader
	stdout       io.Writer
	stderr       io.Writer
	getenv       func(string) string
	adminTimeout time.Duration
	now          func() time.Time
}

func (e *env) run(name string, args []string) int {
	name = strings.TrimSuffix(filepath.Base(name), ".sh")
	fn, ok := commandTable()[name]
	if !ok {
		fmt.Fprintf(e.stderr, "moldau: unknown command %q; commands: %s\n", name, strings.Join(Commands(), ", "))
		return 2
	}
	if strings.HasPrefix(name, "kafka-") {
		e.name = name
	} else {
		e.name = "moldau " + name
	}
	return e.exit(fn(e, args))
}

// exit prints err the way its kind asks for and returns the exit code.
func (e *env) exit(err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	var ae *argError
	var ee *exitError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "%s: %s\n", e.name, ue.msg)
		fmt.Fprintf(e.stderr, "Try '%s --help' for more information.\n", ue.cmd)
		return 2
	case errors.As(err, &ae):
		fmt.Fprintf(e.stderr, "%s: %s\n", e.name, ae.msg)
		fmt.Fprintf(e.stderr, "Try '%s --help' for more information.\n", ae.cmd)
		return 1
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(e.stderr, ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintf(e.stderr, "%s: %v\n", e.name, err)
		return 1
	}
}

// usageError is a malformed command line (exit 2).
type usageError struct{ cmd, msg string }

func (u *usageError) Error() string { return u.msg }

// argError is a well-formed command line with an invalid value (exit 1).
type argError struct{ cmd, msg string }

func (a *argError) Error() string { return a.msg }

// exitError prints msg verbatim (if any) and exits with code.
type exitError struct {
	code int
	msg  string
}

func (x *exitError) Error() string { return x.msg }

func (e *env) usagef(format string, a ...any) error {
	return &usageError{cmd: e.name, msg: fmt.Sprintf(format, a...)}
}

func (e *env) argf(format string, a ...any) error {
	return &argError{cmd: e.name, msg: fmt.Sprintf(format, a...)}
}

// adminCtx bounds one administrative round of requests.
func (e *env) adminCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, e.adminTimeout)
}

// bootstrap resolves the seed brokers: the flag if set, else MOLDAU_BOOTSTRAP, else the default.
func (e *env) bootstrap(flagValue string) []string {
	v := flagValue
	if v == "" {
		v = e.getenv(BootstrapEnv)
	}
	if v == "" {
		v = DefaultBootstrap
	}
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// newClient opens a kgo client; extra options come after the defaults so they win.
func newClient(seeds []string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("moldau-cli"),
		kgo.DialTimeout(10 * time.Second),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create client for %s: %w", strings.Join(seeds, ","), err)
	}
	return cl, nil
}

// newAdmin opens a client and wraps it for admin requests; close the returned kadm client.
func newAdmin(seeds []string) (*kadm.Client, error) {
	cl, err := newClient(seeds)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// newFlagSet returns a FlagSet that reports errors to us rather than printing and exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags interspersed with positional arguments ("create orders --partitions 3"
// and "create --partitions 3 orders" both work); everything after "--" is positional. On -h or
// --help it prints usage to stdout and returns flag.ErrHelp.
func (e *env) parseArgs(fs *flag.FlagSet, args []string, usage string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(e.stdout, fs, usage)
				return nil, err
			}
			return nil, e.usagef("%s", strings.Replace(err.Error(), " -", " --", 1))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprintln(w, strings.TrimRight(usage, "\n"))
	fmt.Fprintln(w, "\nOptions:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// stringVars registers one string variable under several names (aliases).
func stringVars(fs *flag.FlagSet, p *string, value, usage string, names ...string) {
	for i, n := range names {
		u := usage
		if i > 0 {
			u = "alias for --" + names[0]
		}
		fs.StringVar(p, n, value, u)
	}
}

// parseKV parses "k=v" pairs (the value may contain '='); flagName names the flag in errors.
func (e *env) parseKV(flagName string, pairs []string) (map[string]string, []string, error) {
	m := make(map[string]string, len(pairs))
	var order []string
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, nil, e.argf("--%s must be key=value, got %q", flagName, p)
		}
		if _, dup := m[k]; !dup {
			order = append(order, k)
		}
		m[k] = v
	}
	return m, order, nil
}

// parseInt32 validates a numeric flag that was declared as a string, so the error names the flag
// and the offending value. min is the smallest accepted value.
func (e *env) parseInt(flagName, s string, minimum int64, what string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(s, &n)
	if err != nil || fmt.Sprint(n) != strings.TrimPrefix(strings.TrimSpace(s), "+") || n < minimum {
		return 0, e.argf("--%s must be %s, got %q", flagName, what, s)
	}
	return n, nil
}

// isFlagSet reports whether the named flag appeared on the command line.
func isFlagSet(fs *flag.FlagSet, names ...string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n {
				set = true
			}
		}
	})
	return set
}
