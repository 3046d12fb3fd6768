// Command barehttp is the yardstick of scripts/bench: bare net/http with
// nothing of rops, so that what rops adds to a request, on either side, can
// be told from what HTTP alone costs on this machine. It is not part of rops.
//
//	go run ./scripts/barehttp 127.0.0.1:9000
//	go run ./scripts/barehttp -parse 127.0.0.1:9000
//	go run ./scripts/barehttp -store 127.0.0.1:9000
//	go run ./scripts/barehttp -client -ids 0-9999 http://127.0.0.1:9000/v1 node01 node02 node03
//
// As a server it answers the group protocol's routes with fixed answers and
// stores nothing; with -parse a create also decodes its body's groupId, as
// any real handler must; with -store it also keeps each node's id and its
// Timestamp header in a map, and answers 409 to an id the node holds, as
// the least that any storing node does (the floor under rops serve's
// memory store). With -client it is the bare client: for each id of
// the range it sends one POST /group per node, with the node, timestamp and
// content type headers and the body rops' Client sends (what a create at 0
// faults sends, without the coordinator, the journal or the checks of the
// answer), reads the answers, and prints what it did and the CPU it used as
// one JSON object.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	client := flag.Bool("client", false, "be the bare client: POST each id of -ids to each node at URL")
	parse := flag.Bool("parse", false, "as a server, decode the groupId of each create's body")
	store := flag.Bool("store", false, "as a server, decode each create's groupId and keep it, with its Timestamp, per node (implies -parse)")
	ids := flag.String("ids", "0-9999", "with -client: the ids to create, FIRST-LAST")
	conc := flag.Int("c", 64, "with -client: requests in flight")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: barehttp [-parse | -store] ADDR (such as 127.0.0.1:9000)\n       barehttp -client [-ids FIRST-LAST] [-c N] URL NODE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *client {
		if flag.NArg() < 2 {
			flag.Usage()
			os.Exit(2)
		}
		if err := runClient(flag.Arg(0), flag.Args()[1:], *ids, *conc); err != nil {
			log.Fatal(err)
		}
		return
	}
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log.Fatal(http.ListenAndServe(flag.Arg(0), handler(*parse || *store, *store)))
}

func handler(parse, store bool) http.Handler {
	mux := http.NewServeMux()
	var mu sync.Mutex
	held := map[string]string{} // node + "/" + id: the Timestamp it came with
	// A create reads its body, as a real one must, and answers 201.
	mux.HandleFunc("POST /v1/group", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if parse {
			var req struct {
				GroupID string `json:"groupId"`
			}
			if err := json.Unmarshal(body, &req); err != nil || req.GroupID == "" {
				http.Error(w, "send {\"groupId\": \"ID\"}", http.StatusNotAcceptable)
				return
			}
			if store {
				key := r.Header.Get("Node") + "/" + req.GroupID
				mu.Lock()
				_, had := held[key]
				if !had {
					held[key] = r.Header.Get("Timestamp")
				}
				mu.Unlock()
				if had {
					http.Error(w, "group already exists", http.StatusConflict)
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"groupId":"x"}`))
	})
	mux.HandleFunc("GET /v1/group/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"groupId":%q}`, r.PathValue("id"))
	})
	return mux
}

// runClient sends POST base/group for each id of span to each node, conc at
// once, and prints the figures.
func runClient(base string, nodes []string, span string, conc int) error {
	first, last, err := parseSpan(span)
	if err != nil {
		return err
	}
	d := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		DisableCompression:  true,
	}}
	url := strings.TrimRight(base, "/") + "/group"
	total := (last - first + 1) * int64(len(nodes))
	var next, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	token := []string{strconv.FormatInt(time.Now().Unix(), 10) + ".000001"}
	ctype := []string{"application/json"}
	start := time.Now()
	var wg sync.WaitGroup
	for range max(conc, 1) {
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				id := first + k/int64(len(nodes))
				node := nodes[k%int64(len(nodes))]
				body := []byte(`{"groupId": "` + strconv.FormatInt(id, 10) + `"}`)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					fail(err)
					continue
				}
				req.Header = http.Header{"Node": {node}, "Content-Type": ctype, "Timestamp": token}
				resp, err := hc.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					fail(fmt.Errorf("POST %s for %s: %s", url, node, resp.Status))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu, err := processCPU()
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{
		"requests": total, "failed": failed.Load(), "seconds": elapsed.Seconds(), "cpu_seconds": cpu.Seconds(),
	})
	fmt.Println(string(out))
	if firstErr != nil {
		return fmt.Errorf("%d of %d requests failed; the first: %w", failed.Load(), total, firstErr)
	}
	return nil
}

// parseSpan reads FIRST-LAST.
func parseSpan(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, fmt.Errorf("invalid -ids %q: give FIRST-LAST, such as 0-9999", s)
	}
	return first, last, nil
}
