package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

const topicUsage = `Usage: moldau topic <create|list|describe|delete|alter-config|add-partitions> [TOPIC...] [options]

  create TOPIC...          create topics (--partitions, --replication-factor, --config k=v, --if-not-exists)
  list                     list topic names (--internal to include internal topics)
  describe [TOPIC...]      describe topics in kafka-topics --describe format (all when none given)
  delete TOPIC...          delete topics (--if-exists)
  alter-config TOPIC...    set (--config k=v) or remove (--delete-config k) topic configs
  add-partitions TOPIC...  raise the partition count to --partitions N (the new total)

Brokers come from --bootstrap-server, else $MOLDAU_BOOTSTRAP, else 127.0.0.1:9092.`

func runTopic(e *env, args []string) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: one of create, list, describe, delete, alter-config, add-partitions")
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fs := newFlagSet("topic")
		printUsage(e.stdout, fs, topicUsage)
		return nil
	}
	switch sub {
	case "create", "list", "describe", "delete", "alter-config", "add-partitions":
	default:
		return e.usagef("unknown subcommand %q: want one of create, list, describe, delete, alter-config, add-partitions", sub)
	}

	fs := newFlagSet("topic " + sub)
	var bootstrap, partitionsS, rfS string
	var configs, delConfigs listFlag
	var ifNotExists, ifExists, internal bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	switch sub {
	case "create":
		fs.StringVar(&partitionsS, "partitions", "-1", "number of partitions (-1: broker default)")
		fs.StringVar(&rfS, "replication-factor", "-1", "replication factor (-1: broker default)")
		fs.Var(&configs, "config", "topic config override k=v (repeatable)")
		fs.BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	case "list":
		fs.BoolVar(&internal, "internal", false, "include internal topics")
	case "delete":
		fs.BoolVar(&ifExists, "if-exists", false, "succeed if the topic does not exist")
	case "alter-config":
		fs.Var(&configs, "config", "config to set, k=v (repeatable)")
		fs.Var(&delConfigs, "delete-config", "config key to remove (repeatable)")
	case "add-partitions":
		fs.StringVar(&partitionsS, "partitions", "", "new total number of partitions (required)")
	}
	e.name = "moldau topic " + sub
	topics, err := e.parseArgs(fs, args[1:], topicUsage)
	if err != nil {
		return err
	}
	needTopics := sub != "list" && sub != "describe"
	if needTopics && len(topics) == 0 {
		return e.usagef("missing topic name: moldau topic %s TOPIC [options]", sub)
	}
	if sub == "list" && len(topics) > 0 {
		return e.usagef("list takes no topic names, got %q", strings.Join(topics, " "))
	}
	adm, err := newAdmin(e.bootstrap(bootstrap))
	if err != nil {
		return err
	}
	defer adm.Close()

	switch sub {
	case "create":
		p, err := e.parseInt("partitions", partitionsS, -1, "a positive integer (or -1 for the broker default)")
		if err != nil {
			return err
		}
		if p == 0 {
			return e.argf("--partitions must be a positive integer (or -1 for the broker default), got %q", partitionsS)
		}
		rf, err := e.parseInt("replication-factor", rfS, -1, "a positive integer (or -1 for the broker default)")
		if err != nil {
			return err
		}
		if rf == 0 || rf > 32767 {
			return e.argf("--replication-factor must be a positive integer (or -1 for the broker default), got %q", rfS)
		}
		cfg, _, err := e.parseKV("config", configs)
		if err != nil {
			return err
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.CreateTopics(ctx, int32(p), int16(rf), configPtrs(cfg), topics...)
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		failed := false
		for _, t := range topics {
			r := resps[t]
			switch {
			case r.Err == nil:
				fmt.Fprintf(e.stdout, "Created topic %s.\n", t)
			case ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
			default:
				failed = true
				fmt.Fprintf(e.stderr, "%s: %s\n", e.name, createTopicError(r))
			}
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil

	case "list":
		names, err := listTopicNames(e, adm, internal)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintln(e.stdout, n)
		}
		return nil

	case "describe":
		ds, err := describeTopics(e, adm, topics)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, d := range ds {
			found[d.Name] = true
			writeTopicDescription(e.stdout, d, nil)
		}
		for _, t := range topics {
			if !found[t] {
				fmt.Fprintf(e.stderr, "%s: topic %q does not exist\n", e.name, t)
				return &exitError{code: 1}
			}
		}
		return nil

	case "delete":
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.DeleteTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		failed := false
		for _, t := range topics {
			r := resps[t]
			switch {
			case r.Err == nil:
				fmt.Fprintf(e.stdout, "Deleted topic %s.\n", t)
			case ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				failed = true
				fmt.Fprintf(e.stderr, "%s: topic %q does not exist (use --if-exists to ignore)\n", e.name, t)
			default:
				failed = true
				fmt.Fprintf(e.stderr, "%s: delete %s: %s\n", e.name, t, kerrMessage(r.Err, r.ErrMessage))
			}
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil

	case "alter-config":
		set, order, err := e.parseKV("config", configs)
		if err != nil {
			return err
		}
		if len(set) == 0 && len(delConfigs) == 0 {
			return e.usagef("nothing to change: give --config k=v and/or --delete-config k")
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.AlterTopicConfigs(ctx, alterConfigOps(set, order, delConfigs), topics...)
		if err != nil {
			return fmt.Errorf("alter configs: %w", err)
		}
		failed := false
		for _, r := range resps {
			if r.Err != nil {
				failed = true
				fmt.Fprintf(e.stderr, "%s: %s: %s\n", e.name, r.Name, kerrMessage(r.Err, r.ErrMessage))
				continue
			}
			fmt.Fprintf(e.stdout, "Updated config for topic %s.\n", r.Name)
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil

	case "add-partitions":
		if partitionsS == "" {
			return e.usagef("missing --partitions N (the new total partition count)")
		}
		n, err := e.parseInt("partitions", partitionsS, 1, "a positive integer")
		if err != nil {
			return err
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.UpdatePartitions(ctx, int(n), topics...)
		if err != nil {
			return fmt.Errorf("create partitions: %w", err)
		}
		failed := false
		for _, t := range topics {
			r := resps[t]
			if r.Err != nil {
				failed = true
				fmt.Fprintf(e.stderr, "%s: %s: %s\n", e.name, t, kerrMessage(r.Err, r.ErrMessage))
				continue
			}
			fmt.Fprintf(e.stdout, "Topic %s now has %d partitions.\n", t, n)
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil
	}
	return nil
}
