package token

import (
	"testing"
	"time"
)

// BenchmarkMintsPerHour simulates a day of continuous gets (one every
// 10 s) on one identity with a simulated clock and reports the mints per
// hour the reuse policy makes, for a source of 60-minute tokens and one of
// 20-minute tokens, and the least validity a handed-out token had.
func BenchmarkMintsPerHour(b *testing.B) {
	for _, life := range []time.Duration{time.Hour, 20 * time.Minute} {
		b.Run(life.String()+"-tokens", func(b *testing.B) {
			var perHour float64
			var leastLeft time.Duration
			for b.Loop() {
				clock := newFakeClock()
				c := clockedCache(b, clock)
				m := &countingMint{validity: life, clock: clock}
				const day = 24 * time.Hour
				leastLeft = life
				for start := clock.Now(); clock.Now().Sub(start) < day; clock.Advance(10 * time.Second) {
					tok := mustToken(b, c.TokenSource(cacheCred("id", m)))
					leastLeft = min(leastLeft, tok.Expiry.Sub(clock.Now()))
				}
				perHour = float64(m.mints.Load()) / day.Hours()
			}
			b.ReportMetric(perHour, "mints/hour")
			b.ReportMetric(leastLeft.Minutes(), "least-left-min")
			b.ReportMetric(0, "ns/op")
		})
	}
}
