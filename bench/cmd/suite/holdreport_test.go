package main

import (
	"math"
	"testing"
)

func TestProject(t *testing.T) {
	h := &holdResult{Connected: 20000, RSSBaseKiB: 100 << 10, RSSKiBPerConn: 16,
		CPUusPerConnectAll: 600, CPUusPerDisconnect: 120, BaseCores: 0.01, IdleCores: 0.03}
	p := project(h)
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("MemGiB", p.MemGiB, (100*1024+16*1e6)/(1<<20))
	near("RenewalsPerS", p.RenewalsPerS, 1e6/3600)
	near("RenewalUS", p.RenewalUS, 720)
	near("RenewalCores", p.RenewalCores, 1e6/3600*720/1e6) // 0.2 cores
	near("IdleCores", p.IdleCores, 0.01+0.02*50)           // the connections' share × 1M/20k
	near("TotalCores", p.TotalCores, p.RenewalCores+p.IdleCores)
}
