# rops tasks. CI does not need just: see .ci/run.

# Build the rops binary.
build:
    go build -o rops .

# Run the tests, as README.md and CI do.
test:
    go test -race -count=1 ./...

# Run the default job on the embedded cluster.
run *ARGS:
    go run . {{ARGS}}

# Benchmarks; figures go to BENCHMARKS.md.
bench:
    go test -run '^$' -bench . -benchmem ./...

# Vet, staticcheck, format check, and repeated code.
lint:
    go vet ./...
    go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
    test -z "$(gofmt -l .)"
    -duplicates
