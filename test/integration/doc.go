// Package integration tests the built moldau binary with real clients: kcat (librdkafka),
// confluent-kafka-python, franz-go and Kafka's tool names. Every test starts its own
// `moldau server` process on a free loopback port with a fresh data dir, and stops it with SIGTERM
// (or kill -9, where that is the point).
//
// TestMain builds ./cmd/moldau once (with -race when the tests run with -race, so a data race in
// the broker fails the test that triggered it); MOLDAU_BIN names a prebuilt binary instead. kcat
// and /usr/bin/python3 with confluent_kafka must be installed:
//
//	apt-get install -y kcat python3-confluent-kafka
//	go test -race -count=1 ./test/integration
package integration
