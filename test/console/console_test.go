// Package console_test drives the web console end to end in a real browser: Debian's chromium,
// headless, through chromedp, against one real broker started in process. Every assertion on
// what the console did is checked against the broker with franz-go (kgo, kadm); every wait is a
// poll of a DOM condition (or of the broker) under a deadline.
//
// MOLDAU_CONSOLE_SCREENSHOTS=1 also saves a full-page PNG of each screen to docs/console/.
package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/brokertest"
)

const (
	topic = "orders"
	group = "billing"
	// waitFor is how long one DOM condition may take; the console polls every 2 s.
	waitFor = 20 * time.Second
)

// chromiumPath is $CHROMIUM or Debian's /usr/bin/chromium. Without it the test fails in CI and
// skips elsewhere, naming the package to install.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("the console e2e test needs chromium (%v): apt-get install -y chromium (or set CHROMIUM to its path)", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// page is the console open in one chromium tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string // http://host:port/
	mu   struct {
		sync.Mutex
		exceptions []string // uncaught exceptions the page threw
	}
}

func openBrowser(t *testing.T, chromium, base string) *page {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &page{t: t, base: base}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf), chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			p.mu.Lock()
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			p.mu.exceptions = append(p.mu.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			p.mu.Unlock()
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts chromium
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	p.ctx = ctx
	return p
}

// run runs actions with a deadline of waitFor; on failure it logs what the page shows.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(what, err)
	}
}

func (p *page) fail(what string, err error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('app') ? document.getElementById('app').innerText : document.body.innerText`))
	if len(text) > 4000 {
		text = text[:4000] + "…"
	}
	p.t.Fatalf("%s: %v\n--- the page shows:\n%s", what, err, text)
}

// open navigates to a console route (the part after #) and waits for sel.
func (p *page) open(route, sel string) {
	p.t.Helper()
	p.run("open #"+route, chromedp.Navigate(p.base+"#"+route), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// eval evaluates a JS expression and decodes its (JSON) value.
func eval[T any](p *page, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail(what, err)
	}
	return v
}

// eval0 evaluates a JS expression for its effect.
func (p *page) eval0(what, expr string) {
	p.t.Helper()
	eval[chromedp.Void](p, what, expr)
}

// waitUntil evaluates expr (JSON-able) until ok accepts its value, or fails after waitFor with
// the last value.
func waitUntil[T any](p *page, what, expr string, ok func(T) bool) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err == nil && ok(v) {
			return v
		}
		select {
		case <-ctx.Done():
			p.fail(what, fmt.Errorf("%w; last value %+v (eval error %v)", ctx.Err(), v, err))
		case <-tick.C:
		}
	}
}

// set sets a form field's value as typing or choosing would, firing input and change.
func (p *page) set(sel, value string) {
	p.t.Helper()
	p.setNth(sel, 0, value)
}

// setNth sets the value of the nth (from 0) field that sel matches.
func (p *page) setNth(sel string, n int, value string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelectorAll(%q)[%d]; if (!el) return null;
		el.value = %q; el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return el.value; })()`,
		sel, n, value)
	got := eval[*string](p, "set "+sel, js)
	if got == nil || *got != value {
		p.t.Fatalf("set %s[%d] to %q: no such field, or it holds %v", sel, n, value, got)
	}
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// screenshot saves a full-page PNG to docs/console/NAME.png when MOLDAU_CONSOLE_SCREENSHOTS=1.
func (p *page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("MOLDAU_CONSOLE_SCREENSHOTS") != "1" {
		return
	}
	// From the top (the header and the side bar are sticky), without the toasts of earlier steps.
	p.eval0("screenshot "+name, `window.scrollTo(0, 0); document.getElementById('toasts').replaceChildren()`)
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.fail("screenshot "+name, err)
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) exceptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.exceptions)
}

// sel builds a [data-test=...] selector.
func sel(test string) string { return fmt.Sprintf("[data-test=%q]", test) }

// hexdump is the console's hex view of b: offset, 16 bytes in hex, their printable ASCII.
func hexdump(b []byte) string {
	var lines []string
	for i := 0; i < len(b); i += 16 {
		row := b[i:min(i+16, len(b))]
		hx := make([]string, len(row))
		asc := make([]byte, len(row))
		for j, x := range row {
			hx[j] = fmt.Sprintf("%02x", x)
			asc[j] = '.'
			if x >= 32 && x < 127 {
				asc[j] = x
			}
		}
		lines = append(lines, fmt.Sprintf("%08x  %-48s %s", i, strings.Join(hx, " "), asc))
	}
	return strings.Join(lines, "\n")
}

// offsetRow is one row of the group page's offsets table.
type offsetRow struct {
	Partition int32 `json:"partition"`
	Committed int64 `json:"committed"`
	HW        int64 `json:"hw"`
	Lag       int64 `json:"lag"`
}

const offsetsJS = `[...document.querySelectorAll('[data-test=offsets-table] tr[data-partition]')].map(tr => ({
	partition: +tr.dataset.partition,
	committed: +tr.querySelector('[data-test=offset-committed]').dataset.value,
	hw: +tr.querySelector('[data-test=offset-hw]').dataset.value,
	lag: +tr.querySelector('[data-test=offset-lag]').dataset.value,
	lagText: tr.querySelector('[data-test=offset-lag]').textContent }))`

func TestConsole(t *testing.T) {
	chromium := chromiumPath(t)
	started := time.Now()
	b := brokertest.Start(t, map[string]string{"lag.history.interval.ms": "200"})
	seeds := kgo.SeedBrokers(b.Addr().String())
	cl, err := kgo.NewClient(seeds, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := openBrowser(t, chromium, "http://"+b.HTTPAddr().String()+"/")

	// 1. The overview shows this node and the throughput charts.
	p.open("/", sel("nodes-table")+" tr[data-node]")
	nodes := waitUntil(p, "overview nodes", `({card: document.querySelector('[data-test=card-nodes-value]').textContent,
		rows: [...document.querySelectorAll('[data-test=nodes-table] tr[data-node]')].map(r => r.dataset.node),
		charts: document.querySelectorAll('[data-test=chart-bytes], [data-test=chart-messages]').length})`,
		func(v struct {
			Card   string
			Rows   []string
			Charts int
		}) bool {
			return v.Card == "1" && len(v.Rows) == 1 && v.Charts == 2
		})
	t.Logf("overview: %d node(s), node %s", len(nodes.Rows), nodes.Rows[0])

	// 2. Create a topic through the create form: name, partitions, two configs.
	p.open("/topics", sel("topic-create"))
	p.click(sel("topic-create"))
	p.run("create dialog", chromedp.WaitVisible(chromedp.CSS(sel("create-dialog"))),
		chromedp.SendKeys(chromedp.CSS(sel("create-name")), topic))
	p.set(sel("create-partitions"), "3")
	wantConfigs := [][2]string{{"retention.ms", "86400000"}, {"max.message.bytes", "2097152"}}
	for i, kv := range wantConfigs {
		p.click(sel("create-config-add"))
		p.setNth(sel("create-config-key"), i, kv[0])
		p.setNth(sel("create-config-value"), i, kv[1])
	}
	p.screenshot("topic-create")
	p.click(sel("create-submit"))
	p.run("topic listed", chromedp.WaitNotPresent(chromedp.CSS(sel("create-dialog"))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-test=topics-table] tr[data-topic=%q]`, topic))))
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if d := details[topic]; d.Err != nil || len(d.Partitions) != 3 {
		t.Fatalf("kadm: topic %s: err %v, %d partitions, want 3", topic, d.Err, len(d.Partitions))
	}
	for _, kv := range wantConfigs {
		if v, src := topicConfig(ctx, t, adm, kv[0]); v != kv[1] || src != "DYNAMIC_TOPIC_CONFIG" {
			t.Errorf("kadm: %s = %q (source %s), want %q set on the topic", kv[0], v, src, kv[1])
		}
	}
	waitUntil(p, "topics total", `document.querySelector('[data-test=topics-total]').textContent`, func(v string) bool { return v == "1 topic" })
	p.screenshot("topics")

	// The topic page, its partitions tab.
	p.click(fmt.Sprintf(`[data-test=topic-link][data-name=%q]`, topic))
	p.run("partitions tab", chromedp.WaitVisible(chromedp.CSS(sel("partitions-table")+" tr[data-partition='2']")))

	// 3. Produce one record through the produce form: partition 0, a key, a JSON value, a header.
	const (
		prodKey    = "order-1"
		prodValue  = `{"id":1,"item":"kettle","price":24.5}`
		prodHeader = "source"
		prodHVal   = "console"
	)
	p.click(sel("tab-produce"))
	p.run("produce form", chromedp.WaitVisible(chromedp.CSS(sel("produce-submit"))),
		chromedp.SendKeys(chromedp.CSS(sel("produce-key")), prodKey),
		chromedp.SendKeys(chromedp.CSS(sel("produce-value")), prodValue))
	p.set(sel("produce-partition"), "0")
	p.click(sel("produce-header-add"))
	p.run("header", chromedp.SendKeys(chromedp.CSS(sel("produce-header-key")), prodHeader),
		chromedp.SendKeys(chromedp.CSS(sel("produce-header-value")), prodHVal))
	p.click(sel("produce-submit"))
	p.run("produced", chromedp.WaitVisible(chromedp.CSS(sel("produce-ok"))))
	produced := eval[struct{ Partition, Offset string }](p, "produce result",
		`({partition: document.querySelector('[data-test=produce-ok]').dataset.partition, offset: document.querySelector('[data-test=produce-ok]').dataset.offset})`)
	if produced.Partition != "0" || produced.Offset != "0" {
		t.Fatalf("the console says it produced to partition %s offset %s, want 0/0", produced.Partition, produced.Offset)
	}
	p.screenshot("produce")
	consumeFirst(ctx, t, seeds, func(r *kgo.Record) {
		if r.Partition != 0 || r.Offset != 0 || string(r.Key) != prodKey || string(r.Value) != prodValue ||
			len(r.Headers) != 1 || r.Headers[0].Key != prodHeader || string(r.Headers[0].Value) != prodHVal {
			t.Fatalf("consumed %d/%d key %q value %q headers %v, want 0/0 %q %q [%s=%s]",
				r.Partition, r.Offset, r.Key, r.Value, r.Headers, prodKey, prodValue, prodHeader, prodHVal)
		}
	})

	// Its "view" link opens the message browser at that partition and offset, and the record's
	// detail shows the key, the header and the value pretty-printed.
	p.click(sel("produce-view"))
	seen := waitUntil(p, "view the produced record", `(() => { const done = document.querySelector('[data-test=msg-progress-text][data-state=done]');
		const r = document.querySelector('[data-test=msg-row]'); return done && r ? r.dataset.partition + '/' + r.dataset.offset : null; })()`,
		func(v *string) bool { return v != nil })
	if *seen != "0/0" {
		t.Fatalf("the produced record's view link shows %s first, want 0/0", *seen)
	}
	p.click(`[data-test=msg-row][data-partition="0"][data-offset="0"]`)
	p.run("produced record detail", chromedp.WaitVisible(chromedp.CSS(sel("msg-detail")+" [data-test=msg-value-view][data-mode=pretty]")))
	detail := eval[struct{ Key, Header, Value string }](p, "produced record detail", `(() => { const d = document.querySelector('[data-test=msg-detail]');
		return {key: d.querySelector('[data-test=msg-detail-key]').textContent, header: d.querySelector('[data-test=msg-header]').textContent,
			value: d.querySelector('[data-test=msg-value-view]').textContent}; })()`)
	var prettyProd bytes.Buffer
	if err := json.Indent(&prettyProd, []byte(prodValue), "", "  "); err != nil {
		t.Fatal(err)
	}
	if detail.Key != prodKey || detail.Header != prodHeader+" = "+prodHVal || detail.Value != prettyProd.String() {
		t.Fatalf("the produced record's detail shows key %q, header %q, value\n%s\nwant %q, %q and\n%s",
			detail.Key, detail.Header, detail.Value, prodKey, prodHeader+" = "+prodHVal, prettyProd.String())
	}

	// 4. The message browser. Partition 1: 3000 records, record i at base + i s + 0.5 s;
	// partition 2: 500 records, record i at base + 3i s + 0.5 s. "needle" is in four values,
	// one of them near the end of partition 1.
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	needles := map[int32][]int64{1: {7, 1500, 2990}, 2: {499}}
	var recs []*kgo.Record
	value := func(part int32, i int64) []byte {
		tag := "plain"
		if slices.Contains(needles[part], i) {
			tag = "needle"
		}
		return fmt.Appendf(nil, `{"n":%d,"tag":"%s","items":[1,2]}`, i, tag)
	}
	for i := range int64(3000) {
		recs = append(recs, &kgo.Record{Partition: 1, Key: fmt.Appendf(nil, "k-%04d", i), Value: value(1, i),
			Timestamp: base.Add(time.Duration(i)*time.Second + 500*time.Millisecond)})
	}
	for i := range int64(500) {
		recs = append(recs, &kgo.Record{Partition: 2, Key: fmt.Appendf(nil, "p2-%04d", i), Value: value(2, i),
			Timestamp: base.Add(time.Duration(3*i)*time.Second + 500*time.Millisecond)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The partitions tab shows each partition's high watermark as kadm lists it.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hw := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { hw[o.Partition] = o.Offset })
	if fmt.Sprint(hw) != fmt.Sprint(map[int32]int64{0: 1, 1: 3000, 2: 500}) {
		t.Fatalf("kadm end offsets %v, want 0:1 1:3000 2:500", hw)
	}
	p.open("/topics/"+topic+"/partitions", sel("partitions-table")+" tr[data-partition='2']")
	shownHW := waitUntil(p, "partitions high watermarks", `(() => { const t = document.querySelector('[data-test=partitions-table]');
		const col = [...t.querySelectorAll('th')].findIndex(th => th.textContent === 'High watermark');
		return Object.fromEntries([...t.querySelectorAll('tr[data-partition]')].map(tr => [tr.dataset.partition, +tr.children[col].textContent.replace(/,/g, '')])); })()`,
		func(v map[int32]int64) bool { return fmt.Sprint(v) == fmt.Sprint(hw) })
	t.Logf("partitions tab: high watermarks %v", shownHW)
	p.screenshot("topic-partitions")

	// Seek partition 1 by timestamp: base + 1234 s falls between records 1233 and 1234.
	seek := base.Add(1234 * time.Second)
	p.open("/topics/"+topic+"/messages", sel("msg-search"))
	p.set(sel("msg-partition"), "1")
	p.set(sel("msg-from"), "timestamp")
	p.set(sel("msg-timestamp"), localInput(p, seek))
	p.click(sel("msg-search"))
	first := waitUntil(p, "timestamp seek", `(() => { const done = document.querySelector('[data-test=msg-progress-text][data-state=done]');
		const r = document.querySelector('[data-test=msg-row]'); return done && r ? {partition: r.dataset.partition, offset: r.dataset.offset, n: document.querySelectorAll('[data-test=msg-row]').length} : null; })()`,
		func(v *struct {
			Partition, Offset string
			N                 int
		}) bool {
			return v != nil
		})
	if first.Partition != "1" || first.Offset != "1234" || first.N != 50 {
		t.Fatalf("seek to %v: first record shown %s/%s (%d rows), want partition 1 offset 1234 (50 rows)", seek, first.Partition, first.Offset, first.N)
	}
	// The next page goes on from where this one stopped.
	p.click(sel("msg-next"))
	next := waitUntil(p, "next page", `(() => { const done = document.querySelector('[data-test=msg-progress-text][data-state=done]');
		const r = document.querySelector('[data-test=msg-row]'); return done && r ? r.dataset.partition + '/' + r.dataset.offset : null; })()`,
		func(v *string) bool { return v != nil && *v != "1/1234" })
	if *next != "1/1284" {
		t.Fatalf("the next page starts at %s, want 1/1284", *next)
	}

	// The text filter over all partitions: exactly the four needles, the scan through every record.
	p.set(sel("msg-partition"), "")
	p.set(sel("msg-from"), "earliest")
	p.set(sel("msg-filter"), "needle")
	p.click(sel("msg-search"))
	type shown struct {
		Rows []string
		Text string
	}
	got := waitUntil(p, "filter", `(() => { const done = document.querySelector('[data-test=msg-progress-text][data-state=done]');
		return done ? {rows: [...document.querySelectorAll('[data-test=msg-row]')].map(r => r.dataset.partition + '/' + r.dataset.offset), text: done.textContent} : null; })()`,
		func(v *shown) bool { return v != nil })
	var want []string
	for part, offs := range needles {
		for _, o := range offs {
			want = append(want, fmt.Sprintf("%d/%d", part, o))
		}
	}
	slices.Sort(want)
	slices.Sort(got.Rows)
	if !slices.Equal(got.Rows, want) {
		t.Fatalf("filter needle shows %v, want exactly %v", got.Rows, want)
	}
	if !strings.Contains(got.Text, "scanned 3,501") || !strings.Contains(got.Text, "matched 4") {
		t.Fatalf("filter progress %q, want scanned 3,501 (every record) and matched 4", got.Text)
	}

	// Its JSON value pretty-printed, then the hex view.
	p.click(`[data-test=msg-row][data-partition="1"][data-offset="1500"]`)
	raw := value(1, 1500)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	p.run("detail", chromedp.WaitVisible(chromedp.CSS(sel("msg-detail")+" [data-test=msg-value-view][data-mode=pretty]")))
	view := eval[string](p, "pretty view", `document.querySelector('[data-test=msg-detail] [data-test=msg-value-view]').textContent`)
	if view != pretty.String() {
		t.Fatalf("pretty view:\n%s\nwant:\n%s", view, pretty.String())
	}
	p.screenshot("messages")
	p.click(sel("msg-detail") + " " + sel("msg-view-hex"))
	p.run("hex view", chromedp.WaitVisible(chromedp.CSS(sel("msg-detail")+" [data-test=msg-value-view][data-mode=hex]")))
	view = eval[string](p, "hex view", `document.querySelector('[data-test=msg-detail] [data-test=msg-value-view]').textContent`)
	if view != hexdump(raw) {
		t.Fatalf("hex view:\n%s\nwant:\n%s", view, hexdump(raw))
	}

	// 5. A group with offsets committed behind the end: the group page shows lag = HW − committed.
	commits := map[int32]int64{0: 0, 1: 1000, 2: 100}
	var toCommit kadm.Offsets
	for part, o := range commits {
		toCommit.Add(kadm.Offset{Topic: topic, Partition: part, At: o, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, toCommit); err != nil {
		t.Fatal(err)
	}
	p.open("/groups", sel("groups-table"))
	p.run("group listed", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-test=group-link][data-group=%q]`, group))))
	waitUntil(p, "groups total", `document.querySelector('[data-test=groups-total]').textContent`, func(v string) bool { return v == "1 group" })
	p.screenshot("groups")
	p.click(fmt.Sprintf(`[data-test=group-link][data-group=%q]`, group))
	lagIs := func(what string, want func(part int32) int64) {
		t.Helper()
		waitUntil(p, what, offsetsJS, func(rows []offsetRow) bool {
			if len(rows) != 3 {
				return false
			}
			for _, r := range rows {
				if r.Lag != want(r.Partition) || r.Lag != r.HW-r.Committed {
					return false
				}
			}
			return true
		})
	}
	lagIs("lag = HW − committed", func(part int32) int64 { return hw[part] - commits[part] })

	// A group consumer reads to the end and commits: the page shows lag 0.
	consumer, err := kgo.NewClient(seeds, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.ClientID("billing-consumer"))
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan error, 1)
	go func() {
		for {
			fs := consumer.PollFetches(cctx)
			if cctx.Err() != nil {
				consumerDone <- nil
				return
			}
			if err := fs.Err(); err != nil {
				consumerDone <- err
				return
			}
			if err := consumer.CommitUncommittedOffsets(cctx); err != nil && cctx.Err() == nil {
				consumerDone <- err
				return
			}
		}
	}()
	stop := func() {
		stopConsumer()
		if err := <-consumerDone; err != nil {
			t.Fatalf("consumer: %v", err)
		}
		consumer.Close() // leaves the group
	}
	defer func() {
		if cctx.Err() == nil {
			stop()
		}
	}()
	lagIs("lag 0 while the consumer runs", func(int32) int64 { return 0 })
	waitUntil(p, "one member", `document.querySelectorAll('[data-test=members-table] tr[data-member]').length`, func(n int) bool { return n == 1 })

	// It pauses; 25 more records: the lag goes up to 25 on partition 0, then back to 0 when it resumes.
	consumer.PauseFetchTopics(topic)
	var more []*kgo.Record
	for i := range 25 {
		more = append(more, &kgo.Record{Partition: 0, Key: fmt.Appendf(nil, "late-%d", i), Value: []byte(`{"late":true}`)})
	}
	if err := cl.ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lagIs("lag up by 25", func(part int32) int64 {
		if part == 0 {
			return 25
		}
		return 0
	})
	waitUntil(p, "total lag card 25", `document.querySelector('[data-test=group-total-lag-value]').textContent`, func(s string) bool { return s == "25" })
	consumer.ResumeFetchTopics(topic)
	lagIs("lag back to 0", func(int32) int64 { return 0 })
	// The lag-over-time chart drew the history: points, the first lag (2,000 + 400 + 1 = 2,401) its top.
	chart := waitUntil(p, "lag chart", `(() => { const c = document.querySelector('[data-test=panel-lag-chart] svg[data-test=lag-chart]');
		return c ? {points: +c.dataset.points, max: +c.dataset.max, paths: c.querySelectorAll('path').length} : null; })()`,
		func(v *struct{ Points, Max, Paths int }) bool { return v != nil && v.Points >= 3 && v.Max == 2401 })
	if chart.Paths == 0 {
		t.Fatalf("lag chart %+v has no line", chart)
	}
	p.screenshot("group")

	// 6. Reset offsets. While the consumer is a member the broker refuses (409) and the console says why.
	p.set(sel("reset-to"), "earliest")
	p.click(sel("reset-dry-run"))
	p.run("reset refused", chromedp.WaitVisible(chromedp.CSS(sel("reset-error"))))
	refused := eval[string](p, "reset error", `document.querySelector('[data-test=reset-error]').textContent`)
	if !strings.Contains(refused, "active member") || !strings.Contains(refused, "stop the group's consumers first") {
		t.Fatalf("reset of a running group shows %q, want the 409 reason and what to do", refused)
	}
	beforeReset := fetchCommitted(ctx, t, adm)
	stop()
	waitUntil(p, "group empty", `document.querySelector('[data-test=reset-warning]').textContent`, func(s string) bool { return strings.Contains(s, "The group is empty") })

	// Dry run to a timestamp: the preview shows the first offsets at or after it, nothing moves.
	resetTS := base.Add(1234 * time.Second)
	p.set(sel("reset-to"), "timestamp")
	p.set(sel("reset-timestamp"), localInput(p, resetTS))
	p.click(sel("reset-dry-run"))
	wantPreview := map[int32]int64{0: 0, 1: 1234, 2: 412} // p0's records are all newer
	preview := waitUntil(p, "dry run preview", `(() => { if (!document.querySelector('[data-test=reset-state][data-state=dry-run]')) return null;
		return [...document.querySelectorAll('[data-test=reset-result] tr[data-partition]')].map(tr => [+tr.dataset.partition, +tr.querySelector('[data-test=reset-new]').textContent.replace(/,/g, '')]); })()`,
		func(v [][2]int64) bool { return v != nil })
	gotPreview := map[int32]int64{}
	for _, r := range preview {
		gotPreview[int32(r[0])] = r[1]
	}
	if fmt.Sprint(gotPreview) != fmt.Sprint(wantPreview) {
		t.Fatalf("dry run to %v previews %v, want %v", resetTS, gotPreview, wantPreview)
	}
	p.screenshot("group-reset-dry-run")
	if after := fetchCommitted(ctx, t, adm); fmt.Sprint(after) != fmt.Sprint(beforeReset) {
		t.Fatalf("a dry run moved the committed offsets: %v, were %v", after, beforeReset)
	}

	// For real, to earliest: dry run, apply, confirm; kadm sees every offset at 0.
	p.set(sel("reset-to"), "earliest")
	p.click(sel("reset-dry-run"))
	p.run("earliest dry run", chromedp.WaitVisible(chromedp.CSS(sel("reset-state")+"[data-state=dry-run]")))
	p.click(sel("reset-apply"))
	p.click(sel("reset-confirm"))
	p.run("applied", chromedp.WaitVisible(chromedp.CSS(sel("reset-state")+"[data-state=applied]")))
	if after := fetchCommitted(ctx, t, adm); fmt.Sprint(after) != fmt.Sprint(map[int32]int64{0: 0, 1: 0, 2: 0}) {
		t.Fatalf("after the reset to earliest kadm shows %v, want every partition at 0", after)
	}
	ends, err = adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { hw[o.Partition] = o.Offset })
	lagIs("lag = HW after the reset", func(part int32) int64 { return hw[part] })

	// The overview again, with the traffic of the test in its throughput chart.
	p.open("/", sel("chart-bytes"))
	waitUntil(p, "bytes in charted", `+document.querySelector('[data-test=chart-bytes]').dataset.max || 0`, func(v float64) bool { return v > 0 })
	p.screenshot("overview")

	// The partition-move screen, with the topic's partitions loaded.
	p.open("/partitions/move", sel("move-topic"))
	p.set(sel("move-topic"), topic)
	p.click(sel("move-load"))
	p.run("move table", chromedp.WaitVisible(chromedp.CSS(sel("move-select")+`[data-partition="2"]`)))
	p.screenshot("partition-move")

	// Edit a config and reset another to its default on the topic's configs tab.
	p.open("/topics/"+topic+"/configs", sel("configs-table"))
	p.click(`[data-test=config-edit][data-name="retention.ms"]`)
	p.set(sel("config-input"), "3600000")
	p.click(sel("config-save"))
	waitUntil(p, "retention.ms edited", `(document.querySelector('[data-test=config-value][data-name="retention.ms"]') || {}).textContent || ''`,
		func(v string) bool { return v == "3600000" })
	if v, src := topicConfig(ctx, t, adm, "retention.ms"); v != "3600000" || src != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("kadm after the edit: retention.ms = %q (source %s), want 3600000 on the topic", v, src)
	}
	p.click(`[data-test=config-reset][data-name="max.message.bytes"]`)
	p.run("max.message.bytes reset", chromedp.WaitNotPresent(chromedp.CSS(`[data-test=config-reset][data-name="max.message.bytes"]`)))
	if v, src := topicConfig(ctx, t, adm, "max.message.bytes"); src == "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("kadm after the reset: max.message.bytes = %q still set on the topic", v)
	}

	// Search the topics list, then delete the topic through its confirmation dialog.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "audit"); err != nil {
		t.Fatal(err)
	}
	p.open("/topics", sel("topics-search"))
	p.run("search", chromedp.SendKeys(chromedp.CSS(sel("topics-search")), "ord"))
	waitUntil(p, "search ord", `[...document.querySelectorAll('[data-test=topics-table] tr[data-topic]')].map(r => r.dataset.topic)`,
		func(v []string) bool { return slices.Equal(v, []string{topic}) })
	p.click(fmt.Sprintf(`[data-test=topic-delete][data-name=%q]`, topic))
	p.run("delete dialog", chromedp.WaitVisible(chromedp.CSS(sel("delete-dialog"))),
		chromedp.SendKeys(chromedp.CSS(sel("delete-confirm-name")), topic))
	p.click(sel("delete-submit"))
	p.run("deleted", chromedp.WaitNotPresent(chromedp.CSS(sel("delete-dialog"))),
		chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf(`[data-test=topics-table] tr[data-topic=%q]`, topic))))
	left, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left.Has(topic) || !left.Has("audit") {
		t.Fatalf("kadm after the delete lists %v: want audit and not %s", left.Names(), topic)
	}

	if exc := p.exceptions(); len(exc) > 0 {
		t.Fatalf("the console threw %d uncaught exception(s): %v", len(exc), exc)
	}
	t.Logf("console e2e: %v", time.Since(started).Round(time.Millisecond))
}

// localInput is ms as the console's datetime-local fields take it, in the browser's time zone.
func localInput(p *page, at time.Time) string {
	p.t.Helper()
	return eval[string](p, "local time", fmt.Sprintf(`(() => { const ms = %d; return new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19); })()`, at.UnixMilli()))
}

// consumeFirst reads the topic's first record of partition 0 with a fresh consumer.
func consumeFirst(ctx context.Context, t *testing.T, seeds kgo.Opt, check func(*kgo.Record)) {
	t.Helper()
	c, err := kgo.NewClient(seeds, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	for {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s/0: %v", topic, err)
		}
		if err := fs.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if rs := fs.Records(); len(rs) > 0 {
			check(rs[0])
			return
		}
	}
}

// fetchCommitted is the group's committed offset per partition of the topic, from kadm.
func fetchCommitted(ctx context.Context, t *testing.T, adm *kadm.Client) map[int32]int64 {
	t.Helper()
	r, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Error(); err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	r.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// topicConfig is a config of the topic and its source, from kadm.
func topicConfig(ctx context.Context, t *testing.T, adm *kadm.Client, key string) (value, source string) {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Configs {
		if c.Key == key {
			return c.MaybeValue(), c.Source.String()
		}
	}
	t.Fatalf("kadm: topic %s has no config %s", topic, key)
	return "", ""
}

// TestConsolePages: on a topic of many partitions the topic page and the group page render one
// page of rows (100) with a pager, not every partition; the pager reaches the last page.
func TestConsolePages(t *testing.T) {
	chromium := chromiumPath(t)
	b := brokertest.Start(t, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const parts = 250
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	os := kadm.Offsets{}
	for p := range int32(parts) {
		os.Add(kadm.Offset{Topic: "wide", Partition: p, At: 0, LeaderEpoch: -1})
	}
	if resp, err := adm.CommitOffsets(ctx, "wide-group", os); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	p := openBrowser(t, chromium, "http://"+b.HTTPAddr().String()+"/")
	type rows struct {
		N     int
		First string
		Last  string
	}
	count := func(table string) string {
		return fmt.Sprintf(`(() => { const rs = [...document.querySelectorAll('[data-test=%s] tr[data-partition]')];
			return {n: rs.length, first: rs.length ? rs[0].dataset.partition : '', last: rs.length ? rs[rs.length-1].dataset.partition : ''}; })()`, table)
	}
	for _, c := range []struct{ route, table, pager string }{
		{"/topics/wide", "partitions-table", "partitions-pager"},
		{"/groups/wide-group", "offsets-table", "offsets-pager"},
	} {
		p.open(c.route, sel(c.table)+" tr[data-partition]")
		waitUntil(p, c.route+" first page", count(c.table), func(r rows) bool { return r.N == 100 && r.First == "0" && r.Last == "99" })
		p.set(sel(c.pager+"-page"), "3")
		waitUntil(p, c.route+" last page", count(c.table), func(r rows) bool { return r.N == parts-200 && r.First == "200" && r.Last == "249" })
	}
	if ex := p.exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %v", ex)
	}
}
