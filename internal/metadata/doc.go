// Package metadata is Moldau's cluster metadata: the records committed through raft, the
// state machine (FSM) that applies them to a copy-on-write Image, and the Controller, the
// write path that validates requests and commits record batches.
//
// Start opens the raft node (internal/raftstore) in Config.RaftDir, waits for leadership of
// a single voter and writes the cluster id on first boot:
//
//	c, err := metadata.Start(ctx, metadata.Config{NodeID: 1, RaftDir: filepath.Join(logDir, "__raft")})
//	defer c.Close()
//	t, err := c.CreateTopic(ctx, metadata.CreateTopic{Name: "orders", Partitions: -1, ReplicationFactor: -1})
//	im := c.Image() // lock-free, immutable
//
// Brokers register (RegisterBroker), heartbeat (BrokerHeartbeat) and are fenced by the active
// controller when their session expires (lifecycle.go); partition leadership and ISR change by
// Kafka's election rules and AlterPartition (partitions.go); new replicas are placed
// rack-aware over the active brokers (placement.go).
//
// Lock order: Controller.mu (writers, and the in-memory broker sessions) is taken before
// anything in raft; FSM.mu only guards the subscriber set and is never held while calling out.
package metadata
