package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
)

// memberJSON is one member in JSON output.
type memberJSON struct {
	ID            string `json:"id"`
	Role          string `json:"role"`
	Voter         bool   `json:"voter"`
	Term          uint64 `json:"term"`
	LastIndex     uint64 `json:"last_index"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	RPCAddr       string `json:"rpc_addr"`
	RaftAddr      string `json:"raft_addr"`
	Error         string `json:"error,omitempty"`
}

var clusterStatusCmd = &command{
	name:    "cluster status",
	summary: "show every master's role, term and log indexes",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef("cluster status: unexpected argument %q", args[0])
		}
		st, err := r.c.Status(ctx)
		if err != nil {
			return fmt.Errorf("cluster status: %w", err)
		}
		if r.o.output == "json" {
			out := struct {
				Leader  string       `json:"leader"`
				Members []memberJSON `json:"members"`
			}{Leader: st.LeaderId, Members: []memberJSON{}}
			for _, m := range st.Members {
				out.Members = append(out.Members, memberJSON{
					ID: m.Id, Role: m.Role, Voter: m.Voter, Term: m.Term, LastIndex: m.LastIndex,
					CommitIndex: m.CommitIndex, AppliedIndex: m.AppliedIndex, SnapshotIndex: m.LastSnapshotIndex,
					RPCAddr: m.RpcAddr, RaftAddr: m.RaftAddr, Error: m.Error,
				})
			}
			return r.printJSON(out)
		}
		tw := tabwriter.NewWriter(r.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tVOTER\tTERM\tLAST\tCOMMIT\tAPPLIED\tSNAPSHOT\tRPC\tRAFT")
		for _, m := range st.Members {
			role := m.Role
			if m.Error != "" {
				role += " (" + m.Error + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", m.Id, role, m.Voter, m.Term, m.LastIndex,
				m.CommitIndex, m.AppliedIndex, m.LastSnapshotIndex, m.RpcAddr, m.RaftAddr)
		}
		return tw.Flush()
	},
}

var clusterAddCmd = &command{
	name:    "cluster add",
	args:    "ID RAFT_ADDR RPC_ADDR",
	summary: "add a master (started with --join) as a voter",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 3 {
			return usagef("cluster add: want ID RAFT_ADDR RPC_ADDR, got %d arguments", len(args))
		}
		if err := r.c.AddMember(ctx, args[0], args[1], args[2]); err != nil {
			return fmt.Errorf("cluster add %s: %w", args[0], err)
		}
		fmt.Fprintf(r.env.Stdout, "added %s\n", args[0])
		return nil
	},
}

var clusterRemoveCmd = &command{
	name:    "cluster remove",
	args:    "ID",
	summary: "remove a master from the cluster",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 1 {
			return usagef("cluster remove: want ID, got %d arguments", len(args))
		}
		if err := r.c.RemoveMember(ctx, args[0]); err != nil {
			return fmt.Errorf("cluster remove %s: %w", args[0], err)
		}
		fmt.Fprintf(r.env.Stdout, "removed %s\n", args[0])
		return nil
	},
}

var clusterTransferCmd = &command{
	name:    "cluster transfer-leader",
	args:    "[ID]",
	summary: "hand leadership to master ID (to any up-to-date one without ID)",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) > 1 {
			return usagef("cluster transfer-leader: want at most one ID, got %d arguments", len(args))
		}
		id := ""
		if len(args) == 1 {
			id = args[0]
		}
		leader, err := r.c.TransferLeader(ctx, id)
		if err != nil {
			return fmt.Errorf("cluster transfer-leader: %w", err)
		}
		if leader == "" {
			leader = "(election under way)"
		}
		fmt.Fprintf(r.env.Stdout, "leader: %s\n", leader)
		return nil
	},
}

var journalCheckpointCmd = &command{
	name:    "journal checkpoint",
	summary: "force a snapshot of the journal on the leader and truncate its log",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef("journal checkpoint: unexpected argument %q", args[0])
		}
		idx, err := r.c.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("journal checkpoint: %w", err)
		}
		fmt.Fprintf(r.env.Stdout, "checkpoint at index %d\n", idx)
		return nil
	},
}
