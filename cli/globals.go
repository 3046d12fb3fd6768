package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/alecthomas/kong"
	"github.com/sethvargo/go-retry"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/reqlog"
	"github.com/reliable-ops/rops/drivers/httpapi"
	"github.com/reliable-ops/rops/journals/wal"
	"github.com/reliable-ops/rops/plugins"

	"github.com/reliable-ops/rops/core/breaker"
)

// Globals are the flags every command takes. Each also reads the ROPS_*
// environment variable named in its help.
type Globals struct {
	Target      string  `short:"t" default:"local" predictor:"target" help:"Nodes to work on: 'local' (three embedded badger nodes node01..03 under --data), 'remote' (nodes node01..03 of the rops serve at --remote), or a target named in --config."`
	Config      string  `type:"path" placeholder:"FILE" predictor:"file" help:"JSON file of named targets: {\"targets\": {\"lab\": {\"nodes\": [\"http://127.0.0.1:9001/v1?node=node01\", ...], \"retries\": 10, \"concurrency\": 16}}} (default: $XDG_CONFIG_HOME/rops/config.json, or ~/.config/rops/config.json, if there is one)."`
	Data        string  `type:"path" placeholder:"DIR" predictor:"dir" help:"Data directory of the local target (default: $XDG_DATA_HOME/rops, or ~/.local/share/rops); a job creates it, stats and ping never do."`
	Journal     string  `placeholder:"URL" help:"Keep the journal of unfinished operations, and a lock per id, in etcd at etcd://[USER@]HOST:PORT[,HOST:PORT...]/PREFIX[?ca=FILE&cert=FILE&key=FILE] (the password in ROPS_ETCD_PASSWORD), shared by every rops that names it, so that many can run jobs on one cluster at once (default: the target's journal, else a local file under --data, for one rops per cluster)."`
	Seed        uint64  `placeholder:"N" help:"Seed of the injected faults' random numbers, for reproducible runs (0: a new one each run, shown with -v)."`
	Retries     *int    `placeholder:"N" help:"Retries per request before an operation is rolled back (default 10, or the target's)."`
	Concurrency *string `placeholder:"N|auto" help:"Operations run at once by create and delete: 1 to 1024, or auto to grow while the nodes' latency stays flat and shrink when they slow down or ask to (default auto, or the target's number); never more than the ids. Other bulk commands run 16 at once under auto."`
	Output      string  `short:"o" enum:"text,json" default:"text" help:"Output format: text or json."`

	Remote remoteURL `placeholder:"URL" help:"Base URL of the rops serve (or original server) whose nodes node01..03 are the remote target (default http://127.0.0.1:8080/v1, where rops serve listens by default)."`

	AdminTokenFile string `type:"path" placeholder:"FILE" help:"File holding the bearer token of the admin API (or the token itself in ROPS_ADMIN_TOKEN; default: the target's admin_token_file): rops serve --admin wants it of every admin request, check --chaos and --nemesis send it."`
	WriteTokenFile string `type:"path" placeholder:"FILE" help:"File holding the bearer token of writes (or the token itself in ROPS_WRITE_TOKEN; default: the target's write_token_file): rops serve then wants it of every POST and DELETE /group and POST /batch, and jobs send it with every request to the target's nodes."`

	Batches bool `default:"true" negatable:"" help:"Send the writes that operations in flight make to one rops node together, in batches (POST /v1/batch): each item is answered, and faulted, as if it came alone. --no-batches sends one request per write. Servers that do not announce batches (the original) always get one request per write."`

	RequestTimeout      time.Duration `default:"2s" help:"Give up on a request to a node after this long (it is then retried)."`
	OperationTimeout    time.Duration `default:"30s" help:"Give up on an operation after this long, and roll it back."`
	CompensationTimeout time.Duration `default:"30s" help:"Retry a rollback for this long; what is not undone by then is reported pending."`
	Verbose             bool          `short:"v" xor:"verbosity" help:"Log every request and response, and each operation's result, to stderr."`
	Quiet               bool          `short:"q" xor:"verbosity" help:"Print only errors and the job's final report line: no progress."`
	LogFormat           string        `enum:"text,json" default:"text" help:"Format of the logs of -v and rops serve: text (key=value pairs) or json (one object per line)."`

	// The TLS of https:// nodes.
	ClientTLSFlags `embed:""`

	// The faults, a group of their own in the help.
	FaultFlags `group:"Faults of local nodes and of rops serve:"`
}

// Validate checks the flags' ranges, and refuses fault flags where no node
// of the target would have them; kong calls it after parsing.
func (g *Globals) Validate(k *kong.Context) error {
	g.unsetEmptyPaths(k)
	if err := g.FaultFlags.validate(); err != nil {
		return err
	}
	if err := g.checkFaultsApply(k); err != nil {
		return err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--request-timeout", g.RequestTimeout}, {"--operation-timeout", g.OperationTimeout}, {"--compensation-timeout", g.CompensationTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v is not positive: give a duration such as 2s", d.flag, d.v)
		}
	}
	if g.Retries != nil && *g.Retries < 0 {
		return fmt.Errorf("--retries %d is negative: give 0 or more", *g.Retries)
	}
	if _, err := g.concurrency(); err != nil {
		return fmt.Errorf("--concurrency %w", err)
	}
	return nil
}

// unsetEmptyPaths leaves --config and --data unset when their ROPS_*
// variable is set but empty, as an empty variable means for the others:
// kong's path type would make the working directory of "", and the local
// nodes and the journal would land there.
func (g *Globals) unsetEmptyPaths(k *kong.Context) {
	given := givenFlags(k)
	for _, f := range k.Model.Flags {
		if f.Tag.Type != "path" || given[f.Name] {
			continue
		}
		for _, env := range f.Envs {
			if v, ok := os.LookupEnv(env); ok && v == "" {
				f.Target.SetString("")
			}
		}
	}
}

// checkFaultsApply refuses fault flags for a command that opens a target
// whose nodes are all remote. Commands that open no target (rops serve
// serves its own nodes) are left alone, and so is check's --worker, which
// its parent starts with the parent's environment. A config that does not
// load, or a target it does not name, is left for open to report.
func (g *Globals) checkFaultsApply(k *kong.Context) error {
	cmd := selected(k)
	if c, ok := cmd.(*CheckCmd); (ok && c.Worker > 0) || !takesCluster(cmd) {
		return nil
	}
	cfg, err := loadConfig(g.Config)
	if err != nil {
		return nil
	}
	cfg.remote = string(g.Remote)
	tc, err := cfg.target(g.Target)
	if err != nil {
		return nil
	}
	return g.FaultFlags.refuseRemote(k, g.Target, tc.Nodes)
}

// negativeValues lets a flag's value be a negative number, written apart
// (--retries -1) as well as joined (--retries=-1): kong takes "-1" for a
// short flag, and says only that, though rops has no short flag that is a
// digit. A value of an unsigned flag (--seed) that is negative is refused
// as such. The numbers, durations and strings of flags keep kong's own
// decoding otherwise.
func negativeValues() kong.Option {
	defaults := kong.NewRegistry().RegisterDefaults()
	wrap := func(kind reflect.Kind) kong.Mapper {
		return kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
			t := ctx.Scan.Peek()
			v, ok := t.Value.(string)
			if ok && t.Type == kong.UntypedToken && negativeNumber(v) {
				ctx.Scan.Pop()
				ctx.Scan.PushTyped(v, kong.FlagValueToken)
			}
			if ok && negativeNumber(v) && kind >= reflect.Uint && kind <= reflect.Uint64 {
				return fmt.Errorf("%s is negative: give 0 or more", v)
			}
			return defaults.ForType(target.Type()).Decode(ctx, target)
		})
	}
	return kong.OptionFunc(func(k *kong.Kong) error {
		for _, kind := range []reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64, reflect.String} {
			if err := kong.KindMapper(kind, wrap(kind)).Apply(k); err != nil {
				return err
			}
		}
		return kong.TypeMapper(reflect.TypeFor[time.Duration](), wrap(reflect.Int64)).Apply(k)
	})
}

// negativeNumber reports whether s reads as a negative number or
// duration, such as -1, -0.5, -.5 or -1s: never a flag of rops.
func negativeNumber(s string) bool {
	return len(s) > 1 && s[0] == '-' && (s[1] >= '0' && s[1] <= '9' || s[1] == '.')
}

// givenFlags returns the names (without --) of the flags given on k's
// command line, as opposed to left at their defaults or set by their
// environment variables.
func givenFlags(k *kong.Context) map[string]bool {
	given := map[string]bool{}
	for _, p := range k.Path {
		if p.Flag != nil {
			given[p.Flag.Name] = true
		}
	}
	return given
}

// takesCluster reports whether cmd's Run takes a *Cluster, opened by
// bindCluster.
func takesCluster(cmd any) bool {
	if cmd == nil {
		return false
	}
	run := reflect.ValueOf(cmd).MethodByName("Run")
	if !run.IsValid() {
		return false
	}
	for in := range run.Type().Ins() {
		if in == reflect.TypeFor[*Cluster]() {
			return true
		}
	}
	return false
}

// concurrency returns --concurrency as a number, core.AutoConcurrency for
// auto, or nil if the flag was not given (or ROPS_CONCURRENCY is empty).
func (g *Globals) concurrency() (*int, error) {
	if g.Concurrency == nil || *g.Concurrency == "" {
		return nil, nil
	}
	if *g.Concurrency == "auto" {
		return ptr(core.AutoConcurrency), nil
	}
	n, err := strconv.Atoi(*g.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("%q is not a number: give 1 to %d, or auto", *g.Concurrency, core.MaxConcurrency)
	}
	return &n, checkConcurrency(n)
}

// checkConcurrency says what is wrong with a concurrency of n, if anything.
func checkConcurrency(n int) error {
	switch {
	case n < 1:
		return fmt.Errorf("%d is too small: give 1 or more", n)
	case n > core.MaxConcurrency:
		return fmt.Errorf("%d is over the limit of %d: each operation at once holds a connection to every node; give %d or less", n, core.MaxConcurrency, core.MaxConcurrency)
	}
	return nil
}

// dataDir returns --data or the default under the user's XDG data dir.
func (g *Globals) dataDir() (string, error) {
	if g.Data != "" {
		return g.Data, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "rops"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usageError(fmt.Errorf("no data directory: set --data DIR or ROPS_DATA (%v)", err))
	}
	return filepath.Join(home, ".local", "share", "rops"), nil
}

// Cluster is a command's opened target with its coordinator. A command
// whose Run takes a *Cluster is given it opened, as its openMode says, and
// cli.Run closes it once the command is done (see bindCluster).
type Cluster struct {
	*core.Coordinator
	target      *plugins.Target
	http        *http.Client    // the keep-alive pool of the target's HTTP nodes
	adminToken  string          // sent to the nodes' admin API (adminToken)
	journal     *wal.Journal    // the local journal; nil for read-only commands
	shared      plugins.Journal // the journal in etcd, with its lock, if --journal
	concurrency int
	// log is the -v log; nil without -v.
	log *slog.Logger
	// bulkConcurrency is that of create and delete jobs: concurrency or
	// core.AutoConcurrency.
	bulkConcurrency int
	// left is how many intents of earlier runs are still pending after
	// the recovery that a cluster opened as recovered begins with.
	left int
}

// roundTrips returns the HTTP requests sent so far to the target's nodes
// that are rops HTTP clients.
func (cl *Cluster) roundTrips() int64 {
	var n int64
	for _, node := range cl.Nodes() {
		if c, ok := core.NodeAs[*httpapi.Client](node); ok {
			n += c.Stats().RoundTrips
		}
	}
	return n
}

// openMode is how a command's cluster opens.
type openMode int

const (
	// readOnly opens no journal, so that stats and ping can look at a
	// cluster while a job runs. It is the mode of a command that names
	// none.
	readOnly openMode = iota
	// journaled opens the target's journal under --data too (recover).
	journaled
	// recovered is journaled, then rolls back what earlier runs left, as
	// every command that changes records must first.
	recovered
)

// open opens the target named by --target and builds a coordinator over
// it, as mode says. The caller must Close it.
func (g *Globals) open(ctx context.Context, stderr io.Writer, mode openMode) (_ *Cluster, err error) {
	cfg, err := loadConfig(g.Config)
	if err != nil {
		return nil, usageError(err)
	}
	cfg.remote = string(g.Remote)
	tc, err := cfg.target(g.Target)
	if err != nil {
		return nil, usageError(err)
	}
	retries := cmp.Or(g.Retries, tc.Retries, ptr(core.DefaultRetries))
	flag, err := g.concurrency()
	if err != nil {
		return nil, usageError(err)
	}
	concurrency := *cmp.Or(flag, tc.Concurrency, ptr(core.AutoConcurrency))
	// Under auto, create and delete adapt; the other bulk commands keep the
	// fixed default.
	bulk, pool := concurrency, concurrency
	if concurrency == core.AutoConcurrency {
		concurrency, pool = core.DefaultConcurrency, core.MaxConcurrency
	}
	seed := g.seed()
	tlsConfig, err := g.clientTLS(stderr, g.Target, tc)
	if err != nil {
		return nil, usageError(err)
	}
	env := plugins.Env{
		Seed:     seed,
		Defaults: g.faults().Values(),
		// One keep-alive pool for every HTTP node, a connection per
		// worker per node.
		HTTP:      httpapi.NewHTTPClientTLS(pool*len(tc.Nodes), tlsConfig),
		NoBatches: !g.Batches,
	}
	adminToken, err := g.clientTokens(&tc, &env)
	if err != nil {
		return nil, usageError(err)
	}
	cl := &Cluster{concurrency: concurrency, bulkConcurrency: bulk, http: env.HTTP, adminToken: adminToken}
	if g.Verbose {
		cl.log = g.logger(stderr)
		env.Wrap = func(n core.Node) core.Node { return reqlog.Wrap(n, cl.log) }
		cl.log.Info("seed", "seed", seed)
	}
	defer func() {
		if err != nil {
			cl.Close()
		}
	}()
	journal := mode != readOnly
	if journal || needsData(tc.Nodes) {
		if env.DataDir, err = g.dataDir(); err != nil {
			return nil, err
		}
		if mode == readOnly {
			// stats and ping look at a cluster: a mistyped --data must
			// not make a new, empty one and call it consistent.
			if err := noCluster(env.DataDir, tc.Nodes); err != nil {
				return nil, usageError(err)
			}
		} else if err := os.MkdirAll(env.DataDir, 0o755); err != nil {
			return nil, usageError(fmt.Errorf("cannot create data directory: %w; choose another with --data DIR", err))
		}
	}
	if journal {
		// One journal and one lock per cluster, whatever the target's
		// name (see clusterIdentity).
		if cl.journal, cl.shared, err = g.openJournal(ctx, stderr, cfg, tc, env.DataDir); err != nil {
			if _, ok := errors.AsType[*exitError](err); ok {
				return nil, err
			}
			return nil, usageError(err)
		}
	}
	if cl.target, err = plugins.OpenTarget(ctx, tc.Nodes, env); err != nil {
		return nil, usageError(err)
	}
	if err := g.setDown(cl.target.Nodes); err != nil {
		return nil, usageError(err)
	}
	coordCfg := g.coordinatorConfig(cl.target.Nodes, *retries)
	if cl.journal != nil {
		coordCfg.Journal = cl.journal
	}
	if cl.shared.Journal != nil {
		coordCfg.Journal, coordCfg.Locks = cl.shared.Journal, cl.shared.Locks
	}
	if cl.Coordinator, err = core.New(coordCfg); err != nil {
		return nil, usageError(err)
	}
	if mode == recovered {
		if cl.left, err = recoverFirst(ctx, cl, stderr); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// fileName makes a target name safe as one directory name (no "..").
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return r
		}
		return '_'
	}, s)
}

// logger returns a logger writing to w in --log-format: slog's text
// (key=value) format, through httpapi.TextHandler, which writes serve's
// access log lines at less cost, or slog's JSON handler. Make one per
// command and share it, since only one handler serializes its lines.
func (g *Globals) logger(w io.Writer) *slog.Logger {
	if g.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(httpapi.NewTextHandler(w, nil))
}

// seed returns --seed, or a fresh random seed for 0.
func (g *Globals) seed() uint64 {
	if g.Seed == 0 {
		g.Seed = rand.Uint64()
	}
	return g.Seed
}

func ptr[T any](v T) *T { return &v }

// noCluster returns an error naming where the stores of the local
// (badger) nodes among specs should be, under dataDir or where their dir=
// says, if none of them is there: a read-only command would create them
// empty. One store there is a cluster, even if another node lost its own.
func noCluster(dataDir string, specs []string) error {
	var missing, flag string
	for _, s := range specs {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Scheme != "badger" {
			continue
		}
		dir, from := dataDir, "--data"
		store := filepath.Join(dataDir, u.Host)
		if d := u.Query().Get("dir"); d != "" {
			dir, from, store = d, "dir= of "+u.Host, d
		}
		if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if missing == "" {
			missing, flag = dir, from
		}
	}
	if missing == "" {
		return nil
	}
	return fmt.Errorf("no cluster at %s (%s): run a job such as `rops create` there first, or give the --data of an existing one", missing, flag)
}

// needsData reports whether any spec keeps its data under --data.
func needsData(specs []string) bool {
	return slices.ContainsFunc(specs, func(s string) bool { return strings.HasPrefix(s, "badger:") })
}

// coordinatorConfig returns the configuration of a command's coordinator
// over nodes, without its journal: the flags' timeouts, a breaker, and the
// job's one backoff, go-retry's, for retries (retries of them per request)
// and compensation alike.
func (g *Globals) coordinatorConfig(nodes []core.Node, retries int) core.Config {
	return core.Config{
		Nodes:               nodes,
		RequestTimeout:      g.RequestTimeout,
		OperationTimeout:    g.OperationTimeout,
		CompensationTimeout: g.CompensationTimeout,
		// A node that is down is then given up on within seconds, not
		// a compensation timeout per operation.
		Breaker: breaker.New(breaker.Options{}),
		NewBackoff: func() core.Backoff {
			return backoff(retries)
		},
		NewCompensationBackoff: compensationBackoff,
	}
}

// backoff is the retry policy of one node in one operation: the first
// retry after core.DefaultFirstRetry (the driver still paces it by the
// failure's own latency and overload signals), then exponential; retries
// times in all.
func backoff(retries int) core.Backoff {
	return retry.WithMaxRetries(uint64(retries), core.QuickFirst(exponential()))
}

// compensationBackoff is the policy of one node's undo, which retries until
// the compensation timeout: exponential, with no limit of its own and no
// quick first retry, as an undo follows a failure already.
func compensationBackoff() core.Backoff { return exponential() }

// exponential is the one backoff of a job, for retries and compensation
// alike: go-retry's exponential from core.DefaultBackoffBase, ±50% jitter,
// capped at core.DefaultBackoffCap (after the jitter, so the cap holds).
func exponential() retry.Backoff {
	b := retry.NewExponential(core.DefaultBackoffBase)
	b = retry.WithJitterPercent(50, b)
	return retry.WithCappedDuration(core.DefaultBackoffCap, b)
}

// Close closes the target's nodes and the journal.
func (c *Cluster) Close() error {
	var errs []error
	if c.target != nil {
		errs = append(errs, c.target.Close())
	}
	if c.journal != nil {
		errs = append(errs, c.journal.Close())
	}
	if c.shared.Closer != nil {
		errs = append(errs, c.shared.Closer.Close())
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	return errors.Join(errs...)
}
