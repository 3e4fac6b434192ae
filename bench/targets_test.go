//go:build bench

package bench

import (
	"fmt"
	"slices"
)

// pacedKeptUp is the share of the offered rate that both paced cases must
// have served for their latencies to count as measured at an equal load.
const pacedKeptUp = 0.97

// ratioTo returns the median over the rounds of c's requests/s over
// base's in the same round.
func (r *report) ratioTo(c, base *benchCase) float64 {
	return r.per(c, func(i int, res runResult) float64 {
		rs := r.Results[base]
		if i >= len(rs) || rs[i].RPS() == 0 {
			return 0
		}
		return res.RPS() / rs[i].RPS()
	})
}

// targets writes the targets of `make bench`, each with what this run
// measured and whether it met it. They are checked here, in the report,
// and never by an assertion: on a shared two-core machine a threshold
// that fails a test would fail on noise.
func (r *report) targets(w func(string, ...any)) {
	w("\n## Targets\n\n")
	w("Checked by this report, never by assertions. A is Latchkey as shipped (info), B the same at warn. Ratios are medians of the per-round ratios; CPU is server CPU per request over all rounds.\n\n")
	w("| target | measured | |\n|---|---|---|\n")
	row := func(target, measured string, met bool) {
		verdict := "met"
		if !met {
			verdict = "**missed**"
		}
		w("| %s | %s | %s |\n", target, measured, verdict)
	}
	for _, c := range []*benchCase{r.Preflight, r.PreflightWarn} {
		if c != nil {
			v := r.ratioToBare(c)
			row(fmt.Sprintf("preflight ≥ 0.90 × bare (%s)", c.Server), fmt.Sprintf("%.3f", v), v >= 0.90)
		}
	}
	if len(r.Peers) > 0 && r.Peers[0].Preflight != nil {
		typical := r.Peers[0]
		for _, c := range []*benchCase{r.Preflight, r.PreflightWarn} {
			if c == nil {
				continue
			}
			v := r.ratioTo(c, typical.Preflight)
			row(fmt.Sprintf("preflight (%s) ahead of the typical stack's (%s: %s)", c.Server, typical.Server, typical.Stack),
				fmt.Sprintf("%.3f × its req/s (%.3f vs %.3f × bare; %.1f vs %.1f µs)", v, r.ratioToBare(c), r.ratioToBare(typical.Preflight),
					r.cpu(c, srvTicks), r.cpu(typical.Preflight, srvTicks)), v > 1)
		}
	}
	for _, c := range []*benchCase{r.Me, r.MeWarn} {
		if c != nil {
			v := r.ratioToBare(c)
			row(fmt.Sprintf("me ≥ 0.70 × bare (%s)", c.Server), fmt.Sprintf("%.3f", v), v >= 0.70)
		}
	}
	if r.Preflight != nil {
		pre := r.cpu(r.Preflight, srvTicks)
		for _, c := range r.Refused {
			v := r.cpu(c, srvTicks)
			row(fmt.Sprintf("%s no dearer than a preflight (%s)", c.Name, c.Server),
				fmt.Sprintf("%.1f vs %.1f µs (%+.0f%%); %.3f vs %.3f × bare", v, pre, 100*(v/pre-1), r.ratioToBare(c), r.ratioToBare(r.Preflight)), v <= pre)
		}
	}
	if r.PacedBare != nil && r.PacedMe != nil {
		var diffs []float64
		for i, res := range r.Results[r.PacedMe] {
			if i < len(r.Results[r.PacedBare]) {
				diffs = append(diffs, ms(res.Quantile(0.99))-ms(r.Results[r.PacedBare][i].Quantile(0.99)))
			}
		}
		d := median(diffs)
		spread := ""
		if len(diffs) > 1 {
			spread = fmt.Sprintf(", rounds %+.2f to %+.2f ms", slices.Min(diffs), slices.Max(diffs))
		}
		target := fmt.Sprintf("p99 of me (%s) within 1 ms of bare's at an equal offered load", r.PacedMe.Server)
		measured := fmt.Sprintf("%+.2f ms at %.0f req/s offered (%.3f vs %.3f ms%s)", d, r.PacedRate, r.per(r.PacedMe, p99), r.per(r.PacedBare, p99), spread)
		// An open loop that fell behind its schedule offered less than
		// asked: the two latencies are then not at an equal load.
		served := min(r.per(r.PacedMe, rps), r.per(r.PacedBare, rps))
		if served < pacedKeptUp*r.PacedRate {
			w("| %s | %s; but only %.0f req/s were served: the Go generator and the server could not keep up on this machine, so the load was not equal (lower BENCH_PACED_LOAD) | **not measured** |\n", target, measured, served)
		} else {
			row(target, measured, d <= 1)
		}
	} else {
		w("| p99 of me within 1 ms of bare's at an equal offered load | not run (BENCH_PACED_LOAD=0) | — |\n")
	}
}
