// Command kfake runs franz-go's in-memory fake Kafka broker (pkg/kfake) as a
// standalone process.
//
// It stands in for the real Moldau broker while that is being written: the
// integration scripts under test/ are validated against it (BROKER_IMPL=kfake,
// see test/lib.sh), and the benchmark harness uses it as a peer.
//
//	go run ./bench/kfake -addr 127.0.0.1:9092 -partitions 3
//
// Topic auto-creation is always on. The process runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kvFlags collects repeated key=value flags.
type kvFlags map[string]string

func (f kvFlags) String() string { return "" }

func (f kvFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("expected key=value, got %q", s)
	}
	f[k] = v
	return nil
}

func main() {
	var (
		addr       = flag.String("addr", "127.0.0.1:9092", "host:port to listen on (port 0 picks a free one)")
		partitions = flag.Int("partitions", 1, "partitions of auto-created topics and of seed topics")
		seed       = flag.String("seed-topics", "", "comma-separated topics to create at start")
		dataDir    = flag.String("data-dir", "", "persist state in this directory (empty: in memory only)")
		logLevel   = flag.String("log-level", "none", "kfake log level: none, error, warn, info, debug")
		configs    = make(kvFlags)
	)
	flag.Var(configs, "override", "broker config key=value (repeatable), as kfake.BrokerConfigs accepts")
	flag.Parse()

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
		// kfake formats the address itself as 127.0.0.1:port; listen where asked instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, *addr) }),
	}
	if *seed != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*seed, ",")...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if len(configs) > 0 {
		opts = append(opts, kfake.BrokerConfigs(configs))
	}
	if lvl, ok := logLevels[*logLevel]; !ok {
		log.Fatalf("kfake: unknown -log-level %q", *logLevel)
	} else if lvl != kfake.LogLevelNone {
		opts = append(opts, kfake.WithLogger(kfake.BasicLogger(os.Stderr, lvl)))
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		log.Fatalf("kfake: %v", err)
	}
	fmt.Printf("kfake listening on %s\n", strings.Join(c.ListenAddrs(), ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}

var logLevels = map[string]kfake.LogLevel{
	"none":  kfake.LogLevelNone,
	"error": kfake.LogLevelError,
	"warn":  kfake.LogLevelWarn,
	"info":  kfake.LogLevelInfo,
	"debug": kfake.LogLevelDebug,
}
