package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// HelpError is returned by ParseServerArgs for -h/--help. errors.Is(err, flag.ErrHelp) is true;
// Usage is the text to print (to stdout, exit status 0).
type HelpError struct{ Usage string }

func (e *HelpError) Error() string { return e.Usage }
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// convenienceFlags maps `moldau server` flags to the config key they set.
var convenienceFlags = []struct{ name, key, usage string }{
	{"node-id", "node.id", "this node's `id` (node.id)"},
	{"listeners", "listeners", "client `listeners`, NAME://host:port,... (listeners)"},
	{"advertised-listeners", "advertised.listeners", "`listeners` given to clients, NAME://host:port,... (advertised.listeners)"},
	{"data-dir", "log.dirs", "data `directories`, comma-separated (log.dirs)"},
	{"num-partitions", "num.partitions", "default partition `count` of new topics (num.partitions)"},
	{"replication-factor", "default.replication.factor", "default replication `factor` of new topics (default.replication.factor)"},
	{"controller-listener", "controller.listener", "raft transport `host:port` (controller.listener)"},
	{"controller-quorum-voters", "controller.quorum.voters", "raft `voters`, id@host:port,... (controller.quorum.voters)"},
	{"http-listener", "http.listener", "`host:port` of the web console, admin API, /metrics, /healthz, /readyz; empty: off (http.listener, default " + DefaultHTTPListener + ")"},
	{"metrics-listener", "metrics.listener", "alias of --http-listener (metrics.listener)"},
}

// ParseServerArgs parses the arguments of `moldau server` (without the subcommand name) and the
// process environment ("NAME=value" entries, as os.Environ) into a Config.
//
//	moldau server [--config FILE | FILE] [--override key=value]... [--node-id N] ...
//
// As kafka-server-start, the properties file may also be given as the first positional argument.
// Precedence: flags (in command-line order, --override and the named flags alike) > environment
// (FromEnv) > file > defaults. Environment variables that name no broker key are left out and
// listed in Config.EnvWarnings, so a variable meant for another program (MOLDAU_BOOTSTRAP, read
// by the client commands, is skipped silently) or another Kafka image never stops the server.
// Errors do not start with "moldau server:": the caller names the command once when it prints them.
func ParseServerArgs(args []string, environ []string) (*Config, error) {
	fs := flag.NewFlagSet("moldau server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	var configPath string
	fs.StringVar(&configPath, "config", "", "server.properties `file` (Kafka format)")
	flagValues := map[string]string{}
	flagOrigins := map[string]string{}
	fs.Func("override", "set a config `key=value` (repeatable), as kafka-server-start --override", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", s)
		}
		flagValues[k], flagOrigins[k] = v, "flag --override "+s
		return nil
	})
	for _, f := range convenienceFlags {
		fs.Func(f.name, f.usage, func(s string) error {
			flagValues[f.key], flagOrigins[f.key] = s, "flag --"+f.name
			return nil
		})
	}

	rest := args
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &HelpError{Usage: serverUsage(fs)}
			}
			hint := "Run 'moldau server -h' for the flags; any config key can be set with --override key=value"
			if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
				if _, isKey := brokerIndex[name]; isKey || isIgnored(name) {
					hint = fmt.Sprintf("%s is a config key, not a flag: use --override %s=VALUE", name, name)
				}
			}
			return nil, fmt.Errorf("%v\n%s", err, hint)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	switch {
	case len(positional) > 1:
		return nil, fmt.Errorf("unexpected arguments %q: give one properties file, and set keys with --override key=value", positional[1:])
	case len(positional) == 1 && configPath != "":
		return nil, fmt.Errorf("properties file given twice (--config %s and %s): give one", configPath, positional[0])
	case len(positional) == 1:
		configPath = positional[0]
	}

	var layers []layer
	if configPath != "" {
		props, err := ReadProperties(configPath)
		if err != nil {
			return nil, err
		}
		layers = append(layers, layer{source: SourceFile, values: props, where: configPath})
	}
	env, envOrigins, envWarnings := serverEnv(environ)
	layers = append(layers,
		layer{source: SourceEnv, values: env, origin: envOrigins},
		layer{source: SourceFlag, values: flagValues, origin: flagOrigins})
	c, err := build(layers)
	if err != nil {
		return nil, err
	}
	c.EnvWarnings = envWarnings
	return c, nil
}

func serverUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString(`Usage: moldau server [--config server.properties | server.properties] [flags]

Starts a Moldau node (process.roles: broker, controller or both, the default).
Settings come from, highest first:
flags, KAFKA_*/MOLDAU_* environment variables (KAFKA_LOG_DIRS -> log.dirs), the
properties file, defaults. Config keys are Kafka's; any key can be set with
--override key=value. An unknown key in the file or a flag stops the server; an
environment variable that names no key is ignored with a warning (MOLDAU_BOOTSTRAP,
the client commands' variable, silently).

Flags:
`)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	b.WriteString("\nConfig keys (default):\n")
	for _, k := range brokerKeys {
		def := k.Default
		if k.Nullable && def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "  %-36s %s (%s)\n", k.Name, k.Doc, def)
	}
	return b.String()
}
