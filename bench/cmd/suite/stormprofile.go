package main

import (
	"fmt"
	"log"
	"path/filepath"
	"time"
)

// profileStorm, when -storm-profile-dir is set and b serves pprof, takes
// what the connect-CPU breakdown needs of one connect storm: a CPU profile
// from just before the first dial until well after the broker is idle
// again (connstorm's 2 s idle reading, the storm, the 3 s hold and the
// tail), and the heap profile, each after a forced collection, before and
// after it (their alloc_space difference, `go tool pprof -sample_index
// alloc_space -base before after`, is what the storm allocated: a profile's
// allocation counts stand as of the last collection). connstorm lingers (stormLinger) so that the disconnects
// fall after the profile. The returned function takes the "after" profile and waits
// for the CPU profile.
func (s *setup) profileStorm(b *broker, mode string, rep int) func() {
	if s.o.stormProfileDir == "" || b.debug == "" {
		return func() {}
	}
	base := filepath.Join(s.o.stormProfileDir, fmt.Sprintf("%s-%s-%d", b.name, mode, rep))
	url := "http://" + b.debug + "/debug/pprof/"
	if err := fetch(url+"heap?gc=1", base+"-allocs-before.pprof"); err != nil {
		log.Printf("storm profile of %s: %v", b.name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := int(s.o.stormProfileFor / time.Second)
		if err := fetch(fmt.Sprintf("%sprofile?seconds=%d", url, secs), base+"-cpu.pprof"); err != nil {
			log.Printf("storm CPU profile of %s: %v", b.name, err)
		}
	}()
	return func() {
		<-done
		if err := fetch(url+"heap?gc=1", base+"-allocs-after.pprof"); err != nil {
			log.Printf("storm profile of %s: %v", b.name, err)
		}
		log.Printf("storm profiles of %s over %s: %s-*.pprof", b.name, mode, base)
	}
}

// stormLinger is how long connstorm keeps its connections open after its
// measurement: while a storm is profiled, until the profile has ended, so
// that it holds the storm and its tail but none of the disconnects.
func (s *setup) stormLinger(b *broker) time.Duration {
	if s.o.stormProfileDir == "" || b.debug == "" {
		return 0
	}
	return s.o.stormProfileFor
}
