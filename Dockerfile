# syntax=docker/dockerfile:1
# Build: a static binary (no cgo), trimmed.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/passgate ./cmd/passgate \
 && mkdir -p /out/data

# Run: distroless static, non-root; the store file and control socket live in /var/lib/passgate.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/passgate /usr/local/bin/passgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/passgate
VOLUME ["/var/lib/passgate"]
WORKDIR /var/lib/passgate
USER nonroot:nonroot
EXPOSE 143 993 587 465
# Needs [metrics] listen in the config (e.g. "127.0.0.1:9090"): the image
# has no curl, passgate asks its own /readyz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/passgate", "health", "--config", "/etc/passgate/passgate.toml"]
ENTRYPOINT ["/usr/local/bin/passgate"]
CMD ["serve", "--config", "/etc/passgate/passgate.toml"]
