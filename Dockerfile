# rops in an empty image. The binary is built on the host first, so the
# image builds without pulling a Go image:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o rops . && docker build -t rops .
#
# or scripts/compose-up, which builds the binary and runs docker-compose up.
# .dockerignore keeps the build context to what is copied here.
FROM scratch
COPY rops /rops
COPY deploy/targets.json /etc/rops/targets.json
# An empty /data owned by the non-root user: a named volume mounted there
# is filled from the image the first time, ownership included, so the user
# can write to it.
COPY --chown=65532:65532 deploy/data /data
# So is /certs, where docker-compose.tls.yml mounts the TLS files (a
# volume that rops serve --gen-test-certs fills, or a directory of yours).
COPY --chown=65532:65532 deploy/data /certs
USER 65532:65532
ENV ROPS_DATA=/data ROPS_CONFIG=/etc/rops/targets.json
VOLUME /data
EXPOSE 8080
# The server answers /ping without touching its nodes; 'remote' is the
# server at 127.0.0.1:8080, this container's own. Under TLS, give it
# ROPS_REMOTE=https://127.0.0.1:8080/v1 and the CA in ROPS_CA_FILE (and a
# client certificate in ROPS_CERT_FILE and ROPS_KEY_FILE), as
# docker-compose.tls.yml does.
HEALTHCHECK --interval=2s --timeout=3s --retries=3 \
  CMD ["/rops", "ping", "--target", "remote"]
ENTRYPOINT ["/rops"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
