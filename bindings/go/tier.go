package akidb

// tier.go - tiering: where a collection lives (Hot, Warm, Cold), moving it,
// pinning it, its state and the database's, and the policy the library's
// worker applies (docs/TIERING.md).  Every call here is one cgo call into
// the library; a transition or a load from the object store may take
// seconds, during which the calling goroutine's OS thread waits in C and
// the other goroutines run.

// #include "shim.h"
import "C"

import (
	"math"
	"time"
)

// Never is the duration that never elapses: as Options.TierHotTTL or
// TierWarmTTL (and in a TierPolicy) a collection is never demoted by that
// TTL; as Options.TierInterval there is no worker thread (call
// DB.TierRunOnce yourself).
const Never time.Duration = math.MaxInt64

// PolicyFields is a set of TierPolicy fields (AKIDB_TIER_P_*).
type PolicyFields uint32

const (
	PolicyHotTTL            PolicyFields = C.AKIDB_TIER_P_HOT_TTL
	PolicyWarmTTL           PolicyFields = C.AKIDB_TIER_P_WARM_TTL
	PolicyPromotePerHour    PolicyFields = C.AKIDB_TIER_P_PROMOTE
	PolicyDisabled          PolicyFields = C.AKIDB_TIER_P_DISABLED
	PolicySnapshotRetention PolicyFields = C.AKIDB_TIER_P_RETENTION
	PolicyMemoryBudget      PolicyFields = C.AKIDB_TIER_P_MEMORY_BUDGET   // database only
	PolicyStoreQuota        PolicyFields = C.AKIDB_TIER_P_STORE_QUOTA     // database only
	PolicyMaxCollections    PolicyFields = C.AKIDB_TIER_P_MAX_COLLECTIONS // database only
)

// TierPolicy is a tiering policy (DB.TierPolicy, Collection.TierPolicy) or
// a change to one (SetTierPolicy).  TTLs are whole seconds (Never: never);
// MemoryBudget, StoreQuota and MaxCollections 0 mean unlimited.
type TierPolicy struct {
	HotTTL            time.Duration // idle time before HOT -> WARM
	WarmTTL           time.Duration // idle time before WARM -> COLD
	PromotePerHour    uint32        // accesses within an hour that bring a WARM/COLD collection back
	Disabled          bool          // the worker moves nothing
	SnapshotRetention uint32        // tier snapshots kept per collection
	MemoryBudget      uint64        // bytes of HOT data the handle keeps
	StoreQuota        uint64        // bytes of snapshots in the store
	MaxCollections    uint32        // collections the database may hold
	// Set: in a change, the fields given (only those change); from a
	// collection's TierPolicy, the fields it overrides (the database's:
	// all of them).
	Set PolicyFields
	// Reset: in a change for a collection, the overrides to remove (back
	// to the database's value).
	Reset PolicyFields
}

// TierInfo is the tiering state of one collection (Collection.TierInfo).
type TierInfo struct {
	Tier       Tier
	Pinned     bool      // never demoted by the worker or the memory budget
	Busy       bool      // a transition is running now
	LastAccess time.Time // zero: never accessed since created
	Accesses   uint64    // in the current hour window
	HotBytes   uint64    // RAM it holds when HOT (as of its last demotion if not HOT)
	LocalBytes uint64    // checkpoint + log on local disk
	ColdBytes  uint64    // its newest tier snapshot in the store, 0 if none
	// LastError is the code of the last failed transition (0 if none) and
	// LastErrorMessage its message.
	LastError        Code
	LastErrorMessage string
}

// TierTransition names a move from one tier to another (TierStats).
type TierTransition struct {
	From, To Tier
}

// TierStats are the database's tiers at one moment (DB.TierStats).
// Collections and Bytes are indexed by Tier (index 0 is unused): bytes are
// RAM for Hot, local files for Warm, objects for Cold.
type TierStats struct {
	Collections       [4]uint64
	Bytes             [4]uint64
	MemoryBudget      uint64                    // 0 = unlimited
	StoreBytes        uint64                    // every snapshot in the store
	StoreQuota        uint64                    // 0 = unlimited
	TransitionsOK     map[TierTransition]uint64 // since open; only pairs that happened
	TransitionsFailed map[TierTransition]uint64
	Loads             uint64        // promotions to HOT
	LoadTime          time.Duration // their total time
	WorkerCycles      uint64
}

// ttlSeconds converts a TTL to the library's seconds (rounded up; Never
// stays never).  0 stays 0 (the default, in Options).
func ttlSeconds(op, what string, d time.Duration) (C.uint64_t, error) {
	switch {
	case d == Never:
		return C.uint64_t(math.MaxUint64), nil
	case d < 0:
		return 0, newError(op, ErrInvalid, "%s %v is negative", what, d)
	}
	return C.uint64_t((d + time.Second - 1) / time.Second), nil
}

func ttlDuration(s C.uint64_t) time.Duration {
	if uint64(s) >= uint64(Never/time.Second) {
		return Never
	}
	return time.Duration(s) * time.Second
}

// intervalMS converts Options.TierInterval to milliseconds (0 = default,
// Never = no worker thread).
func intervalMS(d time.Duration) (C.uint32_t, error) {
	if d == Never {
		return C.AKIDB_NEVER, nil
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if d < 0 || ms >= C.AKIDB_NEVER {
		return 0, newError("Open", ErrInvalid, "TierInterval %v is out of range (use Never "+
			"for no worker)", d)
	}
	return C.uint32_t(ms), nil
}

// setTierOptions copies the tiering fields of opts into o.
func setTierOptions(o *C.akidb_options, opts *Options) error {
	var err error
	if o.tier_hot_ttl_s, err = ttlSeconds("Open", "TierHotTTL", opts.TierHotTTL); err != nil {
		return err
	}
	if o.tier_warm_ttl_s, err = ttlSeconds("Open", "TierWarmTTL", opts.TierWarmTTL); err != nil {
		return err
	}
	if o.tier_interval_ms, err = intervalMS(opts.TierInterval); err != nil {
		return err
	}
	o.tier_promote_per_hour = C.uint32_t(opts.TierPromotePerHour)
	if opts.TierDisabled {
		o.tier_disabled = 1
	}
	o.memory_budget = C.uint64_t(opts.MemoryBudget)
	o.store_quota = C.uint64_t(opts.StoreQuota)
	o.snapshot_retention = C.uint32_t(opts.SnapshotRetention)
	o.max_collections = C.uint32_t(opts.MaxCollections)
	return nil
}

// Tier returns where the collection lives now, without loading it.
func (c *Collection) Tier() (Tier, error) {
	var t C.int
	err := c.call("Tier", func(cname *C.char) error {
		var msg *C.char
		return check("Tier", C.akgo_tier_get(c.db.h, cname, &t, &msg), msg)
	})
	return Tier(t), err
}

// SetTier moves the collection to tier now, step by step, and returns once
// it is there (from Cold: once its local copy is durable).  Pinned
// collections move too.  On an error the collection stays where it was:
// ErrInvalid (not Hot, Warm or Cold), ErrNotFound, ErrQuota (memory budget
// or store quota; the message gives the sizes), ErrUnavailable (the store),
// ErrCorrupt, ErrIO, ErrReadOnly.
func (c *Collection) SetTier(tier Tier) error {
	if tier < Hot || tier > Cold {
		return newError("SetTier", ErrInvalid, "tier %d is not Hot, Warm or Cold", int(tier))
	}
	return c.call("SetTier", func(cname *C.char) error {
		var msg *C.char
		return check("SetTier", C.akgo_tier_set(c.db.h, cname, C.int(tier), &msg), msg)
	})
}

func (c *Collection) pin(op string, pinned C.int) error {
	return c.call(op, func(cname *C.char) error {
		var msg *C.char
		return check(op, C.akgo_tier_pin(c.db.h, cname, pinned, &msg), msg)
	})
}

// Pin pins the collection: the tiering worker and the memory budget never
// demote it (SetTier still moves it).  Durable.
func (c *Collection) Pin() error { return c.pin("Pin", 1) }

// Unpin undoes Pin.
func (c *Collection) Unpin() error { return c.pin("Unpin", 0) }

// TierInfo returns the collection's tiering state, without loading it.
func (c *Collection) TierInfo() (TierInfo, error) {
	var out TierInfo
	err := c.call("TierInfo", func(cname *C.char) error {
		var ti C.akidb_tier_info
		var msg *C.char
		if err := check("TierInfo", C.akgo_tier_info_get(c.db.h, cname, &ti, &msg), msg); err != nil {
			return err
		}
		out = TierInfo{Tier: Tier(ti.tier), Pinned: ti.pinned != 0, Busy: ti.busy != 0,
			Accesses: uint64(ti.accesses), HotBytes: uint64(ti.hot_bytes),
			LocalBytes: uint64(ti.local_bytes), ColdBytes: uint64(ti.cold_bytes),
			LastError:        Code(ti.last_error),
			LastErrorMessage: C.GoString(&ti.last_error_msg[0])}
		if ti.last_access_us != 0 {
			out.LastAccess = usTime(ti.last_access_us)
		}
		return nil
	})
	return out, err
}

func policyOut(p *C.akidb_tier_policy) TierPolicy {
	return TierPolicy{HotTTL: ttlDuration(p.hot_ttl_s), WarmTTL: ttlDuration(p.warm_ttl_s),
		PromotePerHour: uint32(p.promote_per_hour), Disabled: p.disabled != 0,
		SnapshotRetention: uint32(p.snapshot_retention), MemoryBudget: uint64(p.memory_budget),
		StoreQuota: uint64(p.store_quota), MaxCollections: uint32(p.max_collections),
		Set: PolicyFields(p.set)}
}

func policyIn(op string, in TierPolicy) (C.akidb_tier_policy, error) {
	var p C.akidb_tier_policy
	C.akgo_tier_policy_default(&p)
	var err error
	if p.hot_ttl_s, err = ttlSeconds(op, "HotTTL", in.HotTTL); err != nil {
		return p, err
	}
	if p.warm_ttl_s, err = ttlSeconds(op, "WarmTTL", in.WarmTTL); err != nil {
		return p, err
	}
	p.set = C.uint32_t(in.Set)
	p.reset = C.uint32_t(in.Reset)
	p.promote_per_hour = C.uint32_t(in.PromotePerHour)
	if in.Disabled {
		p.disabled = 1
	}
	p.snapshot_retention = C.uint32_t(in.SnapshotRetention)
	p.memory_budget = C.uint64_t(in.MemoryBudget)
	p.store_quota = C.uint64_t(in.StoreQuota)
	p.max_collections = C.uint32_t(in.MaxCollections)
	return p, nil
}

// TierPolicy returns the policy in effect for the collection: its
// overrides (listed in Set) over the database's values.
func (c *Collection) TierPolicy() (TierPolicy, error) {
	var out TierPolicy
	err := c.call("TierPolicy", func(cname *C.char) error {
		var p C.akidb_tier_policy
		var msg *C.char
		if err := check("TierPolicy", C.akgo_tier_policy_get(c.db.h, cname, &p, &msg), msg); err != nil {
			return err
		}
		out = policyOut(&p)
		return nil
	})
	return out, err
}

// SetTierPolicy overrides the database's policy for this collection (saved
// in the catalog): the fields in p.Set change, those in p.Reset go back to
// the database's value.  The database-only fields give ErrInvalid.
func (c *Collection) SetTierPolicy(p TierPolicy) error {
	cp, err := policyIn("SetTierPolicy", p)
	if err != nil {
		return err
	}
	return c.call("SetTierPolicy", func(cname *C.char) error {
		var msg *C.char
		return check("SetTierPolicy", C.akgo_tier_policy_apply(c.db.h, cname, &cp, &msg), msg)
	})
}

// TierStats returns the collections and bytes per tier, the transitions
// and loads since Open, and the worker's cycles.
func (db *DB) TierStats() (TierStats, error) {
	if err := db.rlock("TierStats"); err != nil {
		return TierStats{}, err
	}
	defer db.mu.RUnlock()
	var st C.akidb_tier_stats
	var msg *C.char
	if err := check("TierStats", C.akgo_tier_stats_get(db.h, &st, &msg), msg); err != nil {
		return TierStats{}, err
	}
	out := TierStats{MemoryBudget: uint64(st.memory_budget), StoreBytes: uint64(st.store_bytes),
		StoreQuota: uint64(st.store_quota), Loads: uint64(st.loads),
		LoadTime:      time.Duration(st.load_us_total) * time.Microsecond,
		WorkerCycles:  uint64(st.worker_cycles),
		TransitionsOK: map[TierTransition]uint64{}, TransitionsFailed: map[TierTransition]uint64{}}
	for t := Hot; t <= Cold; t++ {
		out.Collections[t] = uint64(st.collections[t])
		out.Bytes[t] = uint64(st.bytes[t])
		for to := Hot; to <= Cold; to++ {
			if n := C.akgo_tier_transitions(&st, 0, C.int(t), C.int(to)); n != 0 {
				out.TransitionsOK[TierTransition{t, to}] = uint64(n)
			}
			if n := C.akgo_tier_transitions(&st, 1, C.int(t), C.int(to)); n != 0 {
				out.TransitionsFailed[TierTransition{t, to}] = uint64(n)
			}
		}
	}
	return out, nil
}

// TierRunOnce runs one cycle of the tiering worker now, in the calling
// goroutine: TTLs, promotions, the memory budget.  Failed transitions do
// not fail it (see Collection.TierInfo); ErrReadOnly on a read-only DB.
func (db *DB) TierRunOnce() error {
	if err := db.rlock("TierRunOnce"); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	var msg *C.char
	return check("TierRunOnce", C.akgo_tier_run_once(db.h, &msg), msg)
}

// TierPolicy returns the database's tiering policy in effect.
func (db *DB) TierPolicy() (TierPolicy, error) {
	if err := db.rlock("TierPolicy"); err != nil {
		return TierPolicy{}, err
	}
	defer db.mu.RUnlock()
	var p C.akidb_tier_policy
	var msg *C.char
	if err := check("TierPolicy", C.akgo_tier_policy_get(db.h, nil, &p, &msg), msg); err != nil {
		return TierPolicy{}, err
	}
	return policyOut(&p), nil
}

// SetTierPolicy changes the database's policy for this handle (the next
// Open starts from its Options again): the fields in p.Set change.  It
// takes effect at the worker's next cycle.
func (db *DB) SetTierPolicy(p TierPolicy) error {
	cp, err := policyIn("SetTierPolicy", p)
	if err != nil {
		return err
	}
	if err := db.rlock("SetTierPolicy"); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	var msg *C.char
	return check("SetTierPolicy", C.akgo_tier_policy_apply(db.h, nil, &cp, &msg), msg)
}
