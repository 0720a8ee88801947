package insight

import (
	"slices"
	"time"
)

// History bounds (see the package doc for the memory they cost).
const (
	// RingSize is how many of a device's latest events are kept whole
	// (patterns and samples come from them).
	RingSize = 32
	// hourBuckets and dayBuckets are the counters' two resolutions: hours
	// for the last day, days for the last week.
	hourBuckets = 24
	dayBuckets  = 8
	// Horizon is how far back a diagnosis can look.
	Horizon = 7 * 24 * time.Hour
	// maxSources and maxSDKs bound the per-device tables of addresses and
	// SDK versions (the least recently seen entry makes room).
	maxSources = 8
	maxSDKs    = 4
)

const (
	msHour = int64(time.Hour / time.Millisecond)
	msDay  = int64(24 * time.Hour / time.Millisecond)
)

// counts are events per class (saturating at 65,535 per bucket).
type counts [numClasses]uint32

func (c *counts) add(o *[numClasses]uint16) {
	for i, v := range o {
		c[i] += uint32(v)
	}
}

func (c *counts) sum(classes ...Class) int {
	n := 0
	for _, k := range classes {
		n += int(c[k])
	}
	return n
}

// bucket counts one hour's or one day's events. Stamp is the hour or day
// number since the Unix epoch plus one (0: unused).
type bucket struct {
	Stamp int32
	N     [numClasses]uint16
}

func (b *bucket) inc(c Class, delta int) {
	v := int(b.N[c]) + delta
	b.N[c] = uint16(min(max(v, 0), 1<<16-1))
}

// buckets are a device's buckets of one resolution, oldest first, at most
// keep of them (a device that was quiet for a while holds only the
// buckets it had events in).
type buckets []bucket

// inc adds delta to class c in the bucket stamp, making it (and dropping
// buckets older than keep stamps) as needed.
func (bs *buckets) inc(stamp int32, keep int32, c Class, delta int) {
	s := *bs
	for i := len(s) - 1; i >= 0 && s[i].Stamp >= stamp; i-- {
		if s[i].Stamp == stamp {
			s[i].inc(c, delta)
			return
		}
	}
	if delta < 0 {
		return
	}
	drop := 0
	for drop < len(s) && s[drop].Stamp <= stamp-keep {
		drop++
	}
	if drop > 0 {
		s = append(s[:0], s[drop:]...)
	}
	b := bucket{Stamp: stamp}
	b.inc(c, delta)
	i := len(s)
	for i > 0 && s[i-1].Stamp > stamp {
		i--
	}
	if i > 0 && s[i-1].Stamp <= stamp-keep {
		return // older than what is kept
	}
	s = append(s, bucket{})
	copy(s[i+1:], s[i:])
	s[i] = b
	*bs = s
}

// srcStat is what one source address did for a device.
type srcStat struct {
	Src                       uint32
	Connects, Refusals, Drops uint32
	First, Last               int64
}

// sdkStat is one SDK version a device used.
type sdkStat struct {
	SDK         uint32
	Events      uint32
	First, Last int64
}

// endState is how the device's last session ended.
type endState struct {
	At    int64
	Class Class
	Dur   uint32 // ms
	Life  int32  // token life left at the end, s
	Flags uint8  // flagLife
}

// liveState is the device's connection now.
type liveState struct {
	Connected bool
	Since     int64
	Src, SDK  uint32
	KA        uint16
	End       endState
}

// regState is what the registry journal said about the device.
type regState struct {
	Created, Deleted, Disabled, Enabled int64 // latest time of each, ms (0: none seen)
	KeyChanged                          int64
	KeyChange                           string // "primary", "secondary" or "both"
	KeyFP                               [2]string
	Status                              string // enabled, disabled, deleted ("" unknown)
	Caller                              string // the policy of the latest change
}

// probeState is the device's latest `tether probe`.
type probeState struct {
	At  int64
	Src uint32
	OK  bool  // it connected
	Why Class // its refusal's class when !OK
}

// device is one device's history and state.
type device struct {
	ID    string
	Ring  []rec // the latest events, oldest first from index N % RingSize once full
	N     uint64
	Hours buckets           // the last hourBuckets hours, by hour
	Days  buckets           // the last dayBuckets days, by day
	First [numClasses]int64 // first and latest event time of each class, ms
	Last  [numClasses]int64
	Flap  flapSlots
	Srcs  []srcStat
	SDKs  []sdkStat
	Live  liveState
	Reg   regState
	Probe probeState
	// FlapOn: the device is in the engine's flapping set.
	FlapOn bool
}

// hasConnected reports whether the history holds a connect of the device.
func (d *device) hasConnected() bool {
	return d.Last[ClassConnect] != 0 || d.Last[ClassRenewal] != 0 || d.Last[ClassRenewalExpiry] != 0 || d.Last[ClassReturn] != 0
}

// push appends r to the ring and counts it.
func (d *device) push(r rec) {
	if len(d.Ring) < RingSize {
		d.Ring = append(d.Ring, r)
	} else {
		d.Ring[d.N%RingSize] = r
	}
	d.N++
	d.count(r.At, r.Class, 1)
	if d.First[r.Class] == 0 {
		d.First[r.Class] = r.At
	}
	d.Last[r.Class] = max(d.Last[r.Class], r.At)
}

// count adds delta to class c at time at in both resolutions.
func (d *device) count(at int64, c Class, delta int) {
	d.Hours.inc(int32(at/msHour)+1, hourBuckets, c, delta)
	d.Days.inc(int32(at/msDay)+1, dayBuckets, c, delta)
}

// reclass changes the class of the ring entry i (a takeover found to be a
// probe's) and moves its count.
func (d *device) reclass(i int, c Class) {
	r := &d.Ring[i]
	d.count(r.At, r.Class, -1)
	d.count(r.At, c, 1)
	r.Class = c
	if d.First[c] == 0 {
		d.First[c] = r.At
	}
	d.Last[c] = max(d.Last[c], r.At)
}

// last returns the ring index of the newest event, -1 if none.
func (d *device) last() int {
	if d.N == 0 {
		return -1
	}
	return int((d.N - 1) % RingSize)
}

// recent returns the ring's events at or after since, oldest first.
func (d *device) recent(since int64) []rec {
	out := make([]rec, 0, len(d.Ring))
	start := 0
	if len(d.Ring) == RingSize {
		start = int(d.N % RingSize)
	}
	for i := range d.Ring {
		r := d.Ring[(start+i)%len(d.Ring)]
		if r.At >= since {
			out = append(out, r)
		}
	}
	return out
}

// ringFrom is the time of the oldest event the ring holds, and whether the
// ring holds every event the device ever had.
func (d *device) ringFrom() (int64, bool) {
	if len(d.Ring) == 0 {
		return 0, true
	}
	if len(d.Ring) < RingSize {
		return d.Ring[0].At, true
	}
	return d.Ring[d.N%RingSize].At, false
}

// window counts the events of [since, now]: exactly from the ring when it
// reaches back far enough, else from the hour buckets (within the last
// day) or the day buckets, whose first one starts at or before since;
// from is where the counted span begins.
func (d *device) window(since, now int64) (n counts, from int64) {
	oldest, whole := d.ringFrom()
	if whole || oldest <= since {
		for _, r := range d.recent(since) {
			if r.At <= now {
				n[r.Class]++
			}
		}
		return n, since
	}
	// Hours while the hour buckets still reach back to since (they keep
	// the last day of the device's events), else days.
	if h := int32(since/msHour) + 1; now-since < (hourBuckets-1)*msHour && len(d.Hours) > 0 && h > d.Hours[len(d.Hours)-1].Stamp-hourBuckets {
		last := int32(now/msHour) + 1
		for _, b := range d.Hours {
			if b.Stamp >= h && b.Stamp <= last {
				n.add(&b.N)
			}
		}
		return n, int64(h-1) * msHour
	}
	dy, last := int32(since/msDay)+1, int32(now/msDay)+1
	for _, b := range d.Days {
		if b.Stamp >= dy && b.Stamp <= last {
			n.add(&b.N)
		}
	}
	return n, max(int64(dy-1)*msDay, 0)
}

// seenSrc updates the source table for one event.
func (d *device) seenSrc(src uint32, at int64, connect, refusal, drop bool) {
	i := slices.IndexFunc(d.Srcs, func(s srcStat) bool { return s.Src == src })
	if i < 0 {
		if len(d.Srcs) < maxSources {
			d.Srcs = append(d.Srcs, srcStat{Src: src, First: at})
			i = len(d.Srcs) - 1
		} else {
			i = 0
			for j := range d.Srcs {
				if d.Srcs[j].Last < d.Srcs[i].Last {
					i = j
				}
			}
			d.Srcs[i] = srcStat{Src: src, First: at}
		}
	}
	s := &d.Srcs[i]
	s.Last = max(s.Last, at)
	if connect {
		s.Connects++
	}
	if refusal {
		s.Refusals++
	}
	if drop {
		s.Drops++
	}
}

// seenSDK updates the SDK table.
func (d *device) seenSDK(sdk uint32, at int64) {
	i := slices.IndexFunc(d.SDKs, func(s sdkStat) bool { return s.SDK == sdk })
	if i < 0 {
		if len(d.SDKs) < maxSDKs {
			d.SDKs = append(d.SDKs, sdkStat{SDK: sdk, First: at})
			i = len(d.SDKs) - 1
		} else {
			i = 0
			for j := range d.SDKs {
				if d.SDKs[j].Last < d.SDKs[i].Last {
					i = j
				}
			}
			d.SDKs[i] = sdkStat{SDK: sdk, First: at}
		}
	}
	d.SDKs[i].Events++
	d.SDKs[i].Last = max(d.SDKs[i].Last, at)
}
