package main

// -observe-toggle: the observers of one W1 run switched off and on every few seconds, and the
// run's throughput compared between the windows with them and the windows without. Windows a few
// seconds apart share the machine's state (its page cache writeback, its neighbours on a shared
// VM), which whole runs a minute apart do not: on a VM whose runs spread 20–50 %, the rounds of
// -observe cannot tell a 3 % cost, the windows can.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// pausable is an observer that can stop observing for a while within a workload.
type pausable interface {
	pause()
	resume()
}

func (s *scraper) pause()  { s.paused.Store(true) }
func (s *scraper) resume() { s.paused.Store(false) }

// pause freezes the console's page (Page lifecycle "frozen": its timers and polls stop, as a
// browser does to a background tab); resume makes it active again.
func (b *consoleBrowser) pause()  { b.lifecycle(page.SetWebLifecycleStateStateFrozen) }
func (b *consoleBrowser) resume() { b.lifecycle(page.SetWebLifecycleStateStateActive) }

func (b *consoleBrowser) lifecycle(st page.SetWebLifecycleStateState) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	_, _ = chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: st})
}

// toggler runs its observers with the workload and switches the pausable ones off and on every
// period: on for the first period, off for the next, and so on; switches are the times (since
// begin) at which it did.
type toggler struct {
	obs    observers
	every  time.Duration
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	start  time.Time
	// switches[i] is when window i+1 began; window i is on when i is even.
	switches []time.Duration
}

func (t *toggler) begin() {
	t.obs.begin()
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	t.start = time.Now()
	go func() {
		defer close(t.done)
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		on := true
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			on = !on
			for _, o := range t.obs {
				if p, ok := o.(pausable); ok {
					if on {
						p.resume()
					} else {
						p.pause()
					}
				}
			}
			t.mu.Lock()
			t.switches = append(t.switches, time.Since(t.start))
			t.mu.Unlock()
		}
	}()
}

func (t *toggler) end() {
	t.cancel()
	<-t.done
	for _, o := range t.obs {
		if p, ok := o.(pausable); ok {
			p.resume()
		}
	}
	t.obs.end()
}

// toggleStats is what the windows of one run measured.
type toggleStats struct {
	PeriodSec float64 `json:"period_sec"`
	// OnRPS and OffRPS are the records/s of each window's whole progress intervals, in order.
	OnRPS  []float64 `json:"on_records_per_sec"`
	OffRPS []float64 `json:"off_records_per_sec"`
	// Costs are 1 − on/off of each window with the observers and the mean of the windows
	// without them on either side of it; Cost is their mean, CostSE its standard error.
	Costs  []float64 `json:"costs"`
	Cost   float64   `json:"cost"`
	CostSE float64   `json:"cost_se"`
}

// progressLine is a load generator progress line: "   5.0s produce    2456454 total ...".
var progressLine = regexp.MustCompile(`^\s*([0-9.]+)s produce\s+(\d+) total`)

// progressPoint is the records acknowledged by a time since the load generator started.
type progressPoint struct {
	at    time.Duration
	total int64
}

func readProgress(path string) ([]progressPoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []progressPoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := progressLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		secs, err1 := strconv.ParseFloat(m[1], 64)
		n, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 == nil && err2 == nil {
			out = append(out, progressPoint{time.Duration(secs * float64(time.Second)), n})
		}
	}
	return out, sc.Err()
}

// windowStats assigns each progress interval to the window it lies in whole (the load
// generator's clock starts up to slack after the toggler's), averages each window's intervals
// and pairs each on window with the off windows around it.
func windowStats(points []progressPoint, switches []time.Duration, period, slack time.Duration) *toggleStats {
	window := func(t time.Duration) int { // the window holding t (toggler time)
		i := 0
		for i < len(switches) && t >= switches[i] {
			i++
		}
		return i
	}
	type acc struct{ n, secs float64 }
	rates := map[int]*acc{}
	last := 0
	for i := 1; i < len(points); i++ {
		a, b := points[i-1], points[i]
		w := window(a.at)
		if window(b.at+slack) != w || b.at <= a.at {
			continue // crosses a switch, given the clocks' offset
		}
		if rates[w] == nil {
			rates[w] = &acc{}
		}
		rates[w].n += float64(b.total - a.total)
		rates[w].secs += (b.at - a.at).Seconds()
		last = max(last, w)
	}
	st := &toggleStats{PeriodSec: period.Seconds()}
	rate := func(w int) (float64, bool) {
		r, ok := rates[w]
		if !ok || r.secs <= 0 {
			return 0, false
		}
		return r.n / r.secs, true
	}
	for w := 0; w <= last; w++ {
		v, ok := rate(w)
		if !ok {
			continue
		}
		if w%2 == 0 {
			st.OnRPS = append(st.OnRPS, v)
		} else {
			st.OffRPS = append(st.OffRPS, v)
		}
		if w%2 != 0 {
			continue
		}
		// An on window against the off windows on both sides (one at the ends): drift
		// through the run cancels.
		var offs []float64
		for _, o := range []int{w - 1, w + 1} {
			if r, ok := rate(o); ok && o >= 0 {
				offs = append(offs, r)
			}
		}
		if len(offs) == 0 {
			continue
		}
		off, _ := meanSE(offs)
		st.Costs = append(st.Costs, 1-v/off)
	}
	st.Cost, st.CostSE = meanSE(st.Costs)
	return st
}

// toggledRow is the report line of a toggled run.
func (r *observeRun) toggledRow() string {
	t := r.Toggled
	on, _ := meanSE(t.OnRPS)
	off, _ := meanSE(t.OffRPS)
	return fmt.Sprintf("%d on, %d off windows of %.0f s; %.0f vs %.0f records/s; cost %.1f %% (standard error %.1f %%, over %d on windows each against the off windows around it)",
		len(t.OnRPS), len(t.OffRPS), t.PeriodSec, on, off, 100*t.Cost, 100*t.CostSE, len(t.Costs))
}
