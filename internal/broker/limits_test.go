package broker

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsFrame is an ApiVersions v3 request frame.
func apiVersionsFrame(corr int32) []byte {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "limits-test", "1"
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, 18)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 1)
	b = append(b, 'c', 0) // client id, header tags
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// The connection keys reach the listener: max.connections.per.ip (and its overrides) and
// connections.max.idle.ms act on real connections, DescribeConfigs reports them, and
// AlterConfigs refuses to change them (static keys).
func TestConnectionLimitKeysWired(t *testing.T) {
	b := testBroker(t, t.TempDir(), "max.connections.per.ip", "1",
		"max.connections.per.ip.overrides", "127.0.0.1:100", "connections.max.idle.ms", "300")
	defer stopBroker(t, b)

	from := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	one := from("127.0.0.2")
	if _, err := one.Write(apiVersionsFrame(1)); err != nil {
		t.Fatal(err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(one, hdr[:]); err != nil {
		t.Fatalf("first connection from 127.0.0.2: %v", err)
	}
	if _, err := io.CopyN(io.Discard, one, int64(binary.BigEndian.Uint32(hdr[:4]))-4); err != nil {
		t.Fatal(err)
	}
	two := from("127.0.0.2")
	two.Write(apiVersionsFrame(2))
	if _, err := io.ReadFull(two, hdr[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second connection from 127.0.0.2 (max.connections.per.ip=1): %v, want it closed", err)
	}
	// one is now idle: closed after 300 ms.
	if _, err := io.Copy(io.Discard, one); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("idle connection still open after 5 s (connections.max.idle.ms=300)")
	}

	rcs, err := kadm.NewClient(client(t, b)).DescribeBrokerConfigs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"queued.max.request.bytes": "268435456", "connections.max.idle.ms": "300",
		"max.connections": "2147483647", "max.connections.per.ip": "1",
		"max.connections.per.ip.overrides": "127.0.0.1:100"}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if w, ok := want[c.Key]; ok {
				if c.MaybeValue() != w {
					t.Errorf("DescribeConfigs %s = %q, want %q", c.Key, c.MaybeValue(), w)
				}
				delete(want, c.Key)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("DescribeConfigs lacks %v", want)
	}
	// Static keys, as socket.request.max.bytes: AlterConfigs refuses them.
	v := "10"
	resps, err := kadm.NewClient(client(t, b)).AlterBrokerConfigsState(t.Context(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.connections", Value: &v}})
	if err == nil && (len(resps) != 1 || resps[0].Err == nil) {
		t.Errorf("AlterConfigs max.connections=10 accepted: %+v", resps)
	}
}
