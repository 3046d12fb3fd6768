// Command barehttp is the yardstick of scripts/bench: a bare net/http server
// that answers the group protocol's routes with fixed answers and stores
// nothing, so that wrk against it measures what HTTP alone costs on this
// machine. It is not part of rops.
//
//	go run ./scripts/barehttp 127.0.0.1:9000
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: barehttp ADDR (such as 127.0.0.1:9000)")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	// A create reads its body, as a real one must, and answers 201.
	mux.HandleFunc("POST /v1/group", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"groupId":"x"}`))
	})
	mux.HandleFunc("GET /v1/group/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"groupId":%q}`, r.PathValue("id"))
	})
	log.Fatal(http.ListenAndServe(os.Args[1], mux))
}
