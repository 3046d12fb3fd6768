# rops in an empty image. The binary is built on the host first, so the
# image builds without pulling a Go image:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o rops . && docker build -t rops .
FROM scratch
COPY rops /rops
COPY deploy/targets.json /etc/rops/targets.json
ENV ROPS_DATA=/data ROPS_CONFIG=/etc/rops/targets.json
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/rops"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
