package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Erasure rewrite modes (Options.EraseRewriteAOF).
const (
	// RewriteAuto starts an AOF rewrite after each erasure on every master
	// whose append-only file is on (the default).
	RewriteAuto = "auto"
	// RewriteOff never starts one: the erased data leave the AOF at the
	// next rewrite Redis starts by itself (auto-aof-rewrite-percentage).
	RewriteOff = "off"
)

// Where an erasure's bytes stay on a Redis server's disk, and until when.
// DEL and XDEL take data out of memory at once, but the append-only file
// keeps every command that wrote them until it is rewritten, and an RDB
// snapshot keeps what was in memory when it was taken.
const (
	whenRewrite    = "when the AOF rewrite this erasure started finishes (seconds to minutes for a large data set; INFO persistence shows aof_rewrite_in_progress:0), and Redis deletes the old AOF files"
	whenRewriteOff = "at the next AOF rewrite: Redis starts one by itself when the file has grown by auto-aof-rewrite-percentage, or run BGREWRITEAOF (erase_rewrite_aof is off)"
	whenRewriting  = "a rewrite was already running, from a snapshot taken before this erasure: the data leave the AOF at the next rewrite (run BGREWRITEAOF once it has finished, or erase again)"
	whenSnapshot   = "at the next RDB snapshot (the server's save schedule, BGSAVE, or a replica's full sync); until then the last dump.rdb and copies of it keep the data"
	whenNoSnapshot = "no snapshots are scheduled (save \"\"), but a dump.rdb written earlier keeps the data until it is replaced or deleted"
	whenReplicas   = "replicas apply the deletion at once; their own AOF and RDB files follow their persistence settings, as above"
)

// nodeCopies is what one Redis node says about its copies after an erasure.
type nodeCopies struct {
	aof           bool
	aofWhen       string
	rdbWhen       string
	replicas      bool
	rewriteFailed error
}

// aofRank orders the AOF answers of nodes: the cluster answers the latest.
var aofRank = map[string]int{whenRewrite: 1, whenRewriteOff: 2, whenRewriting: 3}

// scrub starts what takes an erasure's bytes off each master's disk (an AOF
// rewrite, as Options.EraseRewriteAOF says) and reports where they still are.
func (s *Store) scrub(ctx context.Context) []trial.ErasedCopy {
	var mu sync.Mutex
	var nodes []nodeCopies
	one := func(ctx context.Context, c redis.Cmdable) error {
		n := s.scrubNode(ctx, c)
		mu.Lock()
		nodes = append(nodes, n)
		mu.Unlock()
		return nil
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	} else {
		_ = one(ctx, s.rdb)
	}
	var out []trial.ErasedCopy
	// The AOF is never clean at once: a rewrite takes its time.
	aof := trial.ErasedCopy{Name: "append-only file"}
	rdb := trial.ErasedCopy{Name: "RDB snapshot", When: whenNoSnapshot}
	replicas := false
	for _, n := range nodes {
		if n.rewriteFailed != nil {
			s.log.Warn("starting an AOF rewrite after an erasure failed", zap.Error(n.rewriteFailed))
		}
		if n.aof && aofRank[n.aofWhen] > aofRank[aof.When] {
			aof.When = n.aofWhen
		}
		if n.rdbWhen == whenSnapshot {
			rdb.When = whenSnapshot
		}
		replicas = replicas || n.replicas
	}
	if aof.When != "" {
		out = append(out, aof)
	}
	out = append(out, rdb)
	if replicas {
		out = append(out, trial.ErasedCopy{Name: "replicas", When: whenReplicas})
	}
	// The erasure notice reaches the files the JSONL export appends to.
	out = append(out, trial.ErasedCopy{Name: "JSONL exports (jitai export --format jsonl)", When: "at the next export run"})
	return out
}

// scrubNode looks at one node's persistence and starts its AOF rewrite.
func (s *Store) scrubNode(ctx context.Context, c redis.Cmdable) nodeCopies {
	var n nodeCopies
	info := parseInfo(c.Info(ctx, "persistence", "replication").Val())
	n.aof = info["aof_enabled"] == "1"
	n.replicas = info["connected_slaves"] != "" && info["connected_slaves"] != "0"
	// CONFIG may be renamed away on managed services: then assume snapshots.
	n.rdbWhen = whenSnapshot
	if save, err := c.ConfigGet(ctx, "save").Result(); err == nil && save["save"] == "" {
		n.rdbWhen = whenNoSnapshot
	}
	if !n.aof {
		return n
	}
	if s.opts.EraseRewriteAOF == RewriteOff {
		n.aofWhen = whenRewriteOff
		return n
	}
	if info["aof_rewrite_in_progress"] == "1" {
		n.aofWhen = whenRewriting
		return n
	}
	if err := c.BgRewriteAOF(ctx).Err(); err != nil {
		n.rewriteFailed = err
		n.aofWhen = whenRewriteOff
		return n
	}
	n.aofWhen = whenRewrite
	return n
}

// parseInfo reads an INFO reply into its fields.
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// validRewrite checks Options.EraseRewriteAOF.
func validRewrite(mode string) error {
	if mode != RewriteAuto && mode != RewriteOff {
		return fmt.Errorf("erase_rewrite_aof %q: use %q (rewrite the AOF after each erasure when it is on) or %q", mode, RewriteAuto, RewriteOff)
	}
	return nil
}
