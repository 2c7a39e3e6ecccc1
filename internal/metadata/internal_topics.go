package metadata

// The internal topics: the topics the broker's coordinators own and clients only read. Their
// names are Kafka's (Topic.GROUP_METADATA_TOPIC_NAME and the others).
const (
	// ConsumerOffsetsTopic holds the group coordinator's group metadata and committed offsets.
	ConsumerOffsetsTopic = "__consumer_offsets"
	// TransactionStateTopic will hold the transaction coordinator's state (reserved).
	TransactionStateTopic = "__transaction_state"
	// ShareGroupStateTopic will hold the share coordinator's state (KIP-932; reserved).
	ShareGroupStateTopic = "__share_group_state"
)

// IsInternalTopic reports whether name is an internal topic, as Kafka's Topic.isInternal does: by
// name, whether or not the topic exists yet. The Kafka API handlers refuse clients' writes to them
// (Produce, DeleteRecords, DeleteTopics, CreatePartitions) and Metadata reports them internal.
func IsInternalTopic(name string) bool {
	switch name {
	case ConsumerOffsetsTopic, TransactionStateTopic, ShareGroupStateTopic:
		return true
	}
	return false
}
