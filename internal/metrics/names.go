package metrics

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's names of the APIs (ApiKeys' names, the request label of kafka.network:RequestMetrics)
// where kmsg spells them otherwise.
var kafkaAPINames = map[int16]string{
	4: "LeaderAndIsr", 17: "SaslHandshake", 22: "InitProducerId", 29: "DescribeAcls", 30: "CreateAcls",
	31: "DeleteAcls", 36: "SaslAuthenticate", 50: "DescribeUserScramCredentials",
	51: "AlterUserScramCredentials", 67: "AllocateProducerIds",
}

// apiNames is the request label of every API key up to 127, computed once.
var apiNames = func() (names [128]string) {
	for k := range int16(len(names)) {
		names[k] = apiNameSlow(k)
	}
	return names
}()

// apiName is Kafka's name of an API key ("Produce", "InitProducerId"), or the key in decimal.
func apiName(key int16) string {
	if key >= 0 && int(key) < len(apiNames) {
		return apiNames[key]
	}
	return apiNameSlow(key)
}

func apiNameSlow(key int16) string {
	if name, ok := kafkaAPINames[key]; ok {
		return name
	}
	if name := kmsg.NameForKey(key); name != "Unknown" && name != "" {
		return name
	}
	return strconv.Itoa(int(key))
}

// errorNames is Kafka's name of every error code from -1 to 127 (Errors' names, the error
// label of kafka.network:RequestMetrics,name=ErrorsPerSec), computed once.
var errorNames = func() (names [129]string) {
	for i := range names {
		names[i] = errorNameSlow(int16(i - 1))
	}
	return names
}()

// errorName is Kafka's name of an error code: "NONE" for 0, "NOT_LEADER_OR_FOLLOWER" for 6.
func errorName(code int16) string {
	if code >= -1 && int(code)+1 < len(errorNames) {
		return errorNames[code+1]
	}
	return errorNameSlow(code)
}

func errorNameSlow(code int16) string {
	switch code {
	case 0:
		return "NONE"
	case 6: // kerr keeps the pre-2.7 name
		return "NOT_LEADER_OR_FOLLOWER"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && (e.Code == code) {
		return e.Message
	}
	return "UNKNOWN_" + strconv.Itoa(int(code))
}
